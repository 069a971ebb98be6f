// Command kmsprobe calls a KMS plugin through kube-apiserver's own gRPC
// clients (k8s.io/apiserver's envelope/kmsv2 and envelope NewGRPCService),
// so tests can drive a plugin process as kube-apiserver would. Each
// operation prints one JSON line; a failed call is a result
// ({"ok":false,"code":...}), not a failure of the program.
//
//	kmsprobe -endpoint unix:///tmp/k/v2.sock -api v2 status encrypt=cGxhaW4= 'decrypt=key-1,<b64 ciphertext>,<annotation>=<b64 value>'
//	kmsprobe -endpoint unix:///tmp/k/v1.sock -api v1 encrypt=cGxhaW4= decrypt=<b64 ciphertext>
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"k8s.io/apiserver/pkg/storage/value/encrypt/envelope"
	"k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2"
	kmsservice "k8s.io/kms/pkg/service"
)

type result struct {
	Op          string            `json:"op"`
	OK          bool              `json:"ok"`
	Code        string            `json:"code,omitempty"`
	Error       string            `json:"error,omitempty"`
	Millis      int64             `json:"ms"`
	Version     string            `json:"version,omitempty"`
	Healthz     string            `json:"healthz,omitempty"`
	KeyID       string            `json:"key_id,omitempty"`
	Ciphertext  []byte            `json:"ciphertext,omitempty"`
	Annotations map[string][]byte `json:"annotations,omitempty"`
	Plaintext   []byte            `json:"plaintext,omitempty"`
}

func main() {
	endpoint := flag.String("endpoint", "", "the plugin's endpoint, unix:///path")
	api := flag.String("api", "v2", "v2 or v1")
	timeout := flag.Duration("timeout", 3*time.Second, "the per-call timeout (the EncryptionConfiguration's kms timeout)")
	flag.Parse()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var v2 kmsservice.Service
	var v1 envelope.Service
	var err error
	switch *api {
	case "v2":
		v2, err = kmsv2.NewGRPCService(ctx, *endpoint, "kmsprobe", *timeout)
	case "v1":
		v1, err = envelope.NewGRPCService(ctx, *endpoint, *timeout)
	default:
		err = fmt.Errorf("-api %q: want v2 or v1", *api)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsprobe:", err)
		os.Exit(2)
	}

	out := json.NewEncoder(os.Stdout)
	for _, op := range flag.Args() {
		name, arg, _ := strings.Cut(op, "=")
		r := result{Op: name}
		start := time.Now()
		err := run(ctx, &r, v2, v1, name, arg)
		r.Millis = time.Since(start).Milliseconds()
		if err != nil {
			// FromError also finds a status wrapped with %w.
			if s, ok := status.FromError(err); ok {
				r.Code = s.Code().String()
			}
			r.Error = err.Error()
		} else {
			r.OK = true
		}
		_ = out.Encode(r)
	}
}

func b64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmsprobe: %q is not base64: %v\n", s, err)
		os.Exit(2)
	}
	return b
}

func run(ctx context.Context, r *result, v2 kmsservice.Service, v1 envelope.Service, op, arg string) error {
	switch {
	case op == "status" && v2 != nil:
		s, err := v2.Status(ctx)
		if err == nil {
			r.Version, r.Healthz, r.KeyID = s.Version, s.Healthz, s.KeyID
		}
		return err
	case op == "encrypt" && v2 != nil:
		e, err := v2.Encrypt(ctx, "kmsprobe", b64(arg))
		if err == nil {
			r.Ciphertext, r.KeyID, r.Annotations = e.Ciphertext, e.KeyID, e.Annotations
		}
		return err
	case op == "decrypt" && v2 != nil:
		// key ID, ciphertext, then annotations as key=base64.
		parts := strings.Split(arg, ",")
		if len(parts) < 2 {
			return errors.New("decrypt=<key id>,<b64 ciphertext>[,<annotation>=<b64 value>...]")
		}
		req := &kmsservice.DecryptRequest{KeyID: parts[0], Ciphertext: b64(parts[1]), Annotations: map[string][]byte{}}
		for _, a := range parts[2:] {
			k, v, _ := strings.Cut(a, "=")
			req.Annotations[k] = b64(v)
		}
		var err error
		r.Plaintext, err = v2.Decrypt(ctx, "kmsprobe", req)
		return err
	case op == "encrypt" && v1 != nil:
		var err error
		r.Ciphertext, err = v1.Encrypt(b64(arg))
		return err
	case op == "decrypt" && v1 != nil:
		var err error
		r.Plaintext, err = v1.Decrypt(b64(arg))
		return err
	}
	return fmt.Errorf("unknown operation %q for this API", op)
}
