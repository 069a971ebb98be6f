#!/usr/bin/env bash
# The main job on a fresh machine: build the library, start a throwaway etcd on
# a free loopback port holding a Secret the library wrote encrypted
# (examples/start-etcd.sh), put a plain ConfigMap as any etcd client would, read
# both with the C example, stop etcd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release
# The library's soname, as `make install` lays it out.
ln -sf libapiserver_storage.so target/release/libapiserver_storage.so.0
work=$(mktemp -d)
stop() {
  if [ -f "$work/etcd.pid" ]; then
    pid=$(cat "$work/etcd.pid")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -rf "$work"
}
trap stop EXIT
examples/start-etcd.sh "$work"
endpoint=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["server_list"][0])' "$work/config.json")
ETCDCTL_API=3 etcdctl --endpoints "$endpoint" put /registry/configmaps/default/settings \
  '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"default"},"data":{"mode":"fast"}}' >/dev/null
cc -std=c99 -Wall -Wextra -Werror -Iinclude examples/c/storage_get.c -Ltarget/release -lapiserver_storage \
  -Wl,-rpath,"$PWD/target/release" -o "$work/storage_get"
"$work/storage_get" "{\"server_list\":[\"$endpoint\"]}" /configmaps/default/settings
"$work/storage_get" "$work/config.json" /secrets/default/db-password
