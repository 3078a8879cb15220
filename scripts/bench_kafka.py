#!/usr/bin/env python3
"""The Kafka mode's benchmarks (issue 13). Run through scripts/bench-kafka.

Against librdkafka's mock cluster (`tierstream kafka-mock`, in its own
process, its CPU reported apart), with a generated stream produced by kcat
keyed by user_id (Kafka's partitioner: nothing needs forwarding but referral
credits):
  - events per CPU-second of the whole cluster, 1 and 3 instances on fresh
    disks, from the first record produced (the group settled) to the last
    one counted (efficiency: 3's over 1's). The stream comes in parts of
    --events lines each, each produced once the one before is counted:
    "cold" is the first part (fresh processes: their first-touch memory,
    RocksDB's first memtables, every user new), "warm" the next
    --warm-parts (the same users, later days): the steady state of a
    long-running group;
  - one instance from Kafka vs the same parts over TCP in the journal mode;
  - restore rate: a fresh disk taking every partition over from the
    changelog (users restored per second of restore);
  - failover: kill -9 of one of three instances until every partition is
    served again (GET /v1/kpis of a survivor reports all of them).
The mock keeps at most 5 MiB per partition (it drops the oldest records
beyond): each part is sized to fit (--events; 12 partitions).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TS = os.path.join(ROOT, "build", "release", "tierstream")
CLK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[bench-kafka {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of a process (and its reaped children), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK


def get(port, target, timeout=10):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{target}", timeout=timeout) as r:
            return json.loads(r.read())
    except Exception:
        return None


class Mock:
    def __init__(self, work, partitions):
        self.out = open(os.path.join(work, "mock.out"), "w+")
        self.proc = subprocess.Popen([TS, "kafka-mock", "--brokers", "3", "--topic",
                                      f"events:{partitions}"], stdout=self.out,
                                     stderr=subprocess.DEVNULL)
        for _ in range(300):
            self.out.seek(0)
            line = self.out.readline().strip()
            if line:
                self.bootstrap = line
                return
            time.sleep(0.1)
        raise RuntimeError("kafka-mock printed no address")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class Instance:
    def __init__(self, work, name, bootstrap, *extra):
        self.port = free_port()
        self.data = os.path.join(work, name)
        self.log = open(os.path.join(work, name + ".log"), "a")
        args = [TS, "serve", "--data", self.data, "--http", f"127.0.0.1:{self.port}"]
        if bootstrap:
            args += ["--kafka", bootstrap, "--instance-id", name, "--kafka-config",
                     "session.timeout.ms=6000", "--kafka-config", "heartbeat.interval.ms=500"]
        self.proc = subprocess.Popen(args + list(extra), stdout=self.log, stderr=self.log)
        for _ in range(600):
            h = get(self.port, "/healthz", 1)
            if h and h.get("status") != "starting":
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not start")

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def counted(kpis):
    return kpis["events_accepted"] + kpis["events_duplicate"] + kpis["events_rejected"]


def wait_counted(port, lines, partitions, limit_s=600):
    start = time.time()
    while time.time() - start < limit_s:
        k = get(port, "/v1/kpis")
        if k and counted(k) >= lines and (
                partitions is None or k.get("partitions", {}).get("reporting") == partitions):
            return k
        time.sleep(0.1)
    raise RuntimeError(f"not every line counted within {limit_s} s")


def wait_assigned(members, partitions, limit_s=120):
    """Until the group has assigned every partition (consuming starts)."""
    start = time.time()
    while time.time() - start < limit_s:
        total = 0
        for m in members:
            h = get(m.port, "/healthz", 2)
            total += len(h["kafka"]["partitions"]) if h and "kafka" in h else 0
        if total >= partitions:
            return
        time.sleep(0.05)
    raise RuntimeError("the group did not assign every partition")


def key_lines(path, keyed_path):
    if not os.path.exists(keyed_path):
        with open(path) as src, open(keyed_path, "w") as dst:
            for line in src:
                dst.write(json.loads(line)["user_id"] + "\t" + line)


def produce_keyed(bootstrap, keyed_path):
    """kcat with Kafka's partitioner (murmur2 of the key)."""
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", "events", "-K", "\t", "-X",
                    "partitioner=murmur2_random", "-l", keyed_path], check=True)


def measure(members, parts, produce, counted_before, partitions):
    """Produces each part (produce(path)) once the one before is counted:
    the figures of their lines."""
    t0 = time.time()
    cpu0 = sum(m.cpu() for m in members)
    total = counted_before
    for path, n in parts:
        produce(path)
        total += n
        kpis = wait_counted(members[0].port, total, partitions)
    lines = total - counted_before
    wall = time.time() - t0
    cpu = sum(m.cpu() for m in members) - cpu0
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "events_per_cpu_s": round(lines / cpu), "events_per_s": round(lines / wall),
            "events": lines, "users": kpis["users_total"]}


