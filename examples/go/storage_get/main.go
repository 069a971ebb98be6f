// storage_get reads one Kubernetes object from etcd the way kube-apiserver
// does — decrypting it when the config names an EncryptionConfiguration —
// through the Go package apiserver-storage/go/storage.
//
//	storage_get CONFIG KEY
//
// CONFIG is the config JSON itself (starting with '{') or a file holding it;
// KEY is relative to the config's prefix, e.g. /secrets/default/db-password.
// Prints the object's resourceVersion, then the object; on failure prints the
// error and exits with its storage code.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"apiserver-storage/go/storage"
)

func run(config, key string) error {
	if !strings.HasPrefix(strings.TrimSpace(config), "{") {
		text, err := os.ReadFile(config)
		if err != nil {
			return err
		}
		config = string(text)
	}
	s, err := storage.New(config)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Health(ctx); err != nil {
		return err
	}
	obj, err := s.Get(ctx, key, storage.GetOptions{})
	if err != nil {
		return err
	}
	stale := ""
	if obj.Stale {
		stale = " (stale: rewrite to re-encrypt)"
	}
	fmt.Printf("resourceVersion: %d%s\n%s\n", obj.ResourceVersion, stale, obj.Data)
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: storage_get CONFIG_JSON|CONFIG_FILE KEY")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "storage_get:", err)
		var e *storage.Error
		if errors.As(err, &e) {
			os.Exit(int(e.Code()))
		}
		os.Exit(2)
	}
}
