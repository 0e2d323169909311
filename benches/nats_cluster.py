"""A real fleet on this machine: `python3 benches/nats.py --cluster`.

Three nats-servers in one JetStream cluster (3 replicas), three `xf serve`
instances sharing the queue, a paced load for --minutes, and four failures,
--kill-every seconds apart:

  1. kill -9 of a nats node that leads neither the stream nor its consumer;
  2. kill -9 of the node that leads the records stream;
  3. kill -9 of the node that leads the destination's consumer (pulls sent
     while it has no leader went unanswered: the stall of issue 29);
  4. kill -9 of an xf instance (the one the sender used last).

Each killed process is started again --restart-after seconds later, so that a
majority of the cluster (2 of 3) is up when the next failure comes: a cluster
of three survives one lost node at a time, not two.

The sender is a sender as webhook vendors are: each record has a unique
marker, is POSTed to one instance after the other (a load balancer that skips
an instance refusing connections), and is sent again after a refusal or a 503
until it is accepted. The destination (a small HTTP server in this process)
notes when each marker arrived. At the end, after the queue drained:
accepted, delivered, duplicates (copies past the first), lost (accepted and
never delivered: must be 0), and after each failure the longest time with no
delivery at all, and how long until a record accepted after it was delivered.
"""
import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import REPO, free_port, wait_port  # noqa: E402


def nats_server_binary(explicit):
    """--nats-server, else the current server `.ci/run` installs, else the PATH's."""
    if explicit:
        return explicit
    venv = os.path.join(REPO, ".ci", "venv", "bin", "nats-server")
    if os.path.exists(venv):
        return venv
    found = shutil.which("nats-server")
    if not found:
        sys.exit("no nats-server: run .ci/install-nats-server, or give --nats-server PATH")
    return found


class Node:
    """One nats-server of the cluster, on fixed ports so that it can come back."""

    def __init__(self, binary, work, index, routes):
        self.binary = binary
        self.name = f"node-{index}"
        self.port = free_port()
        self.monitor = free_port()
        self.route = routes[index]
        self.routes = ",".join(f"nats://127.0.0.1:{p}" for p in routes)
        self.store = os.path.join(work, self.name)
        self.log = os.path.join(work, f"{self.name}.log")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor),
             "-sd", self.store, "--name", self.name, "--cluster_name", "xf-bench",
             "--cluster", f"nats://127.0.0.1:{self.route}", "--routes", self.routes],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        wait_port(self.port)

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def jsz(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.monitor, timeout=2)
        connection.request("GET", "/jsz?streams=true&consumers=true")
        return json.loads(connection.getresponse().read())


def leaders(nodes, stream):
    """(stream leader, {consumer: leader}) as the live nodes report them."""
    stream_leader, consumers = None, {}
    for node in nodes:
        if not node.proc:
            continue
        try:
            jsz = node.jsz()
        except (OSError, ValueError):
            continue
        for account in jsz.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") != stream:
                    continue
                stream_leader = (detail.get("cluster") or {}).get("leader") or stream_leader
                for consumer in detail.get("consumer_detail") or []:
                    leader = (consumer.get("cluster") or {}).get("leader")
                    if leader:
                        consumers[consumer["name"]] = leader
    return stream_leader, consumers


class Destination(http.server.ThreadingHTTPServer):
    """Notes the arrival time of every marker it is sent."""

    daemon_threads = True

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals = {}
        self.times = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        now = time.monotonic()
        try:
            value = json.loads(body)
        except ValueError:
            value = [json.loads(line) for line in body.splitlines() if line.strip()]
        records = value if isinstance(value, list) else [value]
        with self.server.lock:
            for record in records:
                marker = record.get("marker") if isinstance(record, dict) else None
                if marker is not None:
                    self.server.arrivals.setdefault(marker, []).append(now)
                    self.server.times.append(now)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Instance:
    def __init__(self, xf, pipeline, work, index):
        self.xf, self.pipeline, self.index = xf, pipeline, index
        self.port = free_port()
        self.log = os.path.join(work, f"xf-{index}.log")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.xf, "serve", self.pipeline, "--listen", f"127.0.0.1:{self.port}",
             "--private-destination", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Sender(threading.Thread):
    """Paced, unique markers, each sent again until accepted."""

    def __init__(self, instances, rate, seconds):
        super().__init__(daemon=True)
        self.instances, self.rate, self.seconds = instances, rate, seconds
        self.accepted = {}  # marker -> accepted at (monotonic)
        self.refusals = 0
        self.next = 0

    def post(self, instance, marker):
        body = json.dumps({"marker": marker}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=10)
        try:
            connection.request("POST", "/", body, {"content-type": "application/json",
                                                   "idempotency-key": marker})
            answer = connection.getresponse()
            answer.read()
            return answer.status
        finally:
            connection.close()

    def run(self):
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < self.seconds:
            due = start + n / self.rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            marker = f"m{n}"
            while True:
                instance = self.instances[self.next % len(self.instances)]
                self.next += 1
                try:
                    status = self.post(instance, marker)
                except OSError:
                    status = None
                if status == 200:
                    self.accepted[marker] = time.monotonic()
                    break
                self.refusals += 1
                time.sleep(0.1)
            n += 1


