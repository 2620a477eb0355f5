#!/usr/bin/env python3
"""bitdust side by side with Tahoe-LAFS, on the same data, in the same run (issue 5; first part of the suite).

Installs tahoe-lafs from PyPI into a virtualenv (target/bench/tahoe-venv, once), starts a local grid on
127.0.0.1 (one introducer, 10 storage nodes, one client; shares.needed=3, happy=7, total=10) and two bitdust
devnets (RS(2, 4) on 4 suppliers, the default before RS(12, 24), and RS(3, 10) on 10 suppliers like Tahoe), then for each
size uploads and downloads one random file with each and checks the bytes. It measures wall time, CPU seconds
(every process of the system: daemons from /proc/PID/stat, command-line clients from rusage), the peak
resident memory of the client-side daemon (VmHWM of the Tahoe client node, of bitdust's customer daemon) and
the bytes stored per byte of data, and writes a markdown report with bitdust / Tahoe ratios and a PNG chart of
throughput against file size (matplotlib, installed into the same virtualenv).

Then, bitdust alone:
- a real folder (default /usr/share in full mode: hundreds of MB, tens of thousands of files; --folder PATH);
  Tahoe copies it too (`tahoe cp -r`) unless --no-tahoe-folder;
- upload and restore time against supplier count (a devnet per count, the same file);
- `bitdust-lab bench`: restore with n - k suppliers stopped, and the time back to full redundancy after a supplier
  is lost for good;
- `bitdust-lab messages`: private message latency (p50, p99), messages per second, a file's MB/s and offline
  delivery time between two devnet daemons;
- bench/incremental.py: incremental backups beside restic (re-backup of an unchanged folder, one byte changed in a
  large file, ten daily versions, forget and prune, a million small files);
- bench/durability.py: the durability study (`bitdust-lab churn`) per scenario and layout: yearly loss against
  stored bytes per byte and repair traffic;
- `bitdust-lab sim`: an in-process network of 100, 300 and 1,000 nodes (DHT lookup hops and latency for identity
  and nickname records, memory and CPU per idle node, time for a new customer to hire n suppliers).
Charts: throughput against file size, throughput against supplier count, lookup hops against network size,
durability against overhead and repair traffic.

usage: python3 bench/suite.py [--quick] [--sizes 1M,100M,1G] [--folder PATH] [--no-tahoe-folder]
                              [--sim-nodes 100,300] [--out DIR] [--bitdust PATH]
  --quick   1 MiB and 16 MiB, a 20-file folder, 2 and 4 suppliers, a supplier replaced after 5 s of silence
            (not 15), 30 and 60 nodes with 2 s idle phases (about a minute once built and installed);
            full mode: 1M,100M,1G (add 4G with --sizes: ~50 GB of disk, the grids keep every size), /usr/share,
            2..26 suppliers, 100..1000 nodes (1,000 alone takes ~11 minutes)
Linux only (reads /proc). Builds bitdust in release mode unless --bitdust is given.
"""
import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAHOE_VERSION = "1.20.0"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def human(n):
    for unit in ["B", "KiB", "MiB", "GiB"]:
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICKS


