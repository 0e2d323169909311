#!/usr/bin/env python3
"""Growth benchmark: the inputs that once made xf quadratic (or worse), each at
three sizes, so that the growth from one size to the next is visible
(linear: ×2 per doubling; quadratic: ×4).

  failing-batch N   a top-level array of N objects, one per line, every one
                    failing the transform (`fail`): `xf run`
  bad-item-batch N  a one-line top-level array of N objects whose last holds a
                    malformed string (a lone surrogate): `xf run`
  load N            a .xf of N lines (`tag add`, `label`, `drop when`, in turn):
                    `xf check`
  include-fanout D  D+1 files, each including the next twice: `xf check` of
                    the first, then one record through it (`xf run`)
  lookup N          a CSV lookup table of N rows: `xf check` (peak RSS is the point)

Each case prints wall seconds and peak RSS (from /usr/bin/time). Inputs are made
under target/growth/. Build first: `cargo build --release`.

Usage:
  python3 benches/growth.py                               # every case, default sizes
  python3 benches/growth.py --case load --sizes 10000,20000,40000
  python3 benches/growth.py --xf /tmp/xf-main --case failing-batch --sizes 2500,5000,10000
"""
import argparse
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, "target", "growth")

SIZES = {
    "failing-batch": [5000, 10000, 20000],
    "bad-item-batch": [400000, 800000, 1600000],
    "load": [10000, 20000, 40000],
    "include-fanout": [4, 6, 8],
    "lookup": [250000, 500000, 1000000],
}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def failing_batch(n):
    d = os.path.join(WORK, f"failing-batch-{n}")
    os.makedirs(d, exist_ok=True)
    xf = write(os.path.join(d, "t.xf"), 'fail "no {{ a }}"\n')
    items = ",\n  ".join('{"a": %d, "b": "x"}' % i for i in range(n))
    data = write(os.path.join(d, "in.json"), "[\n  " + items + "\n]\n")
    return ["run", xf, data, "-j1"]


def bad_item_batch(n):
    d = os.path.join(WORK, f"bad-item-batch-{n}")
    os.makedirs(d, exist_ok=True)
    xf = write(os.path.join(d, "t.xf"), 'label x = 1\n')
    items = ['{"a":%d}' % i for i in range(n - 1)] + ['{"a":"\\ud800"}']
    data = write(os.path.join(d, "in.json"), "[" + ",".join(items) + "]\n")
    # 1.6 M items are 16 MB, over the default record size limit of 4 MiB.
    return ["run", xf, data, "-j1", "--max-record-size", "64"]


def load(n):
    d = os.path.join(WORK, f"load-{n}")
    os.makedirs(d, exist_ok=True)
    kinds = [
        'tag add f{i} = "{{{{ a }}}}"',
        'label l{i} = "x"',
        'drop when a == {i}',
    ]
    lines = [kinds[i % 3].format(i=i) for i in range(n)]
    xf = write(os.path.join(d, "t.xf"), "\n".join(lines) + "\n")
    return ["check", xf]


def include_fanout(depth):
    d = os.path.join(WORK, f"include-fanout-{depth}")
    os.makedirs(d, exist_ok=True)
    for i in range(depth):
        write(
            os.path.join(d, f"f{i}.xf"),
            f'include "f{i + 1}.xf"\ninclude "f{i + 1}.xf"\n',
        )
    write(os.path.join(d, f"f{depth}.xf"), 'tag add n = "{{ n }}x"\n')
    return ["check", os.path.join(d, "f0.xf")]


def lookup(n):
    d = os.path.join(WORK, f"lookup-{n}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "table.csv"), "w") as f:
        f.write("accountId,index,tier\n")
        for i in range(n):
            f.write(f"{i},idx-{i % 97},tier-{i % 5}\n")
    xf = write(
        os.path.join(d, "t.xf"),
        'lookup tags from "table.csv" key accountId\ntag add index = "{{ index }}"\n',
    )
    return ["check", xf]


CASES = {
    "failing-batch": failing_batch,
    "bad-item-batch": bad_item_batch,
    "load": load,
    "include-fanout": include_fanout,
    "lookup": lookup,
}


def timed(xf, args, timeout):
    cmd = ["/usr/bin/time", "-f", "%e %M", xf] + args
    try:
        run = subprocess.run(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, None, f"over {timeout} s"
    last = run.stderr.decode(errors="replace").strip().splitlines()[-1]
    seconds, rss_kb = last.split()
    status = "exit %d" % run.returncode
    return float(seconds), int(rss_kb) / 1024, status


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xf", default=os.path.join(REPO, "target", "release", "xf"))
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--sizes", help="comma-separated, for the one --case given")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    cases = args.case or list(CASES)
    if args.sizes and len(cases) != 1:
        sys.exit("--sizes needs exactly one --case")
    os.makedirs(WORK, exist_ok=True)
    print(f"{args.xf}")
    print("| case | size | seconds | peak RSS MB | status |")
    print("|---|---|---|---|---|")
    for case in cases:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else SIZES[case]
        for size in sizes:
            cmd = CASES[case](size)
            seconds, rss, status = timed(args.xf, cmd, args.timeout)
            shown = "-" if seconds is None else f"{seconds:.2f}"
            mb = "-" if rss is None else f"{rss:.1f}"
            print(f"| {case} | {size:,} | {shown} | {mb} | {status} |", flush=True)
            if case == "include-fanout" and seconds is not None:
                record = write(os.path.join(WORK, "one.json"), '{"n": 1}\n')
                seconds, rss, status = timed(args.xf, ["run", cmd[1], record], args.timeout)
                shown = "-" if seconds is None else f"{seconds:.2f}"
                mb = "-" if rss is None else f"{rss:.1f}"
                print(f"| include-fanout (run 1 record) | {size:,} | {shown} | {mb} | {status} |", flush=True)


if __name__ == "__main__":
    main()
