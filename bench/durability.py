#!/usr/bin/env python3
"""The durability study's rows and chart for the suite (issue 19, part 2).

For each churn scenario (`bitdust-lab churn --scenario`: storj, whitepaper, home) and layout, the event-driven
tier runs a population of nodes for simulated years with customers keeping their data whole through the real
maintenance state; it measures how often a position loses its data (lambda), the time back to full redundancy
(E[R]), false firings and repair traffic, counts losses where they are frequent enough, and the Markov chain of
`bitdust-lab durability` turns the measured rates into the yearly loss probability (every missing position repaired
at once, and one at a time: the two bound it). Writes durability.json, a markdown table and a chart of yearly loss
against stored bytes per byte, with repair traffic beside it.

usage: python3 bench/durability.py [--quick] [--lab PATH] [--out DIR]
  --quick  5,000 nodes, 200 customers, five layouts, one simulated year per row (a minute or two);
           full: 100,000 nodes, 2,000 customers (the home scenario is the slow one: desktops come and go daily)
Builds bitdust-lab in release mode unless --lab is given. The chart needs matplotlib: the suite passes its
virtualenv's python; alone, this script uses python3's if it has matplotlib, else target/bench/plot-venv.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = ["storj", "whitepaper", "home"]
LAYOUTS = ["2/4", "4/8", "3/10", "8/16", "12/24", "4/10", "6/15", "8/20", "16/32"]
QUICK_LAYOUTS = ["2/4", "4/8", "3/10", "12/24", "8/20"]


def run(lab, quick):
    """Runs every scenario; returns {"scenarios": [{"scenario": ..., "rows": [...]}], "settings": ...}."""
    nodes, customers = (5_000, 200) if quick else (100_000, 2_000)
    layouts = QUICK_LAYOUTS if quick else LAYOUTS
    out = {"settings": {"nodes": nodes, "customers": customers, "years": 1, "data_gib": 10, "fire_after_h": 24,
                        "audit_interval_h": 1}, "scenarios": []}
    for scenario in SCENARIOS:
        print(f"durability: {scenario} ({nodes} nodes, {customers} customers) ...", flush=True)
        r = subprocess.run([lab, "--json", "churn", "--scenario", scenario, "--nodes", str(nodes), "--customers",
                            str(customers), "--layouts", ",".join(layouts)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"bitdust-lab churn {scenario}: {r.stderr[-2000:]}")
        lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        out["scenarios"].append({"scenario": lines[0]["scenario"], "rows": lines[1:]})
    return out


def render(d):
    s = d["settings"]
    lines = ["## Durability: yearly loss per backup against stored bytes and repair traffic", "",
             f"`bitdust-lab churn`: {s['nodes']:,} nodes, {s['customers']:,} customers of {s['data_gib']} GiB each, "
             f"{s['years']} simulated year per row, fire-after {s['fire_after_h']} h, audits every "
             f"{s['audit_interval_h']} h, the real maintenance state. lambda: positions that lost their data per "
             "position-year (departures, disk losses, suppliers fired while they still held it); E[R]: hours from "
             "that loss to full redundancy again (customer offline time included); loss/yr: the chain from the "
             "measured lambda and E[R], every missing position repaired at once .. one at a time; counted: losses "
             "seen in the run (each customer-year a trial). Sources and assumptions: docs/architecture.md, "
             "\"Durability\".", ""]
    for sc in d["scenarios"]:
        lines += [f"### {sc['scenario']['name']}", "",
                  "| layout | stored / data | lambda /yr | false firings /yr | E[R] h (p99) | repair MB/day | "
                  "loss/yr (chain) | counted |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in sc["rows"]:
            lines.append(
                f"| {r['layout']} | {r['overhead']:.2f} | {r['position_losses_per_year']:.3f} | "
                f"{r['false_firings_per_year']:.3f} | {r['repair_mean_h']:.1f} ({r['repair_p99_h']:.0f}) | "
                f"{r['repair_mb_per_day']:.0f} | {r['chain_loss_per_year']:.1e} .. "
                f"{r['chain_serial_loss_per_year']:.1e} | {r['losses']} in {r['customer_years']:.0f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


CHART = r"""
import json, sys, os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
d = json.load(open(sys.argv[1]))
fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
for sc in d["scenarios"]:
    name = sc["scenario"]["name"]
    rows = sorted(sc["rows"], key=lambda r: r["overhead"])
    # the chain's serial-repair figure (the bound), floored for the log scale; counted rates where there were losses
    ys = [max(r["chain_serial_loss_per_year"], 1e-30) for r in rows]
    color = None
    for ax, key in ((axes[0], "overhead"), (axes[1], "repair_mb_per_day")):
        xs = [r[key] for r in rows]
        line, = ax.plot(xs, ys, marker="o", linestyle="none", color=color, label=f"{name} (chain, serial repair)")
        color = line.get_color()
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(r["layout"].replace("RS", ""), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        counted = [(r[key], r["measured_loss_per_year"]) for r in rows if r["losses"] > 0]
        if counted:
            ax.plot(*zip(*counted), marker="x", linestyle="none", color=color, label=f"{name} (counted)")
for ax in axes:
    ax.axhline(1e-9, color="grey", linestyle="--", label="1e-9")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
axes[1].set_xscale("log")
axes[0].set_xlabel("stored bytes per byte (n/k)")
axes[1].set_xlabel("repair traffic, MB per customer per day (10 GiB each)")
axes[0].set_ylabel("yearly probability of losing a block")
axes[0].set_title("durability against overhead")
axes[1].set_title("durability against repair traffic")
axes[1].legend(fontsize=7)
fig.tight_layout()
fig.savefig(os.path.join(sys.argv[2], "durability.png"), dpi=110)
"""


def plot_python():
    """A python with matplotlib: python3's own, else target/bench/plot-venv (created once)."""
    if subprocess.run([sys.executable, "-c", "import matplotlib"], capture_output=True).returncode == 0:
        return sys.executable
    venv = os.path.join(ROOT, "target", "bench", "plot-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "matplotlib"], check=True)
    return python


def chart(python, results_json, out):
    """Draws durability.png into `out`; returns whether it did."""
    return subprocess.run([python, "-c", CHART, results_json, out]).returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--lab")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "durability"))
    args = ap.parse_args()
    lab = args.lab
    if not lab:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "bitdust-lab"], cwd=ROOT, check=True)
        lab = os.path.join(ROOT, "target", "release", "bitdust-lab")
    d = run(lab, args.quick)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "durability.json")
    with open(path, "w") as f:
        json.dump(d, f, indent=2)
    report = render(d)
    if chart(plot_python(), path, args.out):
        report += "\n![durability against overhead](durability.png)\n"
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    print(report)
    print(f"written to {args.out}/report.md and durability.json")


if __name__ == "__main__":
    main()
