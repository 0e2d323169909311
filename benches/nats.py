#!/usr/bin/env python3
"""Scale-out benchmark: 1, 2 and 3 `xf serve` instances sharing one queue on
NATS JetStream, and one instance on the embedded spool, under the same load.

One command:  python3 benches/nats.py        (builds what it needs; nats-server and wrk from Debian)
The fleet:    python3 benches/nats.py --cluster   (see benches/nats_cluster.py)

What runs, all on this machine (so the load generator, the instances,
nats-server and the destination share its cores: on 2 cores, adding
instances cannot add throughput, and the numbers say so):
  destination  benches/sink.rs (hyper, answers 200 at once, counts records)
  queue        nats-server -js, a fresh store folder per run
  xf           target/release/xf serve --queue nats://…
               --transform transforms/armor-splunk.xf --to the destination
  load         wrk, POSTing Armor's documented single detection webhook
               (tests/fixtures/armor/detection-only.json) for --seconds, the
               --connections split evenly over the instances (a load balancer)

It prints, per run: accepted webhooks/s, accept latency p50 and p99 (wrk,
the worst instance), records delivered once the queue drained, the seconds
the drain took after the load stopped, and CPU time (user + system, from
/proc) per delivered record: of the xf instances, of nats-server, and in all.
CPU per record is what scales on a machine with a core per instance.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import BODY, REPO, SINK, WRK_SCRIPT, free_port, get, wait_port  # noqa: E402

XF = os.path.join(REPO, "target", "release", "xf")
# The xf binary measured: this repository's release build, or --xf PATH.
XF_BUILD = [XF]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_xf(port, sink_port, queue_args, log):
    args = [XF_BUILD[0], "serve", "--listen", f"127.0.0.1:{port}", *queue_args,
            "--transform", os.path.join(REPO, "transforms", "armor-splunk.xf"),
            "--to", f"http://127.0.0.1:{sink_port}/hec", "--private-destination", "127.0.0.1",
            "--concurrency", "16", "--spool-max-records", "100000000", "--spool-max-bytes", str(4 << 30)]
    proc = subprocess.Popen(args, stderr=open(log, "w"), stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
    except SystemExit:
        sys.exit(f"xf serve did not start:\n{open(log).read()}")
    return proc


def wrk_start(port, connections, seconds, script):
    return subprocess.Popen(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
                             "--timeout", "10s", "-s", script, f"http://127.0.0.1:{port}/"],
                            env=dict(os.environ, XF_BODY=BODY), stdout=subprocess.PIPE, text=True)


def wrk_result(proc):
    out = proc.communicate()[0]
    line = next(l for l in out.splitlines() if l.startswith("XF "))
    requests, errors, duration, p50, p99, _ = line.split()[1:]
    non2xx = 0
    for l in out.splitlines():
        if "Non-2xx or 3xx responses:" in l:
            non2xx = int(l.rsplit(" ", 1)[1])
    return int(requests) - int(errors) - non2xx, float(duration), float(p50), float(p99)


def run(instances, embedded, connections, seconds, script):
    print(f"running: {instances} instance(s) on {'the embedded spool' if embedded else 'JetStream'}", flush=True)
    work = tempfile.mkdtemp(prefix="xf-nats-bench-")
    sink_port = free_port()
    sink = subprocess.Popen([SINK, str(sink_port)])
    wait_port(sink_port)
    nats = None
    if embedded:
        queue_args = [["--spool", os.path.join(work, "spool")]]
    else:
        nats_port = free_port()
        nats = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(nats_port),
                                 "-sd", os.path.join(work, "js")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(nats_port)
        queue_args = [["--queue", f"nats://127.0.0.1:{nats_port}"]] * instances
    ports = [free_port() for _ in range(instances)]
    xfs = [start_xf(port, sink_port, queue_args[i], os.path.join(work, f"xf-{i}.log"))
           for i, port in enumerate(ports)]
    try:
        time.sleep(1)
        before = {p.pid: cpu_seconds(p.pid) for p in xfs + ([nats] if nats else [])}
        per = max(1, connections // instances)
        loads = [wrk_start(port, per, seconds, script) for port in ports]
        results = [wrk_result(load) for load in loads]
        stopped = time.time()
        accepted = sum(r[0] for r in results)
        duration = max(r[1] for r in results)
        end = time.time() + 300
        delivered = 0
        while time.time() < end:
            delivered = json.loads(get(f"http://127.0.0.1:{sink_port}/count"))["records"]
            if delivered >= accepted:
                break
            time.sleep(0.1)
        drained = time.time() - stopped
        xf_cpu = sum(cpu_seconds(p.pid) - before[p.pid] for p in xfs)
        nats_cpu = cpu_seconds(nats.pid) - before[nats.pid] if nats else 0.0
        return {
            "queue": "embedded" if embedded else "JetStream",
            "instances": instances,
            "accepted/s": accepted / duration,
            "p50 ms": max(r[2] for r in results),
            "p99 ms": max(r[3] for r in results),
            "delivered": f"{delivered}/{accepted}",
            "drain s": drained,
            "xf CPU µs/record": xf_cpu / max(delivered, 1) * 1e6,
            "nats CPU µs/record": nats_cpu / max(delivered, 1) * 1e6,
            "all CPU µs/record": (xf_cpu + nats_cpu) / max(delivered, 1) * 1e6,
        }
    finally:
        for p in xfs:
            p.send_signal(signal.SIGTERM)
        for p in xfs:
            p.wait(timeout=60)
        if nats:
            nats.kill()
            nats.wait()
        sink.kill()
        sink.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=24, help="in all, split over the instances")
    ap.add_argument("--instances", default="1,2,3")
    ap.add_argument("--xf", default=None, help="an xf binary to measure instead "
                                              "of this repository's release build")
    ap.add_argument("--cluster", action="store_true",
                    help="the fleet: 3 nats nodes, 3 instances, a paced load with failures (nats_cluster.py)")
    ap.add_argument("--minutes", type=float, default=10, help="--cluster: how long the load runs")
    ap.add_argument("--rate", type=int, default=100, help="--cluster: records per second sent")
    ap.add_argument("--kill-every", type=int, default=60, help="--cluster: seconds between failures")
    ap.add_argument("--restart-after", type=int, default=30, help="--cluster: a killed process comes back after")
    ap.add_argument("--ack-wait", type=int, default=10, help="--cluster: the pipeline's queue_ack_wait")
    ap.add_argument("--nats-server", default=None,
                    help="--cluster: the nats-server binary (default: .ci/venv's current one, else the PATH's)")
    args = ap.parse_args()
    if args.xf:
        XF_BUILD[0] = args.xf
    if args.cluster:
        from nats_cluster import nats_server_binary, run_cluster
        if not args.xf:
            subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "xf"],
                           cwd=REPO, check=True)
        sys.exit(run_cluster(XF_BUILD[0], nats_server_binary(args.nats_server), args.minutes, args.rate,
                             args.kill_every, args.restart_after, args.ack_wait))
    for program, package in (("wrk", "wrk"), ("nats-server", "nats-server")):
        if not shutil.which(program):
            subprocess.run(["apt-get", "install", "-y", package], check=True, capture_output=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "xf",
                    "--example", "sink"], cwd=REPO, check=True)
    version = subprocess.run(["nats-server", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"xf scale-out benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {version}, "
          f"body {os.path.getsize(BODY)} bytes, {args.seconds} s per run, {args.connections} connections in all")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    rows = [run(1, True, args.connections, args.seconds, script)]
    for n in [int(n) for n in args.instances.split(",")]:
        rows.append(run(n, False, args.connections, args.seconds, script))
    os.unlink(script)
    keys = list(rows[0].keys())
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.1f}" if isinstance(row[k], float) else str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
