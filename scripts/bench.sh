#!/usr/bin/env bash
# Benchmarks the library against Go's clientv3 (the client kube-apiserver uses)
# on this machine: builds the release library, the C benchmark, the Go peer and
# the Rust-level benchmark, then runs scripts/bench.py (A/B pairs against a
# throwaway etcd on loopback). Extra arguments go to bench.py (e.g. --pairs 7).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ ! -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]; then
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-etcd-server-dev >/dev/null
fi
cargo build --release --lib --benches
# The library's soname, as `make install` lays it out.
ln -sf libapiserver_storage.so target/release/libapiserver_storage.so.0
out=target/bench
mkdir -p "$out/gopath/src/peer"
cc -O2 -std=c99 -Wall -Wextra -Werror -Iinclude bench/c/storage_bench.c -Ltarget/release \
  -lapiserver_storage -lpthread -Wl,-rpath,"$PWD/target/release" -o "$out/storage_bench"
cp bench/go/peer/main.go "$out/gopath/src/peer/"
(cd "$out/gopath/src/peer" && GO111MODULE=off GOPATH="$PWD/../..:/usr/share/gocode" \
  GOCACHE="$PWD/../../cache" go build -o ../../../go_peer .)
rust_bench=$(ls -t target/release/deps/get-* | grep -v '\.d$' | head -1)
exec python3 scripts/bench.py --c "$out/storage_bench" --go "$out/go_peer" --rust "$rust_bench" "$@"
