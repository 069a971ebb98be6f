// peer: the Go side of the benchmarks. It does what a Go program on etcd's
// clientv3 (the client kube-apiserver uses) does for the same work as
// bench/c/storage_bench.c, and prints the same JSON line.
//
//	-work raw     Get only
//	-work json    Get, decode the object, set metadata.resourceVersion, encode
//	-work aesgcm  as json, after stripping k8s:enc:aesgcm:v1:<name>: and opening
//	              AES-GCM with the full key as additional data (-aeskey, base64)
//	-work list    List -key as a directory, paged by -limit, decoding every item
//	              as json does and encoding the list
package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

var (
	client       *clientv3.Client
	gcm          cipher.AEAD
	work         string
	key          string
	limit        int64
	serializable bool
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "peer:", err)
	os.Exit(1)
}

// decode does what the library's json codec does: parse, stamp, encode.
func decode(data []byte, rev int64) []byte {
	var obj map[string]interface{}
	if err := json.Unmarshal(data, &obj); err != nil {
		fail(err)
	}
	meta, _ := obj["metadata"].(map[string]interface{})
	if meta == nil {
		meta = map[string]interface{}{}
		obj["metadata"] = meta
	}
	meta["resourceVersion"] = strconv.FormatInt(rev, 10)
	out, err := json.Marshal(obj)
	if err != nil {
		fail(err)
	}
	return out
}

func readOpts() []clientv3.OpOption {
	if serializable {
		return []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return nil
}

func get() {
	resp, err := client.Get(context.Background(), key, readOpts()...)
	if err != nil {
		fail(err)
	}
	if len(resp.Kvs) != 1 {
		fail(fmt.Errorf("key %s not found", key))
	}
	kv := resp.Kvs[0]
	data := kv.Value
	if work == "aesgcm" {
		const prefix = "k8s:enc:aesgcm:v1:"
		if !bytes.HasPrefix(data, []byte(prefix)) {
			fail(fmt.Errorf("value is not aesgcm-encrypted"))
		}
		rest := data[len(prefix):]
		rest = rest[bytes.IndexByte(rest, ':')+1:]
		ns := gcm.NonceSize()
		if data, err = gcm.Open(nil, rest[:ns], rest[ns:], kv.Key); err != nil {
			fail(err)
		}
	}
	if work != "raw" {
		decode(data, kv.ModRevision)
	}
}

func list() {
	prefix := key + "/"
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	var rev int64
	var items []json.RawMessage
	for {
		opts := append(readOpts(), clientv3.WithRange(end), clientv3.WithLimit(limit))
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := client.Get(context.Background(), from, opts...)
		if err != nil {
			fail(err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			items = append(items, decode(kv.Value, kv.ModRevision))
		}
		if _, err := json.Marshal(map[string]interface{}{"items": items}); err != nil {
			fail(err)
		}
		items = items[:0]
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "etcd endpoint")
	flag.StringVar(&key, "key", "/registry/bench/obj", "full etcd key (or directory for list)")
	n := flag.Int("n", 20000, "total operations")
	clients := flag.Int("clients", 1, "concurrent goroutines sharing one client")
	flag.BoolVar(&serializable, "serializable", false, "serializable reads")
	flag.StringVar(&work, "work", "json", "raw | json | aesgcm | list")
	aesKey := flag.String("aeskey", "", "base64 AES key for -work aesgcm")
	flag.Int64Var(&limit, "limit", 500, "page size for -work list")
	flag.Parse()

	var err error
	client, err = clientv3.New(clientv3.Config{
		Endpoints:            []string{*endpoints},
		DialTimeout:          20 * time.Second,
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
	})
	if err != nil {
		fail(err)
	}
	defer client.Close()
	if work == "aesgcm" {
		raw, err := base64.StdEncoding.DecodeString(*aesKey)
		if err != nil {
			fail(err)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			fail(err)
		}
		if gcm, err = cipher.NewGCM(block); err != nil {
			fail(err)
		}
	}
	one := get
	if work == "list" {
		one = list
	}
	one() // connect and warm up

	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	per := *n / *clients
	var wg sync.WaitGroup
	for w := 0; w < *clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				one()
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
	ops := per * *clients
	fmt.Printf("{\"peer\":\"go-clientv3\",\"mode\":%q,\"clients\":%d,\"ops\":%d,\"secs\":%.4f,\"ops_per_s\":%.1f,\"cpu_us_per_op\":%.2f,\"max_rss_kb\":%d}\n",
		work, *clients, ops, secs, float64(ops)/secs, cpu*1e6/float64(ops), peakRSS())
}

// peakRSS is VmHWM, the peak resident set of this process image (ru_maxrss
// would include the process that started us).
func peakRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb
		}
	}
	return -1
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
