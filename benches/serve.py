#!/usr/bin/env python3
"""Server benchmark: `xf serve` under a load generator on loopback.

One command:  python3 benches/serve.py          (builds what it needs; wrk from Debian)

What runs, all on this machine (so the load generator, xf and the destination
share its cores):
  destination  benches/sink.rs (hyper, answers 200 at once, counts records)
  xf           target/release/xf serve --transform transforms/armor-splunk.xf
               --to the destination, spool on local disk (synced before each 2xx)
  load         wrk, POSTing Armor's documented single detection webhook
               (tests/fixtures/armor/detection-only.json) for --seconds at 16 and
               at 256 connections

It prints, per server and connection count: accepted webhooks/s, accept
latency p50, p99 and p99.9 (wrk), records delivered and the backlog left
undelivered when the load ended (and how long it took to drain),
end-to-end latency from receipt to delivery (p50 and p99, from xf's
histogram: bucket upper bounds), xf's CPU time per accepted record (user +
system from /proc/PID/stat, from the start of the load until everything is
delivered plus one idle second) and its peak RSS.

  --xf OLD --xf NEW   measure several builds, one after the other on each load
                      (compare builds in one run: this machine is shared and noisy)
  --peer-cmd CMD      another server on the same load and destination: a shell
                      command with {port} and {sink} in it
  --body FILE         the webhook to POST instead of the fixture (a compact one
                      shows what keeping unseen fields as their bytes saves)
  --paced RATE        instead of wrk at full speed, about RATE webhooks/s on 200
                      connections (each waits before each request; the wait is
                      set from a 3-second probe's latency)

Then (--down-seconds, default 60) the same load at 16
connections with the destination down: RSS sampled every few seconds, to show
that the backlog grows on disk, not in memory, and the time the backlog takes
to drain once the destination is back. With --down-rate N the load while down
is paced at N webhooks/s by a Python sender instead of wrk at full speed, so
that a long run (--down-seconds 3600: an hour of traffic) fits on the disk;
--skip-up runs only that part.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XF = os.path.join(REPO, "target", "release", "xf")
SINK = os.path.join(REPO, "target", "release", "examples", "sink")
BODY = os.path.join(REPO, "tests", "fixtures", "armor", "detection-only.json")

WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("XF_BODY"), "r")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout + summary.errors.status
  io.write(string.format("XF %d %d %f %f %f %f\n", summary.requests, errors,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency:percentile(99.9) / 1e3))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def metric(text, name, labels=""):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def quantile(text, name, q):
    """The upper bound of the histogram bucket holding quantile q."""
    buckets = []
    for line in text.splitlines():
        m = re.match(name + r'_bucket\{.*le="([^"]+)".*\} (\S+)', line)
        if m:
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    want = q * buckets[-1][1]
    for bound, count in buckets:
        if count >= want:
            return bound
    return float("inf")


def start_xf(xf, spool, sink_port, port, body_format="json"):
    args = [xf, "serve", "--format", body_format, "--listen", f"127.0.0.1:{port}", "--spool", spool,
            "--transform", os.path.join(REPO, "transforms", "armor-splunk.xf"),
            "--to", f"http://127.0.0.1:{sink_port}/hec", "--private-destination", "127.0.0.1", "--concurrency", "16",
            "--spool-max-records", "100000000", "--spool-max-bytes", str(64 << 30)]
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc


def start_peer(command, sink_port, port):
    """Another server on the same load: `command` with {port} and {sink} replaced."""
    proc = subprocess.Popen(command.format(port=port, sink=sink_port), shell=True,
                            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, timeout=120)
    return proc


def cpu_seconds(pid):
    """User + system CPU time of a process and its threads so far (/proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(proc):
    """The server's own pid: the child of the shell a --peer-cmd runs in, if any."""
    try:
        children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        if children and os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) in ("sh", "bash", "dash"):
            return int(children[0])
    except OSError:
        pass
    return proc.pid