def peak_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def du(paths):
    total = 0
    for p in paths:
        for dirpath, _, files in os.walk(p):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
    return total


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_until(what, check, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


class Tahoe:
    """A local Tahoe-LAFS grid: introducer, 10 storage nodes, one client node."""

    def __init__(self, work):
        self.venv = os.path.join(ROOT, "target", "bench", "tahoe-venv")
        self.bin = os.path.join(self.venv, "bin", "tahoe")
        self.dir = os.path.join(work, "tahoe")
        self.procs = {}

    def install(self):
        if os.path.exists(self.bin):
            return
        print(f"installing tahoe-lafs {TAHOE_VERSION} into {self.venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", self.venv], check=True)
        pip = os.path.join(self.venv, "bin", "pip")
        subprocess.run([pip, "install", "-q", f"tahoe-lafs=={TAHOE_VERSION}"], check=True)

    def tahoe(self, *args, **kw):
        return subprocess.run([self.bin, *args], check=True, capture_output=True, text=True, **kw)

    def run_node(self, name):
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        self.procs[name] = subprocess.Popen(
            [self.bin, "run", "--allow-stdin-close", os.path.join(self.dir, name)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def start(self):
        os.makedirs(self.dir)
        port = free_port()
        self.tahoe("create-introducer", "--listen=tcp", f"--port=tcp:{port}:interface=127.0.0.1",
                   f"--location=tcp:127.0.0.1:{port}", os.path.join(self.dir, "intro"))
        self.run_node("intro")
        furl_file = os.path.join(self.dir, "intro", "private", "introducer.furl")
        wait_until("the introducer", lambda: os.path.exists(furl_file))
        furl = open(furl_file).read().strip()
        shares = ["--shares-needed=3", "--shares-happy=7", "--shares-total=10"]
        for i in range(1, 11):
            port = free_port()
            self.tahoe("create-node", f"--nickname=s{i}", f"--introducer={furl}", "--listen=tcp",
                       f"--port=tcp:{port}:interface=127.0.0.1", f"--location=tcp:127.0.0.1:{port}",
                       "--webport=none", *shares, os.path.join(self.dir, f"s{i}"))
            self.run_node(f"s{i}")
        self.web = free_port()
        self.tahoe("create-client", f"--introducer={furl}", f"--webport=tcp:{self.web}:interface=127.0.0.1",
                   *shares, os.path.join(self.dir, "client"))
        self.run_node("client")

        def connected():
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web}/?t=json", timeout=2) as r:
                servers = json.load(r)["servers"]
            return sum(1 for s in servers if s["connection_status"].lower().startswith("connected")) >= 10
        wait_until("10 Tahoe storage servers", connected)

    def pids(self):
        return [p.pid for p in self.procs.values()]

    def client_pid(self):
        return self.procs["client"].pid

    def stored(self):
        return du([os.path.join(self.dir, f"s{i}", "storage") for i in range(1, 11)])

    def upload(self, path):
        client = os.path.join(self.dir, "client")
        if os.path.isdir(path):
            self.cap = self.tahoe("-d", client, "mkdir").stdout.strip()
            self.tahoe("-d", client, "cp", "-r", path, self.cap + "/")
            self.cap += "/" + os.path.basename(path)
        else:
            self.cap = self.tahoe("-d", client, "put", path).stdout.strip()

    def download(self, path, out):
        client = os.path.join(self.dir, "client")
        if os.path.isdir(path):
            self.tahoe("-d", client, "cp", "-r", self.cap, out)  # creates out/<folder name>
            return os.path.join(out, os.path.basename(path))
        else:
            self.tahoe("-d", client, "get", self.cap, out)
        return out

    def stop(self):
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            p.wait()


class Bitdust:
    """A bitdust devnet: bootstrap node, `suppliers` suppliers, customer alice, RS(data_shards, suppliers)."""

    def __init__(self, work, binary, suppliers, data_shards, label):
        self.bin = binary
        self.dir = os.path.join(work, label.replace(" ", "-").replace("(", "").replace(")", "").replace(",", ""))
        self.suppliers, self.data_shards, self.label = suppliers, data_shards, label

    def cli(self, *args):
        return subprocess.run([self.bin, "--home", os.path.join(self.dir, "alice"), *args],
                              check=True, capture_output=True, text=True)

    def start(self):
        self.log = open(self.dir + ".log", "w")
        self.proc = subprocess.Popen(
            [self.bin, "devnet", "--dir", self.dir, "--suppliers", str(self.suppliers),
             "--data-shards", str(self.data_shards), "--spares", "0"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        for line in self.proc.stdout:
            if "press Ctrl-C" in line:
                break

    def node_dirs(self):
        return [os.path.join(self.dir, d) for d in os.listdir(self.dir) if os.path.isdir(os.path.join(self.dir, d))]

    def pids(self):
        out = []
        for d in self.node_dirs():
            try:
                out.append(int(open(os.path.join(d, "daemon.pid")).read().strip()))
            except (OSError, ValueError):
                pass
        return out

    def client_pid(self):
        return int(open(os.path.join(self.dir, "alice", "daemon.pid")).read().strip())

    def stored(self):
        return du([os.path.join(d, "store", "fragments") for d in self.node_dirs() if "supplier" in d])

    def upload(self, path):
        self.name = os.path.basename(path)
        self.cli("backup", path)

    def download(self, path, out_dir):
        self.cli("restore", self.name, "--to", out_dir)
        # a folder's contents go into out_dir itself, a file goes into it under its name
        return out_dir if os.path.isdir(path) else os.path.join(out_dir, self.name)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def measure(system, src, work):
    """Upload then download `src` with `system`; returns the figures."""
    pids = system.pids()
    stored0 = system.stored()
    cpu0, kids0, t0 = cpu_seconds(pids), children_cpu(), time.perf_counter()
    system.upload(src)
    up = time.perf_counter() - t0
    cpu1, kids1 = cpu_seconds(pids), children_cpu()
    stored = system.stored() - stored0
    out = tempfile.mkdtemp(dir=work)
    t1 = time.perf_counter()
    got = system.download(src, os.path.join(out, "out") if isinstance(system, Tahoe) else out)
    down = time.perf_counter() - t1
    cpu2, kids2 = cpu_seconds(pids), children_cpu()
    same = ["diff", "-r", "-q", "--no-dereference", src, got] if os.path.isdir(src) else ["cmp", "-s", src, got]
    check = subprocess.run(same, capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"{system.label}: downloaded bytes differ from {src}: {(check.stdout + check.stderr)[:800]}")
    shutil.rmtree(out)
    return {"upload_s": up, "download_s": down,
            "upload_cpu_s": (cpu1 - cpu0) + (kids1 - kids0), "download_cpu_s": (cpu2 - cpu1) + (kids2 - kids1),
            "peak_rss": peak_rss(system.client_pid()), "stored": stored}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "report"))
    ap.add_argument("--bitdust")
    ap.add_argument("--folder", help="a real folder to back up (default: /usr/share, or a small one with --quick)")
    ap.add_argument("--no-tahoe-folder", action="store_true", help="skip Tahoe on the folder (it is slow)")
    ap.add_argument("--sim-nodes", help="network sizes for bitdust-lab sim (default 30,60 quick, 100,300,1000 full)")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in (args.sizes or ("1M,16M" if args.quick else "1M,100M,1G")).split(",")]
    binary = args.bitdust
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "bitdust", "-p", "bitdust-lab"], cwd=ROOT,
                       check=True)
        binary = os.path.join(ROOT, "target", "release", "bitdust")
    # the benchmarks and simulations are the lab's tools, built beside the user's binary
    lab = os.path.join(os.path.dirname(binary), "bitdust-lab")
    started = time.perf_counter()
    work = tempfile.mkdtemp(prefix="bitdust-suite-")
    tahoe = Tahoe(work)
    tahoe.install()
    version = subprocess.run([tahoe.bin, "--version"], capture_output=True, text=True).stdout.split()[0]
    tahoe.label = f"Tahoe-LAFS {version.split('/')[-1]} 3-of-10"
    systems = [tahoe, Bitdust(work, binary, 10, 3, "bitdust RS(3, 10)"), Bitdust(work, binary, 4, 0, "bitdust RS(2, 4)")]
    results = []
    try:
        # Start the grids side by side (mostly waiting on processes booting); measurements stay one at a time.
        with concurrent.futures.ThreadPoolExecutor(len(systems)) as pool:
            for f in [pool.submit(s.start) for s in systems]:
                f.result()
        for size in sizes:
            src = os.path.join(work, f"random-{size}.bin")
            with open(src, "wb") as f:
                left = size
                while left:
                    n = min(left, 1 << 24)
                    f.write(os.urandom(n))
                    left -= n
            for s in systems:
                print(f"{s.label}: {human(size)} ...", flush=True)
                r = measure(s, src, work)
                results.append({"system": s.label, "size": size, **r})
            os.remove(src)
        folder = args.folder or (quick_folder(work) if args.quick else "/usr/share")
        if os.path.isdir(folder):
            count, total = tree_size(folder)
            for s in systems:
                if isinstance(s, Tahoe) and args.no_tahoe_folder:
                    continue
                print(f"{s.label}: folder {folder} ({count} files, {human(total)}) ...", flush=True)
                r = measure(s, folder, work)
                results.append({"system": s.label, "size": total, "folder": folder, "files": count, **r})
    finally:
        for s in systems:
            try:
                s.stop()
            except Exception:
                pass
    try:
        scan = supplier_scan(binary, work, args.quick)
        heal = heal_bench(lab, args.quick)
        sim = simulate(lab, args.quick, args.sim_nodes)
        msgs = messages_bench(lab, args.quick)
        import incremental  # bench/incremental.py: issue 18's rows, beside restic
        inc_work = os.path.join(work, "incremental")
        os.makedirs(inc_work)
        inc = incremental.run(binary, inc_work, args.quick)
        import durability  # bench/durability.py: issue 19's durability rows and chart
        dur = durability.run(lab, args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"transfers": results, "suppliers": scan, "heal": heal, "sim": sim, "messages": msgs,
                   "incremental": inc, "durability": dur}, f, indent=2)
    report = render(results, sizes, tahoe.label, time.perf_counter() - started)
    report += render_rest(scan, heal, sim)
    report += render_messages(msgs)
    report += "\n" + incremental.render(inc)
    report += "\n" + durability.render(dur)
    if chart(tahoe, args.out):
        report += ("\n![throughput against file size](throughput-vs-size.png)\n"
                   "![throughput against supplier count](throughput-vs-suppliers.png)\n"
                   "![lookup hops against network size](hops-vs-nodes.png)\n")
        dur_json = os.path.join(args.out, "durability.json")
        with open(dur_json, "w") as f:
            json.dump(dur, f)
        if durability.chart(os.path.join(tahoe.venv, "bin", "python"), dur_json, args.out):
            report += "![durability against overhead and repair traffic](durability.png)\n"
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    print(report)
    print(f"written to {args.out}/report.md and results.json")


