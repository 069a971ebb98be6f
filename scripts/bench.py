#!/usr/bin/env python3
"""A/B benchmark of the library (through the C ABI) against Go's clientv3.

Starts etcd on free loopback ports, seeds a 1 KiB ConfigMap, a 100 KiB object,
an aesgcm-encrypted Secret and 10,000 objects to list, then runs the library and
the Go peer alternately (A B A B ...) for every scenario and prints, per
scenario, the medians and the median of the per-pair ratios.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

AES_KEY = "dwhZ/08myNrj5qqgb2WFNsPdHF5GCp/2rQY7cmtIG5A="


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    """User + system CPU of a process so far, from /proc/PID/stat."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cmd, etcd_pid):
    """Runs one benchmark; adds etcd's CPU per operation during it."""
    before = cpu_seconds(etcd_pid)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["etcd_cpu_us_per_op"] = (cpu_seconds(etcd_pid) - before) * 1e6 / result["ops"]
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c", required=True)
    ap.add_argument("--go", required=True)
    ap.add_argument("--rust", required=True)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the operation counts")
    ap.add_argument("--json", help="write every run to this file")
    ap.add_argument("--rss-reads", type=int, default=1_000_000,
                    help="reads on one handle for the RSS growth run (0 skips it)")
    args = ap.parse_args()

    work = tempfile.mkdtemp()
    port, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    etcd = subprocess.Popen(
        ["etcd", "--name", "bench", "--data-dir", f"{work}/data",
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"bench=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=open(f"{work}/etcd.log", "w"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)

        def config(serializable=False, aesgcm=False):
            c = {"server_list": [url], "quorum": not serializable}
            if aesgcm:
                c["transformer"] = {"providers": [{"aesgcm": {"keys": [{"name": "key1", "secret": AES_KEY}]}}]}
            return json.dumps(c)

        seed = [args.c, "seed"]
        subprocess.run(seed + [config(), "/configmaps/default/bench-1k", "1024", "1"], check=True)
        subprocess.run(seed + [config(), "/configmaps/default/bench-100k", "102400", "1"], check=True)
        subprocess.run(seed + [config(aesgcm=True), "/secrets/default/bench-secret", "1024", "1"], check=True)
        subprocess.run(seed + [config(), "/listbench", "1024", "10000"], check=True)

        n1, n64 = int(20000 * args.scale), int(40000 * args.scale)
        scenarios = []
        for clients, n in ((1, n1), (64, n64)):
            for serializable in (False, True):
                for enc in ("json", "aesgcm"):
                    key = "/secrets/default/bench-secret" if enc == "aesgcm" else "/configmaps/default/bench-1k"
                    name = f"get 1KiB {enc} {'serializable' if serializable else 'quorum'} x{clients}"
                    lib = [args.c, "get", config(serializable, enc == "aesgcm"), key, str(clients), str(n)]
                    go = [args.go, "-endpoints", url, "-key", "/registry" + key, "-clients", str(clients),
                          "-n", str(n), "-work", enc, "-aeskey", AES_KEY]
                    if serializable:
                        go.append("-serializable")
                    scenarios.append((name, lib, go))
        for clients, n in ((1, int(2000 * args.scale)), (64, int(4000 * args.scale))):
            scenarios.append((f"get 100KiB json quorum x{clients}",
                              [args.c, "get", config(), "/configmaps/default/bench-100k", str(clients), str(n)],
                              [args.go, "-endpoints", url, "-key", "/registry/configmaps/default/bench-100k",
                               "-clients", str(clients), "-n", str(n), "-work", "json"]))
        lists = str(max(2, int(10 * args.scale)))
        scenarios.append(("list 10,000 objects by 500",
                          [args.c, "list", config(), "/listbench", "1", lists, "500"],
                          [args.go, "-endpoints", url, "-key", "/registry/listbench", "-clients", "1",
                           "-n", lists, "-work", "list", "-limit", "500"]))
        abi = ("C ABI vs Rust API: get 1KiB json quorum x1",
               [args.c, "get", config(), "/configmaps/default/bench-1k", "1", str(n1)],
               [args.rust, config(), "/configmaps/default/bench-1k", "1", str(n1)])

        records = []
        print(f"{'scenario':45} {'lib ops/s':>10} {'peer ops/s':>10} {'ratio':>6} "
              f"{'lib cpu us':>10} {'peer cpu us':>11} {'cpu ratio':>9} {'lib rss MB':>10} {'peer rss MB':>11} {'etcd cpu us':>11}")
        for name, lib, peer_cmd in scenarios + [abi]:
            pairs = []
            for i in range(args.pairs):
                # Alternate which runs first, so warm-up favours neither.
                if i % 2 == 0:
                    a, b = run(lib, etcd.pid), run(peer_cmd, etcd.pid)
                else:
                    b, a = run(peer_cmd, etcd.pid), run(lib, etcd.pid)
                pairs.append((a, b))
                records.append({"scenario": name, "lib": a, "peer": b})
            med = lambda f: statistics.median(f(a, b) for a, b in pairs)
            lib_ops, peer_ops = med(lambda a, b: a["ops_per_s"]), med(lambda a, b: b["ops_per_s"])
            ratio = med(lambda a, b: a["ops_per_s"] / b["ops_per_s"])
            cpu_ratio = med(lambda a, b: a["cpu_us_per_op"] / b["cpu_us_per_op"])
            rss = lambda r: r.get("max_rss_kb", 0) / 1024
            print(f"{name:45} {lib_ops:10.0f} {peer_ops:10.0f} {ratio:6.2f} "
                  f"{med(lambda a, b: a['cpu_us_per_op']):10.1f} {med(lambda a, b: b['cpu_us_per_op']):11.1f} "
                  f"{cpu_ratio:9.2f} {med(lambda a, b: rss(a)):10.1f} {med(lambda a, b: rss(b)):11.1f} "
                  f"{med(lambda a, b: a['etcd_cpu_us_per_op']):11.1f}",
                  flush=True)
        if args.rss_reads:
            r = run([args.c, "get", config(), "/configmaps/default/bench-1k", "8", str(args.rss_reads)], etcd.pid)
            records.append({"scenario": "rss growth", "lib": r})
            print(f"RSS over {r['ops']:,} reads on one handle (8 callers): {r['rss_kb_warm'] / 1024:.1f} MB "
                  f"after the first tenth, {r['rss_kb_end'] / 1024:.1f} MB at the end "
                  f"({(r['rss_kb_end'] - r['rss_kb_warm']) / 1024:+.1f} MB), peak {r['max_rss_kb'] / 1024:.1f} MB, "
                  f"{r['ops_per_s']:.0f} reads/s", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(records, f, indent=1)
    finally:
        etcd.terminate()
        etcd.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