def wrk(port, connections, seconds, delay_ms=0):
    """wrk at full speed, or, with delay_ms, each connection waiting that long
    before each request (a paced load of about connections * 1000 / delay_ms a second)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        if delay_ms:
            f.write(f"delay = function() return {delay_ms} end\n")
        script = f.name
    env = dict(os.environ, XF_BODY=BODY)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
                          "--timeout", "10s", "-s", script, f"http://127.0.0.1:{port}/"],
                         env=env, capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    line = next(l for l in out.splitlines() if l.startswith("XF "))
    requests, errors, duration, p50, p99, p999 = line.split()[1:]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(requests), "errors": int(errors), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "seconds": float(duration), "p50": float(p50), "p99": float(p99), "p999": float(p999)}


def one_run(name, start, connections, seconds, cycle_ms, is_xf):
    """One server under one load: accepted/s, latencies, delivery, CPU per record, peak RSS.
    cycle_ms: 0 for wrk at full speed, else the time between two requests of one connection."""
    work = tempfile.mkdtemp(prefix="xf-bench-")
    sink_port, port = free_port(), free_port()
    sink = subprocess.Popen([SINK, str(sink_port)])
    wait_port(sink_port)
    server = start(work, sink_port, port)
    pid = server_pid(server)
    delay_ms = 0
    try:
        time.sleep(0.5)
        if cycle_ms:
            probe = wrk(port, connections, 3, max(1, round(cycle_ms)))
            delay_ms = max(1, round(cycle_ms - probe["p50"]))
            time.sleep(2)
        # What the probe sent (paced runs) is delivered before this and not counted.
        while True:
            before = json.loads(get(f"http://127.0.0.1:{sink_port}/count"))["records"]
            time.sleep(0.2)
            if json.loads(get(f"http://127.0.0.1:{sink_port}/count"))["records"] == before:
                break
        cpu_before = cpu_seconds(pid)
        result = wrk(port, connections, seconds, delay_ms)
        load_end = time.time()
        accepted = result["requests"] - result["non2xx"] - result["errors"]
        delivered_at_end = json.loads(get(f"http://127.0.0.1:{sink_port}/count"))["records"] - before
        # Let the queue drain, then read what was delivered.
        end = time.time() + 120
        while time.time() < end:
            delivered = json.loads(get(f"http://127.0.0.1:{sink_port}/count"))["records"] - before
            if delivered >= accepted:
                break
            time.sleep(0.05)
        drained = time.time() - load_end
        # What the server does once it is idle again (timers, checkpoints) is counted too.
        time.sleep(1)
        cpu = cpu_seconds(pid) - cpu_before
        metrics = get(f"http://127.0.0.1:{port}/metrics") if is_xf else ""
        return {
            "server": name,
            "connections": connections,
            "accepted/s": accepted / result["seconds"],
            "refused": result["non2xx"] + result["errors"],
            "p50 ms": result["p50"], "p99 ms": result["p99"], "p99.9 ms": result["p999"],
            "delivered": f"{delivered}/{accepted}",
            "backlog at end": max(0, accepted - delivered_at_end),
            "drained in s": drained,
            "e2e p50 ms": quantile(metrics, "xf_end_to_end_seconds", 0.5) * 1000 if is_xf else float("nan"),
            "e2e p99 ms": quantile(metrics, "xf_end_to_end_seconds", 0.99) * 1000 if is_xf else float("nan"),
            "CPU µs/record": cpu / max(accepted, 1) * 1e6,
            "peak RSS MiB": rss_mib(pid, "VmHWM"),
        }
    finally:
        if is_xf:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        else:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        sink.kill()
        sink.wait()
        shutil.rmtree(work, ignore_errors=True)


def print_table(rows):
    keys = list(rows[0].keys())
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.1f}" if isinstance(row[k], float) else str(row[k]) for k in keys) + " |")


def main():
    global BODY
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", default="16,256")
    ap.add_argument("--down-seconds", type=int, default=60)
    ap.add_argument("--down-rate", type=int, default=0,
                    help="webhooks/s while the destination is down (0: wrk at full speed)")
    ap.add_argument("--skip-up", action="store_true", help="only the destination-down run")
    ap.add_argument("--format", default="json", help="the destination's body format: json (one record a request), hec, ndjson, array")
    ap.add_argument("--xf", action="append", default=[],
                    help="an xf binary to measure (repeat to compare builds, run one after the other "
                         "per load); default: this repository's release build, built first")
    ap.add_argument("--peer-cmd", default=None,
                    help="another server to measure on the same load: a shell command with {port} (where "
                         "it listens for the webhooks) and {sink} (the destination's port) in it")
    ap.add_argument("--paced", type=int, default=0,
                    help="instead of wrk at full speed, about this many webhooks/s (wrk with a delay per "
                         "request on 100 connections); shows end-to-end latency and the backlog at the end")
    ap.add_argument("--body", default=BODY,
                    help="the webhook POSTed (default: Armor's detection fixture, pretty-printed as documented)")
    args = ap.parse_args()
    BODY = os.path.abspath(args.body)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    builds = args.xf or [XF]
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "sink"]
                   + ([] if args.xf else ["--bin", "xf"]), cwd=REPO, check=True)
    print(f"xf serve benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
          f"body {os.path.getsize(BODY)} bytes, {args.seconds} s per run, destination format {args.format}")
    servers = [(xf, lambda work, sink_port, port, xf=xf: start_xf(xf, os.path.join(work, "spool"), sink_port,
                                                                   port, args.format), True) for xf in builds]
    if args.peer_cmd:
        servers.append(("peer", lambda work, sink_port, port: start_peer(args.peer_cmd, sink_port, port), False))
    rows = []
    if args.paced:
        # Each connection waits `delay` before each request: its cycle is the
        # delay plus the answer's latency. The delay is set so that the cycle
        # gives the rate asked for, with the latency of a short first run.
        connections = 200
        cycle_ms = connections * 1000 / args.paced
        loads = [(connections, cycle_ms)]
    else:
        loads = [] if args.skip_up else [(int(c), 0) for c in args.connections.split(",")]
    for connections, delay_ms in loads:
        for name, start, is_xf in servers:
            rows.append(one_run(name, start, connections, args.seconds, delay_ms, is_xf))
    if rows:
        print_table(rows)

    if args.down_seconds > 0:
        work = tempfile.mkdtemp(prefix="xf-bench-")
        sink_port, port = free_port(), free_port()
        xf = start_xf(builds[-1], os.path.join(work, "spool"), sink_port, port, args.format)  # nothing listens there yet
        how = f"{args.down_rate} webhooks/s" if args.down_rate else "load at 16 connections"
        print(f"\ndestination down for {args.down_seconds} s under {how}:")
        try:
            if args.down_rate:
                load = PacedLoad(port, args.down_rate, args.down_seconds)
            else:
                with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
                    f.write(WRK_SCRIPT)
                    script = f.name
                load = subprocess.Popen(["wrk", "-t", "1", "-c", "16", "-d", f"{args.down_seconds}s",
                                         "-s", script, f"http://127.0.0.1:{port}/"],
                                        env=dict(os.environ, XF_BODY=BODY), stdout=subprocess.PIPE, text=True)
            samples = []
            start = time.time()
            while load.poll() is None:
                time.sleep(max(1, args.down_seconds // 10))
                asked = time.time()
                try:
                    queued = metric(get(f"http://127.0.0.1:{port}/metrics"), "xf_queue_depth")
                except OSError as error:
                    queued = float("nan")
                    print(f"/metrics did not answer: {error}")
                samples.append((time.time() - start, rss_mib(xf.pid), queued, time.time() - asked))
            if args.down_rate:
                accepted = load.accepted
                print(f"paced load: {accepted + load.refused} sent in {time.time() - load.started:.0f} s "
                      f"({(accepted + load.refused) / (time.time() - load.started):.0f}/s of {args.down_rate}/s asked)")
                if load.refused:
                    print(f"{load.refused} webhooks refused while down (not 2xx)")
            else:
                out = load.stdout.read()
                os.unlink(script)
                line = next(l for l in out.splitlines() if l.startswith("XF "))
                accepted = int(line.split()[1])
            spool_mib = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(work) for f in fs) / 2**20
            print("| s | RSS MiB | queued | /metrics answered in s |\n|---|---|---|---|")
            for t, rss, queued, took in samples:
                print(f"| {t:.0f} | {rss:.1f} | {queued:.0f} | {took:.2f} |")
            print(f"{accepted} webhooks accepted while down; spool on disk {spool_mib:.0f} MiB")
            sink = subprocess.Popen([SINK, str(sink_port)])
            back = time.time()
            while True:
                delivered = json.loads(get(f"http://127.0.0.1:{sink_port}/count"))["records"] if _up(sink_port) else 0
                if delivered >= accepted:
                    break
                if time.time() - back > 600:
                    print(f"backlog not drained in 600 s: {delivered}/{accepted}")
                    break
                time.sleep(0.5)
            print(f"backlog of {accepted} drained {time.time() - back:.1f} s after the destination came back; "
                  f"peak RSS {rss_mib(xf.pid, 'VmHWM'):.1f} MiB")
            sink.kill()
        finally:
            xf.send_signal(signal.SIGTERM)
            xf.wait(timeout=60)
            shutil.rmtree(work, ignore_errors=True)


class PacedLoad:
    """POSTs the body at `rate` per second for `seconds`, on keep-alive
    connections (one sender thread per 50/s, so that a busy machine still
    keeps the pace), counting 2xx answers; `sent` says the pace it kept."""

    def __init__(self, port, rate, seconds):
        self.accepted = self.refused = 0
        self.started = time.time()
        self.lock = threading.Lock()
        with open(BODY, "rb") as f:
            self.body = f.read()
        senders = max(1, (rate + 49) // 50)
        self.threads = [threading.Thread(target=self.send, args=(port, rate / senders, seconds), daemon=True)
                        for _ in range(senders)]
        for t in self.threads:
            t.start()

    def send(self, port, rate, seconds):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start = time.time()
        sent = 0
        while time.time() - start < seconds:
            due = start + sent / rate
            if due > time.time():
                time.sleep(due - time.time())
            try:
                conn.request("POST", "/", self.body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            with self.lock:
                if ok:
                    self.accepted += 1
                else:
                    self.refused += 1
            sent += 1

    def poll(self):
        return None if any(t.is_alive() for t in self.threads) else 0


def _up(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
