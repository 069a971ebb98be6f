#!/usr/bin/env python3
"""KMS v2 against aesgcm, through the C ABI: reads/s of a 1 KiB Secret (data
key cached), alternating A B A B ..., and the plugin calls the reads made.

Starts etcd and the test KMS plugin (tests/kube/kmsplugin) on a throwaway
directory, seeds one Secret per provider with the C benchmark program, then
runs `storage_bench get` for each provider in turn and prints per scenario the
medians, the median of the per-pair ratios and its spread, and the plugin's
Status/Encrypt/Decrypt calls per 1,000 reads (from its control socket).
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

AES_KEY = "dwhZ/08myNrj5qqgb2WFNsPdHF5GCp/2rQY7cmtIG5A="


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("kmsplugin")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def plugin_stats(control):
    c = UnixHTTP(control)
    c.request("GET", "/stats")
    return json.loads(c.getresponse().read())["v2"]


def wait_for(predicate, what):
    for _ in range(300):
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not come up")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c", required=True, help="the storage_bench program")
    ap.add_argument("--plugin", required=True, help="the kmsplugin program")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--reads", type=int, default=20000)
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
    control = f"{work}/control.sock"
    plugin = subprocess.Popen(
        [args.plugin, "--v2-socket", f"{work}/v2.sock", "--control", control, "--key-id", "bench-key"],
        stdout=subprocess.PIPE, stderr=open(f"{work}/plugin.log", "w"), text=True)
    try:
        def etcd_up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_for(etcd_up, "etcd")
        if plugin.stdout.readline().strip() != "ready":
            raise SystemExit("the KMS plugin did not start")

        def config(provider):
            p = {"aesgcm": {"keys": [{"name": "key1", "secret": AES_KEY}]}} if provider == "aesgcm" else \
                {"kms": {"apiVersion": "v2", "name": "bench", "endpoint": f"unix://{work}/v2.sock"}}
            return json.dumps({"server_list": [url], "transformer": {"providers": [p]}})

        keys = {"aesgcm": "/secrets/default/bench-aesgcm", "kms": "/secrets/default/bench-kms"}
        for provider, key in keys.items():
            subprocess.run([args.c, "seed", config(provider), key, "1024", "1"], check=True)

        def run(provider, clients):
            before = plugin_stats(control)
            out = subprocess.run([args.c, "get", config(provider), keys[provider], str(clients), str(args.reads)],
                                 check=True, capture_output=True, text=True).stdout
            after = plugin_stats(control)
            result = json.loads(out.strip().splitlines()[-1])
            result["plugin_calls"] = {k: after[k] - before[k] for k in after}
            return result

        print(f"{'scenario':22} {'kms v2 reads/s':>14} {'aesgcm reads/s':>14} {'ratio':>6} {'spread':>13} "
              f"{'kms cpu us':>10} {'aesgcm cpu us':>13}  plugin calls per 1,000 reads (Status/Encrypt/Decrypt)")
        for clients in (1, 16):
            pairs = [(run("kms", clients), run("aesgcm", clients)) for _ in range(args.pairs)]
            ratios = [k["ops_per_s"] / a["ops_per_s"] for k, a in pairs]
            calls = {c: sum(k["plugin_calls"][c] for k, _ in pairs) * 1000 / sum(k["ops"] for k, _ in pairs)
                     for c in ("status", "encrypt", "decrypt")}
            med = lambda xs: statistics.median(xs)
            print(f"{'get 1KiB Secret x' + str(clients):22} {med([k['ops_per_s'] for k, _ in pairs]):14.0f} "
                  f"{med([a['ops_per_s'] for _, a in pairs]):14.0f} {med(ratios):6.2f} "
                  f"{min(ratios):5.2f}..{max(ratios):<5.2f} {med([k['cpu_us_per_op'] for k, _ in pairs]):10.1f} "
                  f"{med([a['cpu_us_per_op'] for _, a in pairs]):13.1f}  "
                  f"{calls['status']:.2f} / {calls['encrypt']:.2f} / {calls['decrypt']:.2f}")
        print("(each run is a new process: its first read fetches the data key, one Status and one Decrypt;"
              " every read after that is served from the cache)")
    finally:
        plugin.kill()
        etcd.kill()


if __name__ == "__main__":
    main()