CHART = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import os
everything = json.load(open(sys.argv[1]))
results = [r for r in everything["transfers"] if "folder" not in r]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
for ax, key, title in ((axes[0], "upload_s", "upload"), (axes[1], "download_s", "download")):
    for system in dict.fromkeys(r["system"] for r in results):
        rows = sorted((r for r in results if r["system"] == system), key=lambda r: r["size"])
        ax.plot([r["size"] / 2**20 for r in rows], [r["size"] / r[key] / 1e6 for r in rows], marker="o", label=system)
    ax.set_xscale("log")
    ax.set_xlabel("file size (MiB)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
axes[0].set_ylabel("MB/s")
axes[1].legend()
fig.tight_layout()
fig.savefig(os.path.join(sys.argv[2], "throughput-vs-size.png"), dpi=110)

scan = everything["suppliers"]
fig, ax = plt.subplots(figsize=(6, 4.2))
for key, label in (("upload_s", "upload"), ("download_s", "restore")):
    ax.plot([r["suppliers"] for r in scan], [r["size"] / r[key] / 1e6 for r in scan], marker="o", label=label)
ax.set_xlabel("suppliers (RS(ceil(n/2), n))")
ax.set_ylabel("MB/s")
ax.set_title("bitdust throughput against supplier count")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(sys.argv[2], "throughput-vs-suppliers.png"), dpi=110)

