#!/usr/bin/env python3
"""xf lsp latency: didChange → publishDiagnostics on the largest shipped transform.

Starts `xf lsp` (the release build by default), opens the largest transform in
transforms/ (by bytes; its include and schemas are read as for any check),
then sends N edits one at a time, each a whole new text (full sync), alternating
a harmless comment line and a misspelt statement, and times each from the
write of the didChange to the read of its publishDiagnostics. The edits are
waited for one by one, so no debounce merges them: each is a full check.
Prints the median, the 95th percentile and the worst, in milliseconds.

Build first: `cargo build --release`.

Usage:
  python3 benches/lsp.py                    # 200 edits
  python3 benches/lsp.py --edits 1000 --xf target/debug/xf
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def send(proc, message):
    body = json.dumps(message).encode()
    proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    proc.stdin.flush()


def receive(proc):
    length = None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("xf lsp ended")
        line = line.strip()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(proc.stdout.read(length))


def wait_for(proc, predicate):
    while True:
        message = receive(proc)
        if predicate(message):
            return message


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xf", default=os.path.join(REPO, "target", "release", "xf"))
    parser.add_argument("--edits", type=int, default=200)
    args = parser.parse_args()

    folder = os.path.join(REPO, "transforms")
    largest = max(
        (os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".xf")),
        key=os.path.getsize,
    )
    text = open(largest, encoding="utf-8").read()
    uri = "file://" + os.path.abspath(largest)
    proc = subprocess.Popen([args.xf, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    send(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    wait_for(proc, lambda m: m.get("id") == 1)
    send(proc, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
    is_published = lambda m: m.get("method") == "textDocument/publishDiagnostics"
    send(proc, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "xf", "version": 1, "text": text}}})
    opened = wait_for(proc, is_published)
    if opened["params"]["diagnostics"]:
        raise SystemExit(f"{largest} has diagnostics: {opened['params']['diagnostics']}")

    times = []
    for version in range(2, args.edits + 2):
        line = f"# edit {version}\n" if version % 2 else f"lable edit{version} = 1\n"
        change = {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"text": text + line}]}}
        start = time.perf_counter()
        send(proc, change)
        published = wait_for(proc, is_published)
        times.append((time.perf_counter() - start) * 1000)
        expect = 0 if version % 2 else 1
        if len(published["params"]["diagnostics"]) != expect:
            raise SystemExit(f"edit {version}: {published}")

    send(proc, {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
    wait_for(proc, lambda m: m.get("id") == 2)
    send(proc, {"jsonrpc": "2.0", "method": "exit", "params": None})
    proc.wait(timeout=10)

    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{os.path.relpath(largest, REPO)} ({len(text)} bytes), {len(times)} edits, {args.xf}")
    print(f"didChange → publishDiagnostics: median {statistics.median(times):.2f} ms, "
          f"p95 {p95:.2f} ms, worst {times[-1]:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
