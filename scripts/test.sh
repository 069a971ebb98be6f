#!/usr/bin/env bash
# Every test: unit and property tests, etcd-backed integration tests, the C
# tests under valgrind and again under AddressSanitizer, the examples (C,
# C++, Go, Python), and the check that the committed header is what cbindgen generates.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The C tests link the cdylib, which `cargo test` alone does not rebuild.
cargo build --all-targets
if [ -d .git ] && ! git diff --quiet -- include/apiserver_storage.h; then
  echo "include/apiserver_storage.h differs from a fresh cbindgen generation:" >&2
  git --no-pager diff -- include/apiserver_storage.h >&2
  exit 1
fi
cargo test
STORAGE_TEST_SANITIZER=address cargo test --test c_api --test vectors --test examples --test c_watch --test c_watch_hostile
