#!/usr/bin/env bash
# Starts a throwaway etcd for the examples and writes an encrypted Secret into it.
#
#   examples/start-etcd.sh DIR
#
# etcd listens on a free loopback port and keeps its data, log and pid in DIR.
# DIR/config.json is the library's config for it, with
# examples/encryption-config.yaml as the encryption config of Secrets; the
# Secret /secrets/default/db-password is written through the library (with the
# Python bindings), so etcd holds it aescbc-encrypted. Needs the library built
# (cargo build --release; APISERVER_STORAGE_LIB picks another build).
# Stop etcd with: kill "$(cat DIR/etcd.pid)"
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
export APISERVER_STORAGE_LIB=${APISERVER_STORAGE_LIB:-$repo/target/release/libapiserver_storage.so}
[ -f "$APISERVER_STORAGE_LIB" ] || { echo "$APISERVER_STORAGE_LIB not found: run cargo build --release" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
peer=$(free_port)
etcd --name examples --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "examples=http://127.0.0.1:$peer" >"$dir/etcd.log" 2>&1 &
echo $! >"$dir/etcd.pid"

cat >"$dir/config.json" <<JSON
{"server_list":["http://127.0.0.1:$port"],
 "transformer":{"encryption_config_file":"$repo/examples/encryption-config.yaml","resource":"secrets"}}
JSON

PYTHONPATH="$repo/bindings/python" python3 - "$dir/config.json" <<'PY'
import base64, sys, time
import apiserver_storage as storage

with storage.Storage(open(sys.argv[1]).read()) as s:
    for _ in range(100):  # etcd is starting
        try:
            s.health()
            break
        except storage.UnreachableError:
            time.sleep(0.1)
    s.health()
    s.create("/secrets/default/db-password", {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db-password", "namespace": "default"},
        "data": {"password": base64.b64encode(b"correct horse battery staple").decode()},
    })
PY
echo "etcd on 127.0.0.1:$port (pid $(cat "$dir/etcd.pid")); config: $dir/config.json"
echo "the Secret: /secrets/default/db-password; stop etcd with: kill \$(cat $dir/etcd.pid)"
