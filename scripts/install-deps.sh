#!/usr/bin/env bash
# Installs what building and testing need when missing: from Debian's packages
# etcd 3.4 (server and etcdctl), protoc (etcd-client's build), a C/C++ compiler,
# Go (the cgo example) and valgrind (the C tests run under it); from the Go
# module proxy the Kubernetes fixtures and etcd 3.6.
set -euo pipefail
cd "$(dirname "$0")/.."
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
# etcd 3.6 (server and etcdctl), built from the Go module proxy at the version
# scripts/etcd3.6/go.mod pins: the etcd3 tests run against it too.
etcd36=target/etcd-v3.6.16
if [ ! -x "$etcd36/etcd" ] || [ ! -x "$etcd36/etcdctl" ]; then
  echo "building etcd 3.6 into $etcd36"
  mkdir -p "$etcd36"
  (cd scripts/etcd3.6 &&
    go build -o "../../$etcd36/etcd" go.etcd.io/etcd/server/v3 &&
    go build -o "../../$etcd36/etcdctl" go.etcd.io/etcd/etcdctl/v3)
fi
# The Go suites that run Kubernetes' own storage code (tests/kube): the
# modules tests/kube/go.mod pins, into the module cache.
if ! (cd tests/kube && GOFLAGS=-mod=mod GOPROXY=off go list -deps -test ./... >/dev/null 2>&1); then
  echo "downloading the modules of tests/kube/go.mod"
  (cd tests/kube && go mod download)
fi
