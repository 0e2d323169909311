#!/usr/bin/env python3
"""Whole-process benchmark: xf against jq, jaq and a serde_json floor.

Every tool does the work of transforms/armor-splunk.xf (Armor's "Hello world
config": events filter, labels, tags lookup, tag removal, Kibana link, Splunk
HEC envelope) on a corpus from ../shared/bench/gen_corpus.py:

  xf     target/release/xf run transforms/armor-splunk.xf [-j N]
  floor  benches/floor.rs: serde_json parse, the transform hand-coded, serialize
  jq     jq -c -f benches/armor-splunk.jq          (Debian's jq, installed if missing)
  jaq    jaq -c -f benches/armor-splunk.jq         (cargo install jaq, if missing)

It checks that all outputs are the same (byte for byte, else value by value),
then prints one table from this run: median wall time of --runs runs, records/s,
MB/s of input, peak RSS, and each one's ratio to the floor's records/s.

Usage:
  python3 benches/bench.py                         # --mix armor --count 200000 --seed 1, 5 runs
  python3 benches/bench.py --mix all --runs 5
  python3 benches/bench.py --count 20000 --runs 3 --threads 1,2 --tools xf,floor
  python3 benches/bench.py --tools floor,xf --before /tmp/xf-old   # an older build beside
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_corpus.py")
WORK = os.path.join(REPO, "target", "bench")


def sh(args, **kw):
    return subprocess.run(args, check=True, **kw)


def corpus(mix, count, seed):
    os.makedirs(WORK, exist_ok=True)
    path = os.path.join(WORK, f"{mix}-{count}-{seed}.ndjson")
    if not os.path.exists(path):
        if not os.path.exists(GEN):
            sys.exit(f"corpus generator not found at {GEN}")
        print(f"generating {path} …", file=sys.stderr)
        with open(path + ".tmp", "wb") as out:
            sh([sys.executable, GEN, "--mix", mix, "--count", str(count), "--seed", str(seed)], stdout=out)
        os.replace(path + ".tmp", path)
    return path


def ensure_tools(wanted):
    found = {}
    if not os.path.exists("/usr/bin/time"):
        print("installing GNU time (apt-get) …", file=sys.stderr)
        sh(["apt-get", "install", "-y", "time"], stdout=subprocess.DEVNULL)
    if "jq" in wanted:
        if not shutil.which("jq"):
            print("installing jq (apt-get) …", file=sys.stderr)
            sh(["apt-get", "install", "-y", "jq"], stdout=subprocess.DEVNULL)
        found["jq"] = shutil.which("jq")
    if "jaq" in wanted:
        jaq = shutil.which("jaq") or os.path.expanduser("~/.cargo/bin/jaq")
        if not os.path.exists(jaq):
            print("installing jaq (cargo install jaq) …", file=sys.stderr)
            sh(["cargo", "install", "jaq", "--locked"])
        found["jaq"] = jaq
    return found


def measure(args, stdin_path, out_path):
    """Runs a command once under GNU time; returns (seconds, peak RSS in bytes).

    Peak RSS comes from GNU time (a small C program), not from wait4 here:
    Linux keeps a process's high-water mark across exec, so a child forked from
    this Python process would report Python's own footprint as its floor.
    """
    rss_path = out_path + ".rss"
    with open(stdin_path, "rb") as stdin, open(out_path, "wb") as stdout:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_path, *args],
                              stdin=stdin, stdout=stdout, cwd=REPO)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed with {proc.returncode}")
    with open(rss_path) as f:
        kilobytes = int(f.read().split()[-1])
    return elapsed, kilobytes * 1024


def same_output(a, b):
    """Byte-equal, or equal as JSON values line by line (number formatting may differ)."""
    if subprocess.run(["cmp", "-s", a, b]).returncode == 0:
        return True, "identical bytes"
    import json
    with open(a, encoding="utf-8") as fa, open(b, encoding="utf-8") as fb:
        for n, (la, lb) in enumerate(zip(fa, fb), 1):
            if json.loads(la) != json.loads(lb):
                return False, f"line {n} differs"
        if fa.readline() or fb.readline():
            return False, "different number of records"
    return True, "same values"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", default="armor")
    parser.add_argument("--count", type=int, default=200000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="xf thread counts to run, comma-separated")
    parser.add_argument("--tools", default="floor,xf,jaq,jq")
    parser.add_argument("--before", metavar="XF",
                        help="an older xf binary, run beside this one (`before -jN` rows)")
    args = parser.parse_args()
    tools = args.tools.split(",")

    sh(["cargo", "build", "--release", "--quiet", "--bin", "xf", "--example", "floor"], cwd=REPO)
    input_path = corpus(args.mix, args.count, args.seed)
    size = os.path.getsize(input_path)
    found = ensure_tools(tools)

    commands = []
    if "floor" in tools:
        commands.append(("floor", [os.path.join(REPO, "target/release/examples/floor")]))
    if "xf" in tools:
        for threads in args.threads.split(","):
            commands.append((f"xf -j{threads}", [os.path.join(REPO, "target/release/xf"), "run",
                                                "transforms/armor-splunk.xf", "-j", threads]))
            if args.before:
                commands.append((f"before -j{threads}", [os.path.abspath(args.before), "run",
                                                         "transforms/armor-splunk.xf", "-j", threads]))
    for tool in ("jaq", "jq"):
        if tool in tools:
            commands.append((tool, [found[tool], "-c", "-f", "benches/armor-splunk.jq"]))

    # Runs alternate between the tools, so that a busy spell on this shared
    # machine falls on all of them rather than on one.
    times = {name: [] for name, _ in commands}
    rss = {name: [] for name, _ in commands}
    outputs = {name: os.path.join(WORK, f"out-{name.replace(' ', '')}.ndjson") for name, _ in commands}
    for run in range(args.runs):
        for name, command in commands:
            seconds, peak = measure(command, input_path, outputs[name])
            times[name].append(seconds)
            rss[name].append(peak)
            print(f"{name}: run {run + 1}: {seconds:.2f} s, {peak / 2**20:.1f} MB", file=sys.stderr)
    results = [(name, statistics.median(times[name]), max(rss[name]), outputs[name]) for name, _ in commands]

    reference = results[0][3]
    with open(reference, "rb") as f:
        records = sum(1 for _ in f)
    for name, _, _, out_path in results[1:]:
        ok, how = same_output(reference, out_path)
        print(f"output of {name} vs {results[0][0]}: {'same' if ok else 'DIFFERENT'} ({how})", file=sys.stderr)
        if not ok:
            sys.exit(1)

    floor = next((r for r in results if r[0] == "floor"), None)
    print(f"\n{args.mix} corpus: {args.count} lines, {records} output records, {size / 1e6:.0f} MB; "
          f"median of {args.runs} runs; {os.cpu_count()} cores\n")
    print("| tool | median s | records/s | MB/s | peak RSS MB | × floor |")
    print("|---|---|---|---|---|---|")
    for name, seconds, peak, _ in results:
        ratio = f"{floor[1] / seconds:.2f}" if floor else "–"
        print(f"| {name} | {seconds:.2f} | {records / seconds:,.0f} | {size / 1e6 / seconds:.0f} | "
              f"{peak / 2**20:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
