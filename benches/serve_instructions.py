#!/usr/bin/env python3
"""Instructions per record in `xf serve` (callgrind): repeatable where wall time is not.

One command:  python3 benches/serve_instructions.py [--xf OLD --xf NEW] [--count N] [--batch K] [--compact]

Each build runs `xf serve --transform transforms/armor-splunk.xf --format hec` (the
set-up of benches/serve.py) under valgrind's callgrind, with the destination
benches/sink.rs; N webhooks (Armor's single detection webhook,
tests/fixtures/armor/detection-only.json, pretty-printed; --compact writes it
compactly, --batch K makes it an array of K of its record) are POSTed one after
the other on one connection, and once the destination has them all, xf stops. It prints, per record, the instructions of
the whole process and those inside reading the body into records
(`serve::receive::body::records`) and routing them (`serve::route::route`: the
destinations' tests, the transform, writing the results), which is the engine's
share of a webhook's work.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XF = os.path.join(REPO, "target", "release", "xf")
SINK = os.path.join(REPO, "target", "release", "examples", "sink")
BODY = os.path.join(REPO, "tests", "fixtures", "armor", "detection-only.json")

# Functions whose inclusive cost is reported: (label, pattern of the symbol).
PARTS = [
    ("read", r"serve::receive::body::records\b"),
    ("route", r"serve::route::route\b"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=120):
    start = time.time()
    while time.time() - start < limit:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port} after {limit} s")


def delivered(sink_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{sink_port}/count") as answer:
        return json.loads(answer.read())["records"]


def body(batch, compact):
    """The fixture as it is (pretty-printed, an array of one record), or
    compact, or an array of `batch` of its record."""
    text = open(BODY, "rb").read()
    if batch <= 1 and not compact:
        return text
    records = json.loads(text) * max(batch, 1)
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(records, separators=separators, ensure_ascii=False).encode()


def measure(xf, count, batch, compact, work):
    out = os.path.join(work, "callgrind.out")
    sink_port, port = free_port(), free_port()
    sink = subprocess.Popen([SINK, str(sink_port)])
    wait_port(sink_port)
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", xf, "serve",
         "--format", "hec", "--listen", f"127.0.0.1:{port}", "--spool", os.path.join(work, "spool"),
         "--transform", os.path.join(REPO, "transforms", "armor-splunk.xf"),
         "--to", f"http://127.0.0.1:{sink_port}/hec", "--private-destination", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        payload = body(batch, compact)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(count):
            connection.request("POST", "/", payload, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
        connection.close()
        records = count * max(batch, 1)
        start = time.time()
        while delivered(sink_port) < records:
            if time.time() - start > 300:
                raise SystemExit("the destination did not get every record")
            time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=300)
    finally:
        if server.poll() is None:
            server.kill()
        sink.kill()
        sink.wait()
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                               capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", annotated).group(1).replace(",", ""))
    parts = {}
    for label, pattern in PARTS:
        costs = [int(m.group(1).replace(",", "")) for line in annotated.splitlines()
                 if re.search(pattern, line) and (m := re.match(r"\s*([\d,]+)", line))]
        parts[label] = max(costs, default=0)
    return records, total, parts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xf", action="append", help="a build to measure (repeat to compare); "
                        "default: this repository's release build")
    parser.add_argument("--count", type=int, default=2000, help="webhooks to send (default 2000)")
    parser.add_argument("--batch", type=int, default=1, help="records per webhook (default 1)")
    parser.add_argument("--compact", action="store_true", help="the webhook written compactly, as most "
                        "senders write it (the fixture is pretty-printed)")
    args = parser.parse_args()
    builds = args.xf or [XF]
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "sink"], cwd=REPO, check=True)
    shape = "compact" if args.compact else "pretty-printed"
    print(f"{args.count} webhooks of {max(args.batch, 1)} record(s), {shape}, instructions per record")
    print("| build | total | read (body → records) | route (tests, transform, write) |")
    print("|---|---|---|---|")
    for xf in builds:
        with tempfile.TemporaryDirectory() as work:
            records, total, parts = measure(xf, args.count, args.batch, args.compact, work)
        print(f"| {xf} | {total / records:,.0f} | {parts['read'] / records:,.0f} | "
              f"{parts['route'] / records:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