def cluster_run(work, parts, partitions, instances):
    """A fresh mock and fresh disks: `instances` instances consume the parts
    of the stream, the first one cold, the others warm. Returns the figures
    and leaves them running."""
    mock = Mock(work, partitions)
    t_start = time.time()
    names = [f"b{i}" for i in range(instances)]
    for n in names:
        shutil.rmtree(os.path.join(work, n), ignore_errors=True)
    members = [Instance(work, n, mock.bootstrap) for n in names]
    # The group settles first (joining takes seconds on the mock), then the
    # stream is produced (kcat's CPU is not counted): measured from the
    # first record produced to the last one counted.
    wait_assigned(members, partitions)
    time.sleep(2)
    r = {"instances": instances, "join_s": round(time.time() - t_start, 2)}
    counted = 0
    for phase, phase_parts in (("cold", parts[:1]), ("warm", parts[1:])):
        mock_cpu0 = cpu_seconds(mock.proc.pid)
        r[phase] = measure(members, [(p + ".keyed", n) for p, n in phase_parts],
                           lambda path: produce_keyed(mock.bootstrap, path), counted, partitions)
        counted += r[phase]["events"]
        r[phase]["mock_cpu_s"] = round(cpu_seconds(mock.proc.pid) - mock_cpu0, 2)
        time.sleep(2)  # the phase's last checkpoints are written before the next
    return mock, members, r


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench-kafka"))
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--users", type=int, default=30_000)
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--warm-parts", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    # One generated stream, in parts of --events lines.
    n_parts = 1 + args.warm_parts
    stream = os.path.join(args.work, f"stream-{args.users}-{n_parts * args.events}.ndjson")
    if not os.path.exists(stream):
        with open(stream, "w") as f:
            subprocess.run([TS, "gen", "--users", str(args.users), "--days", "30", "--events",
                            str(n_parts * args.events), "--seed", "13"], check=True, stdout=f)
    with open(stream) as f:
        all_lines = f.readlines()
    parts = []
    for i in range(n_parts):
        path = f"{stream}.{i}"
        if not os.path.exists(path + ".keyed"):
            with open(path, "w") as f:
                f.writelines(all_lines[i * args.events:(i + 1) * args.events])
            key_lines(path, path + ".keyed")
        parts.append((path, args.events))
    lines = len(all_lines)
    results = {}

    for n in (1, 3):
        log(f"{n} instance(s) consume {lines} events in {n_parts} parts")
        mock, members, r = cluster_run(args.work, parts, args.partitions, n)
        results[f"kafka_{n}"] = r
        log(json.dumps(r))
        if n == 1:
            # Restore: a fresh disk takes every partition over from the changelog.
            time.sleep(3)  # the last checkpoints reach the changelog
            members[0].kill()
            shutil.rmtree(os.path.join(args.work, "r0"), ignore_errors=True)
            fresh = Instance(args.work, "r0", mock.bootstrap)
            wait_counted(fresh.port, lines, args.partitions)
            h = get(fresh.port, "/healthz")["kafka"]
            results["restore"] = {"partitions": h["restores"], "users": r["warm"]["users"],
                                  "bytes": h["restored_bytes"],
                                  "seconds": round(h["restore_seconds"], 3),
                                  "users_per_s": round(r["warm"]["users"] / max(h["restore_seconds"], 1e-9))}
            log(json.dumps(results["restore"]))
            fresh.stop()
        else:
            # Failover: kill -9 one; a survivor reports every partition again.
            victim, survivor = members[1], members[0]
            time.sleep(3)
            t0 = time.time()
            victim.kill()
            seen_gap = False
            while time.time() - t0 < 300:
                k = get(survivor.port, "/v1/kpis", 5)
                rep = k and k.get("partitions", {}).get("reporting")
                if rep is not None and rep < args.partitions:
                    seen_gap = True
                if seen_gap and rep == args.partitions:
                    break
                time.sleep(0.1)
            results["failover"] = {"seconds": round(time.time() - t0, 1),
                                   "session_timeout_s": 6}
            log(json.dumps(results["failover"]))
            members.remove(victim)
        for m in members:
            m.stop()
        mock.stop()
    for phase in ("cold", "warm"):
        e1 = results["kafka_1"][phase]["events_per_cpu_s"]
        e3 = results["kafka_3"][phase]["events_per_cpu_s"]
        results[f"efficiency_3_over_1_{phase}"] = round(e3 / e1, 2)

    log("one instance over TCP, the journal mode: the same parts")
    shutil.rmtree(os.path.join(args.work, "tcp"), ignore_errors=True)
    tcp_port = free_port()
    srv = Instance(args.work, "tcp", None, "--tcp", f"127.0.0.1:{tcp_port}")
    results["tcp_1"] = {}
    counted = 0
    for phase, phase_parts in (("cold", parts[:1]), ("warm", parts[1:])):
        results["tcp_1"][phase] = measure(
            [srv], phase_parts,
            lambda path: subprocess.run([TS, "send", "--tcp", f"127.0.0.1:{tcp_port}", path],
                                        check=True, stdout=subprocess.DEVNULL),
            counted, None)
        counted += results["tcp_1"][phase]["events"]
    srv.stop()
    log(json.dumps(results["tcp_1"]))
    for phase in ("cold", "warm"):
        k, t = results["kafka_1"][phase], results["tcp_1"][phase]
        results[f"kafka_over_tcp_{phase}"] = {
            "events_per_s": round(k["events_per_s"] / t["events_per_s"], 2),
            "events_per_cpu_s": round(k["events_per_cpu_s"] / t["events_per_cpu_s"], 2)}
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
