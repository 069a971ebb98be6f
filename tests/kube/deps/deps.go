// Package deps pins the Kubernetes packages the differential and conformance
// suites build against, so `go mod download` fetches all of them.
package deps

import (
	_ "apiserver-storage/go/storage"
	_ "go.etcd.io/etcd/client/v3"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/apiserver/pkg/server/options/encryptionconfig"
	_ "k8s.io/apiserver/pkg/storage/storagebackend/factory"
	_ "k8s.io/apiserver/pkg/storage/testing"
	_ "k8s.io/client-go/kubernetes/scheme"
)