sim = everything["sim"]
fig, ax = plt.subplots(figsize=(6, 4.2))
xs = [r["nodes"] for r in sim]
for kind in ("identity", "nickname"):
    ax.plot(xs, [r[kind]["hops"]["median"] for r in sim], marker="o", label=f"{kind} median")
    ax.plot(xs, [r[kind]["hops"]["p99"] for r in sim], marker="x", linestyle="--", label=f"{kind} p99")
ax.plot(xs, [r["hop_bound"] for r in sim], color="grey", label="ceil(log2 N)")
ax.set_xscale("log")
ax.set_xlabel("nodes")
ax.set_ylabel("hops")
ax.set_title("DHT lookup hops against network size")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(sys.argv[2], "hops-vs-nodes.png"), dpi=110)
"""


def tree_size(root):
    count = total = 0
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            if os.path.isfile(p) and not os.path.islink(p):
                count += 1
                total += os.path.getsize(p)
    return count, total


QUICK_FOLDER_FILES = 20  # Tahoe takes ~0.25 s a file; 200 made its folder copy half of quick mode


def quick_folder(work):
    """A small real folder for quick mode: a copy of the first QUICK_FOLDER_FILES files under /usr/share (or this repo's docs)."""
    src = "/usr/share" if os.path.isdir("/usr/share") else os.path.join(ROOT, "docs")
    dst = os.path.join(work, "share-sample")
    n = 0
    for d, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(d, name)
            if n >= QUICK_FOLDER_FILES or os.path.islink(p) or not os.path.isfile(p) or not os.access(p, os.R_OK):
                continue
            rel = os.path.relpath(p, src)
            os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(p, os.path.join(dst, rel))
            n += 1
    return dst


def supplier_scan(binary, work, quick):
    """Upload and restore of one file against supplier count (default layout RS(ceil(n/2), n))."""
    counts, size = ([2, 4], 8 << 20) if quick else ([2, 4, 7, 13, 18, 26], 128 << 20)
    src = os.path.join(work, "scan.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    rows = []
    for n in counts:
        d = Bitdust(work, binary, n, 0, f"scan n={n}")
        print(f"bitdust {n} suppliers: {human(size)} ...", flush=True)
        d.start()
        try:
            r = measure(d, src, work)
        finally:
            d.stop()
            shutil.rmtree(d.dir, ignore_errors=True)
        rows.append({"suppliers": n, "size": size, **r})
    os.remove(src)
    return rows


def heal_bench(binary, quick):
    """`bitdust-lab bench`: degraded restore (n - k suppliers stopped) and time back to full redundancy."""
    # quick mode replaces a silent supplier after 5 s instead of the devnet's 15 (the wait is most of this bench)
    size, fire_after = ("8M", "5") if quick else ("256M", "15")
    print(f"bitdust-lab bench --size {size} --fire-after-secs {fire_after} (degraded restore, rebuild) ...", flush=True)
    r = subprocess.run([binary, "--json", "bench", "--size", size, "--fire-after-secs", fire_after],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def simulate(binary, quick, sizes=None):
    """`bitdust-lab sim`: the in-process network at several sizes."""
    nodes, lookups, idle = ("30,60", "50", "2") if quick else ("100,300,1000", "200", "5")
    nodes = sizes or nodes
    print(f"bitdust-lab sim --nodes {nodes} ...", flush=True)
    r = subprocess.run([binary, "--json", "sim", "--nodes", nodes, "--lookups", lookups, "--hire", "4,13",
                        "--idle-secs", idle], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def messages_bench(binary, quick):
    """`bitdust-lab messages`: private message latency and throughput between two devnet daemons."""
    count = "200" if quick else "2000"
    mib = "64" if quick else "256"
    print(f"bitdust-lab messages --count {count} --file-mib {mib} ...", flush=True)
    r = subprocess.run([binary, "--json", "messages", "--count", count, "--file-mib", mib],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def render_messages(m):
    lat = m["direct_latency_ms"]
    return "\n".join(["", "## Private messages (`bitdust-lab messages`, two devnet daemons, through their APIs)", "",
                      f"- direct latency over {m['messages']} messages one after the other: p50 {lat['p50']:.2f} ms, "
                      f"p99 {lat['p99']:.2f} ms (max {lat['max']:.2f} ms)",
                      f"- both ways at once ({m.get('senders_per_side', 4)} clients sending on each side): "
                      f"{m['pair_messages_per_second']:.0f} messages per second for the pair",
                      f"- a {m['file_mib']} MiB file, offer to verified copy: {m['file_seconds']:.2f} s "
                      f"({m['file_mb_per_s']:.0f} MB/s; the offer with its hashing {m['file_offer_seconds']:.2f} s)",
                      f"- offline delivery: {m['offline_messages']} messages from the mailboxes in the history "
                      f"{m['offline_delivery_seconds']:.2f} s after the recipient's daemon was started", ""])


def render_rest(scan, heal, sim):
    lines = ["", "## Upload and restore against supplier count (bitdust, RS(ceil(n/2), n))", "",
             "| suppliers | size | upload s (MB/s) | restore s (MB/s) | CPU s up / down | stored / data |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in scan:
        lines.append(f"| {r['suppliers']} | {human(r['size'])} | {r['upload_s']:.2f} ({r['size'] / r['upload_s'] / 1e6:.1f}) | "
                     f"{r['download_s']:.2f} ({r['size'] / r['download_s'] / 1e6:.1f}) | "
                     f"{r['upload_cpu_s']:.1f} / {r['download_cpu_s']:.1f} | {r['stored'] / r['size']:.3f} |")
    lines += ["", f"## Losing suppliers (`bitdust-lab bench`, {human(heal['bytes'])}, {heal['suppliers']} suppliers, "
              f"{heal['layout']})", "",
              f"- restore with every supplier: {heal['restore_seconds']:.2f} s ({heal['restore_mb_per_s']:.1f} MB/s)",
              f"- restore with n - k suppliers stopped: {heal['degraded_restore_seconds']:.2f} s "
              f"({heal['degraded_restore_mb_per_s']:.1f} MB/s)",
              f"- one supplier lost for good: replaced after {heal['lost_supplier_replaced_after_seconds']:.1f} s "
              f"(silent for {heal.get('fire_after_seconds', 15)} s: fired), full "
              f"redundancy after {heal['full_redundancy_after_seconds']:.1f} s",
              "", "## Scale: in-process network (`bitdust-lab sim`, memory transport, full nodes)", "",
              "| nodes | hop bound ceil(log2 N) | identity hops median / p99 | identity ms median / p99 | "
              "nickname hops median / p99 | nickname ms median / p99 | failed lookups | MiB per idle node | "
              "idle CPU % of a core | hire 4 / 13 s | start s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sim:
        i, n = r["identity"], r["nickname"]
        hire = " / ".join(f"{h['secs']:.2f}" for h in r["hire"]) or "-"
        lines.append(f"| {r['nodes']} | {r['hop_bound']} | {i['hops']['median']:.0f} / {i['hops']['p99']:.0f} | "
                     f"{i['latency_ms']['median']:.1f} / {i['latency_ms']['p99']:.1f} | "
                     f"{n['hops']['median']:.0f} / {n['hops']['p99']:.0f} | "
                     f"{n['latency_ms']['median']:.1f} / {n['latency_ms']['p99']:.1f} | "
                     f"{i['failures'] + n['failures']} | {r['mib_per_node']:.2f} | {r['idle_cpu_percent']:.1f} | "
                     f"{hire} | {r['start_secs']:.0f} |")
    return "\n".join(lines) + "\n"


def chart(tahoe, out):
    """Draws throughput against size (matplotlib, installed into the suite's venv). Returns whether it did."""
    python = os.path.join(tahoe.venv, "bin", "python")
    if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        if subprocess.run([python, "-m", "pip", "install", "-q", "matplotlib"]).returncode != 0:
            print("matplotlib could not be installed: no chart", flush=True)
            return False
    r = subprocess.run([python, "-c", CHART, os.path.join(out, "results.json"), out])
    return r.returncode == 0


def render(results, sizes, tahoe_label, elapsed):
    mb = 1e6
    lines = ["# bitdust vs Tahoe-LAFS, same machine, same data", "",
             f"{os.cpu_count()} cores; every node on 127.0.0.1; one run, {elapsed:.0f} s in all. "
             "Upload and download are wall times of the command-line client; CPU is every process of the system "
             "(daemons and client); peak RSS is the client-side daemon's VmHWM; stored is bytes on the storage "
             "nodes per byte of data.", ""]
    groups = [(human(size), [r for r in results if r["size"] == size and "folder" not in r]) for size in sizes]
    folder_rows = [r for r in results if "folder" in r]
    if folder_rows:
        f = folder_rows[0]
        groups.append((f"folder {f['folder']} ({f['files']} files, {human(f['size'])})", folder_rows))
    for title, rows in groups:
        if not rows:
            continue
        size = rows[0]["size"]
        base = next((r for r in rows if r["system"] == tahoe_label), None)
        lines += [f"## {title}", "",
                  "| system | upload s (MB/s) | download s (MB/s) | CPU s up / down | peak RSS | stored / data |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            lines.append(
                f"| {r['system']} | {r['upload_s']:.2f} ({size / r['upload_s'] / mb:.1f}) | "
                f"{r['download_s']:.2f} ({size / r['download_s'] / mb:.1f}) | "
                f"{r['upload_cpu_s']:.2f} / {r['download_cpu_s']:.2f} | {human(r['peak_rss'])} | "
                f"{r['stored'] / size:.3f} |")
        lines += ["", "| ratio bitdust / Tahoe | upload time | download time | CPU up | CPU down | peak RSS | stored |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            if base is None or r is base:
                continue
            def q(a, b):
                return f"{a / b:.3f}" if b else "n/a"
            lines.append(
                f"| {r['system']} | {q(r['upload_s'], base['upload_s'])} | {q(r['download_s'], base['download_s'])} | "
                f"{q(r['upload_cpu_s'], base['upload_cpu_s'])} | {q(r['download_cpu_s'], base['download_cpu_s'])} | "
                f"{q(r['peak_rss'], base['peak_rss'])} | {q(r['stored'], base['stored'])} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
