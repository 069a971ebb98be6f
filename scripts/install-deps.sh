#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing need when missing:
# etcd 3.4 (server and etcdctl), protoc (etcd-client's build), a C/C++ compiler,
# Go (the cgo example) and valgrind (the C tests run under it).
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v cc >/dev/null || need+=(gcc)
command -v c++ >/dev/null || need+=(g++)
command -v go >/dev/null || need+=(golang-go)
command -v valgrind >/dev/null || need+=(valgrind)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Kubernetes serialization fixtures (tests/fixture_corpus.rs): the
# k8s.io/api module's testdata/, from the Go module proxy into the module cache.
k8s_api=k8s.io/api@v0.37.2
if [ ! -d "$(go env GOMODCACHE)/$k8s_api/testdata" ]; then
  echo "downloading $k8s_api"
  tmp=$(mktemp -d)
  (cd "$tmp" && go mod init fixtures >/dev/null 2>&1 && go mod download "$k8s_api")
  rm -rf "$tmp"
fi