def run_cluster(xf, nats_binary, minutes, rate, kill_every, restart_after, ack_wait):
    work = tempfile.mkdtemp(prefix="xf-cluster-bench-")
    version = subprocess.run([nats_binary, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"xf fleet benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {version}: "
          f"3 nodes (3 replicas), 3 instances, {rate} records/s for {minutes} min, "
          f"failures every {kill_every} s, each back after {restart_after} s, queue_ack_wait {ack_wait}",
          flush=True)
    routes = [free_port() for _ in range(3)]
    nodes = [Node(nats_binary, work, i, routes) for i in range(3)]
    destination = Destination()
    threading.Thread(target=destination.serve_forever, daemon=True).start()
    pipeline = os.path.join(work, "pipeline.xfp")
    with open(os.path.join(work, "t.xf"), "w") as f:
        f.write('label relayed = "yes"\n')
    urls = ",".join(f"nats://127.0.0.1:{node.port}" for node in nodes)
    with open(pipeline, "w") as f:
        f.write(f'queue nats "{urls}"\nqueue_replicas 3\nqueue_ack_wait {ack_wait}\n'
                'source hooks at "/" {\n    transform "t.xf"\n    auth none\n}\n'
                'destination siem {\n'
                f'    uri "http://127.0.0.1:{destination.server_address[1]}/"\n'
                '    concurrency 8\n}\n')
    instances = [Instance(xf, pipeline, work, i) for i in range(3)]
    events = []
    keep = [os.environ.get("XF_KEEP") is not None]
    try:
        for node in nodes:
            node.start()
        for instance in instances:
            instance.start()
        for instance in instances:
            wait_port(instance.port, timeout=120)
        sender = Sender(instances, rate, minutes * 60)
        began = time.monotonic()
        sender.start()
        plan = ["a nats node that leads nothing", "the records stream's leader node",
                "the destination's consumer's leader node", "an xf instance"]
        for step, what in enumerate(plan, 1):
            at = began + step * kill_every
            if at > began + minutes * 60 - restart_after:
                break
            time.sleep(max(0.0, at - time.monotonic()))
            stream_leader, consumers = leaders(nodes, "xf-records")
            if step == 1:
                busy = {stream_leader, *consumers.values()}
                victim = next((n for n in nodes if n.name not in busy), nodes[0])
            elif step == 2:
                victim = next((n for n in nodes if n.name == stream_leader), nodes[0])
            elif step == 3:
                victim = next((n for n in nodes if n.name == consumers.get("siem")), nodes[0])
            else:
                victim = instances[(sender.next - 1) % len(instances)]
            name = getattr(victim, "name", f"xf-{getattr(victim, 'index', '?')}")
            print(f"  {time.monotonic() - began:6.1f} s  kill -9 {what}: {name} "
                  f"(stream leader {stream_leader}, consumer leaders {consumers})", flush=True)
            killed_at = time.monotonic()
            victim.kill()
            events.append((what, name, killed_at))
            time.sleep(restart_after)
            victim.start()
            print(f"  {time.monotonic() - began:6.1f} s  {name} started again", flush=True)
        sender.join()
        stopped = time.monotonic()
        print(f"  {stopped - began:6.1f} s  load ended: {len(sender.accepted)} accepted, "
              f"{sender.refusals} refusals or failed connections sent again", flush=True)
        deadline = stopped + 180
        while time.monotonic() < deadline:
            with destination.lock:
                missing = [m for m in sender.accepted if m not in destination.arrivals]
            if not missing:
                break
            time.sleep(0.5)
        with destination.lock:
            arrivals = {m: list(t) for m, t in destination.arrivals.items()}
            times = sorted(destination.times)
        drained = time.monotonic() - stopped
        delivered = sum(1 for m in sender.accepted if m in arrivals)
        duplicates = sum(len(t) - 1 for t in arrivals.values())
        lost = sorted(m for m in sender.accepted if m not in arrivals)
        print()
        print("| accepted | delivered | duplicates | lost | drain after the load s |")
        print("|---|---|---|---|---|")
        print(f"| {len(sender.accepted)} | {delivered} | {duplicates} | {len(lost)} | {drained:.1f} |")
        print()
        print("| failure | killed | longest time with no delivery in the 60 s after, s "
              "| first record accepted after it delivered after, s |")
        print("|---|---|---|---|")
        for what, name, at in events:
            # Up to 60 s after, or until the end of the drain: a delivery that never resumed is one long gap.
            end = min(at + 60, stopped + drained)
            window = [at] + [t for t in times if at <= t <= end] + [end]
            gap = max(b - a for a, b in zip(window, window[1:]))
            later = [(accepted, m) for m, accepted in sender.accepted.items() if accepted >= at]
            first = min(later) if later else None
            resumed = max(0.0, min(arrivals[first[1]]) - at) if first and first[1] in arrivals else float("nan")
            print(f"| {what} | {name} | {gap:.1f} | {resumed:.1f} |")
        if lost:
            keep[0] = True
            print(f"\nLOST {len(lost)}: {lost[:20]}…  logs kept in {work}")
            return 1
        return 0
    finally:
        for instance in instances:
            if instance.proc:
                instance.proc.send_signal(signal.SIGTERM)
        for instance in instances:
            if instance.proc:
                try:
                    instance.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    instance.kill()
        for node in nodes:
            node.kill()
        destination.shutdown()
        if not keep[0]:
            shutil.rmtree(work, ignore_errors=True)
