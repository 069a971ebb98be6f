#!/usr/bin/env bash
# The main job on a fresh machine: build the library, start a throwaway etcd on
# a free loopback port, put a sample ConfigMap, read it with the C example, stop etcd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release
# The library's soname, as `make install` lays it out.
ln -sf libapiserver_storage.so target/release/libapiserver_storage.so.0
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
peer=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
etcd --name demo --data-dir "$work/data" \
  --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "demo=http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill $etcd_pid 2>/dev/null; wait $etcd_pid 2>/dev/null; rm -rf "$work"' EXIT
export ETCDCTL_API=3
for _ in $(seq 100); do
  etcdctl --endpoints "127.0.0.1:$port" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
etcdctl --endpoints "127.0.0.1:$port" put /registry/configmaps/default/settings \
  '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"default"},"data":{"mode":"fast"}}' >/dev/null
cc -std=c99 -Wall -Wextra -Werror -Iinclude examples/c/storage_get.c -Ltarget/release -lapiserver_storage \
  -Wl,-rpath,"$PWD/target/release" -o "$work/storage_get"
"$work/storage_get" "{\"server_list\":[\"http://127.0.0.1:$port\"],\"prefix\":\"/registry\"}" /configmaps/default/settings
