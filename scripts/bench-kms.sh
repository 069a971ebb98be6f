#!/usr/bin/env bash
# KMS v2 reads against aesgcm reads through the C ABI, with the plugin calls
# they make (scripts/bench_kms.py). Extra arguments go to bench_kms.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --lib
ln -sf libapiserver_storage.so target/release/libapiserver_storage.so.0
out=target/bench
mkdir -p "$out"
cc -O2 -std=c99 -Wall -Wextra -Werror -Iinclude bench/c/storage_bench.c -Ltarget/release \
  -lapiserver_storage -lpthread -Wl,-rpath,"$PWD/target/release" -o "$out/storage_bench"
(cd tests/kube && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$PWD/../../target/debug/go-build-cache" \
  go build -o ../../"$out"/kmsplugin ./kmsplugin)
exec python3 scripts/bench_kms.py --c "$out/storage_bench" --plugin "$out/kmsplugin" "$@"
