#!/usr/bin/env python3
"""Incremental backups (issue 18), bitdust beside restic (Debian's package, backing up to a local folder).

On an incremental bitdust devnet (4 suppliers, RS(2, 4)) and a restic repository on the same disk:
1. a real folder (/usr/share/doc; --folder) backed up twice, unchanged: bytes sent to the suppliers and time of
   the second against the first (targets: under 1% and under 10%);
2. one byte changed in the middle of a large file (1 GiB; 64 MiB with --quick): new chunk data before erasure
   coding (target: under 8 MiB);
3. ten daily versions of a generated folder where 1% of the files change each day: bytes on the suppliers against
   restic's repository size times n/k (target: within 1.2x);
4. forget (keep the last 3) and prune on that history: space freed on the suppliers, and the time it takes;
5. many small files (1,000,000; 20,000 with --quick): backup time, the customer daemon's peak memory (target under
   500 MB), `ls` of one folder and the restore of one file (targets: under 2 s each).

usage: python3 bench/incremental.py [--quick] [--folder PATH] [--files N] [--out DIR] [--bitdust PATH]
Also run by bench/suite.py (its report gets these rows). Installs restic with apt-get if it is missing.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from suite import ROOT, du, human, peak_rss  # noqa: E402

N_OVER_K = 2.0  # RS(2, 4)


class Devnet:
    """An incremental bitdust devnet with customer alice."""

    def __init__(self, work, binary):
        self.bin, self.dir = binary, os.path.join(work, "devnet")

    def start(self):
        self.log = open(self.dir + ".log", "w")
        self.proc = subprocess.Popen(
            [self.bin, "devnet", "--dir", self.dir, "--suppliers", "4", "--spares", "0"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        for line in self.proc.stdout:
            if "press Ctrl-C" in line:
                break

    def cli(self, *args):
        out = subprocess.run([self.bin, "--home", os.path.join(self.dir, "alice"), "--json", *args],
                             check=True, capture_output=True, text=True).stdout
        if not out.strip().startswith(("{", "[")):
            return out
        if args[0] in ("backup", "restore"):  # JSON lines: status lines, then the summary
            return json.loads(out.strip().splitlines()[-1])
        return json.loads(out)

    def timed(self, *args):
        t = time.time()
        r = self.cli(*args)
        return r, time.time() - t

    def stored(self):
        return du([os.path.join(self.dir, d, "store", "fragments") for d in os.listdir(self.dir) if d.startswith("supplier")])

    def customer_pid(self):
        return int(open(os.path.join(self.dir, "alice", "daemon.pid")).read().strip())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def restic_available():
    if shutil.which("restic"):
        return True
    subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "update", "-qq"], capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "restic"], capture_output=True)
    return shutil.which("restic") is not None


class Restic:
    def __init__(self, work):
        self.repo = os.path.join(work, "restic-repo")
        self.env = dict(os.environ, RESTIC_PASSWORD="bench", RESTIC_REPOSITORY=self.repo, RESTIC_CACHE_DIR=os.path.join(work, "restic-cache"))
        subprocess.run(["restic", "init", "-q"], env=self.env, check=True, capture_output=True)

    def backup(self, path):
        t = time.time()
        subprocess.run(["restic", "backup", "-q", path], env=self.env, check=True, capture_output=True)
        return time.time() - t

    def size(self):
        return du([self.repo])


def random_file(path, size, rng):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n


def daily_folder(root, files, rng):
    """A folder of `files` files, 4 KiB to 1 MiB, half of them compressible text."""
    for i in range(files):
        d = os.path.join(root, f"d{i % 50:02}")
        os.makedirs(d, exist_ok=True)
        size = int(rng.choice([4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20]))
        p = os.path.join(d, f"f{i:05}")
        if i % 2:
            with open(p, "w") as f:
                f.write((f"line {i} of a text file that compresses\n" * (size // 40 + 1))[:size])
        else:
            random_file(p, size, rng)


def run(binary, work, quick=False, folder=None, small_files=None):
    rng = random.Random(18)
    net = Devnet(work, binary)
    net.start()
    out = {}
    try:
        # 1. a real folder, twice
        folder = folder or ("/usr/share/doc" if os.path.isdir("/usr/share/doc") else "/usr/share")
        before = net.stored()
        first, t1 = net.timed("backup", folder)
        mid = net.stored()
        second, t2 = net.timed("backup", folder)
        after = net.stored()
        out["rebackup"] = dict(folder=folder, bytes=first["bytes"], files=first["files"], first_sent=mid - before,
                               first_s=t1, second_sent=after - mid, second_s=t2, second_new=second["new_bytes"],
                               unchanged=second["unchanged_files"])

        # 2. one byte in the middle of a large file
        big_dir = os.path.join(work, "big")
        os.makedirs(big_dir)
        big = os.path.join(big_dir, "big.bin")
        size = (64 << 20) if quick else (1 << 30)
        random_file(big, size, rng)
        net.cli("backup", big_dir)
        with open(big, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0xFF]))
        edit, t = net.timed("backup", big_dir)
        out["one_byte"] = dict(size=size, new_bytes=edit["new_bytes"], stored=edit["stored_bytes"], seconds=t)
        shutil.rmtree(big_dir)

        # 3. ten daily versions, 1% of the files changed each day; restic beside
        files = 500 if quick else 5000
        daily = os.path.join(work, "daily")
        daily_folder(daily, files, rng)
        restic = Restic(work) if restic_available() else None
        start = net.stored()
        times, restic_times = [], []
        for day in range(10):
            if day:
                for i in rng.sample(range(files), max(1, files // 100)):
                    p = os.path.join(daily, f"d{i % 50:02}", f"f{i:05}")
                    random_file(p, os.path.getsize(p), rng)
            _, t = net.timed("backup", daily)
            times.append(t)
            if restic:
                restic_times.append(restic.backup(daily))
        stored = net.stored() - start
        out["daily"] = dict(files=files, folder_bytes=du([daily]), stored=stored, seconds=times,
                            restic_repo=restic.size() if restic else None, restic_seconds=restic_times)

        # 4. forget + prune on that history
        held = net.stored()
        _, t_forget = net.timed("forget", "daily", "--keep-last", "3")
        pruned, t_prune = net.timed("prune")
        out["prune"] = dict(freed_on_suppliers=held - net.stored(), report=pruned, forget_s=t_forget, prune_s=t_prune)
        shutil.rmtree(daily)

        # 5. many small files
        n = small_files or (20_000 if quick else 1_000_000)
        many = os.path.join(work, "many")
        for i in range(n):
            d = os.path.join(many, f"a{i // 10000:03}", f"b{(i // 100) % 100:02}")
            if i % 100 == 0:
                os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"file{i:07}.txt"), "w") as f:
                f.write(f"small file {i}\n")
        r, t_backup = net.timed("backup", many)
        rss = peak_rss(net.customer_pid())
        _, t_ls = net.timed("ls", "many", "a000/b07")
        one = os.path.join(work, "one")
        _, t_one = net.timed("restore", "many", "--path", "a000/b07/file0000742.txt", "--to", one)
        ok = open(os.path.join(one, "file0000742.txt")).read() == "small file 742\n"
        out["many"] = dict(files=n, seconds=t_backup, new_bytes=r["new_bytes"], customer_peak_rss=rss, ls_s=t_ls,
                           restore_one_s=t_one, restored_ok=ok)
        shutil.rmtree(many)
    finally:
        net.stop()
    return out


def render(r):
    lines = ["## Incremental backups (issue 18)", ""]
    rb = r["rebackup"]
    lines += [
        f"Re-backup of an unchanged `{rb['folder']}` ({rb['files']} files, {human(rb['bytes'])}):",
        "",
        "| | sent to suppliers | time |",
        "|---|---:|---:|",
        f"| first backup | {human(rb['first_sent'])} | {rb['first_s']:.2f} s |",
        f"| second, unchanged | {human(rb['second_sent'])} ({100 * rb['second_sent'] / max(rb['first_sent'], 1):.2f}%) "
        f"| {rb['second_s']:.2f} s ({100 * rb['second_s'] / max(rb['first_s'], 1e-9):.1f}%) |",
        "",
    ]
    ob = r["one_byte"]
    lines += [f"One byte changed in the middle of a {human(ob['size'])} file: {human(ob['new_bytes'])} of new chunk data "
              f"({human(ob['stored'])} stored with RS(2, 4)), {ob['seconds']:.2f} s.", ""]
    d = r["daily"]
    ratio = ""
    if d["restic_repo"]:
        ratio = f"; restic's repository {human(d['restic_repo'])}, times n/k = {human(d['restic_repo'] * N_OVER_K)}: " \
                f"bitdust stores {d['stored'] / (d['restic_repo'] * N_OVER_K):.2f}x that"
    lines += [f"Ten daily versions of {d['files']} files ({human(d['folder_bytes'])}), 1% changed a day: "
              f"{human(d['stored'])} on the suppliers{ratio}. Backup times {', '.join(f'{t:.1f}' for t in d['seconds'])} s"
              + (f" (restic {', '.join(f'{t:.1f}' for t in d['restic_seconds'])} s)." if d["restic_seconds"] else "."), ""]
    p = r["prune"]
    lines += [f"forget --keep-last 3 ({p['forget_s']:.2f} s) then prune ({p['prune_s']:.2f} s): "
              f"{human(p['freed_on_suppliers'])} freed on the suppliers ({p['report']['blocks_deleted']} blocks deleted, "
              f"{p['report']['blocks_repacked']} repacked).", ""]
    m = r["many"]
    lines += [f"{m['files']:,} small files: backup {m['seconds']:.1f} s ({m['files'] / m['seconds']:.0f} files/s), customer "
              f"peak RSS {human(m['customer_peak_rss'])}, `ls` of one folder {m['ls_s']:.2f} s, restore of one file "
              f"{m['restore_one_s']:.2f} s ({'identical' if m['restored_ok'] else 'WRONG'}).", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--folder")
    ap.add_argument("--files", type=int)
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "incremental"))
    ap.add_argument("--bitdust")
    a = ap.parse_args()
    binary = a.bitdust
    if not binary:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "bitdust"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "bitdust")
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bitdust-incr-", dir=os.environ.get("BENCH_TMP"))
    try:
        r = run(binary, work, a.quick, a.folder, a.files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(a.out, "incremental.json"), "w") as f:
        json.dump(r, f, indent=2)
    text = render(r)
    with open(os.path.join(a.out, "incremental.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
