// Package plugin is a KMS plugin for tests: the v2 API through the upstream
// plugin library (k8s.io/kms/pkg/service) and the deprecated v1beta1 API,
// both backed by local AES-256-GCM key-encryption keys (KEKs), with switches
// that make it fail, hang or report itself unhealthy.
//
// Ciphertext layout (what Encrypt returns, for both APIs):
//
//	len(keyID) (1 byte) | keyID | nonce (12 bytes) | AES-256-GCM(KEK[keyID], nonce, plaintext, aad=keyID)
//
// so Decrypt finds the KEK from the ciphertext alone (v1beta1 sends nothing
// else). Rotation adds a KEK and keeps the old ones, so older ciphertexts
// still decrypt. v2 Encrypt also returns the annotation AnnotationKey = key
// ID, and v2 Decrypt insists that the request's key_id and that annotation
// both match the key ID inside the ciphertext: a client that drops either
// (as kube-apiserver never does) fails.
package plugin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kmsv1 "k8s.io/kms/apis/v1beta1"
	kmsv2 "k8s.io/kms/apis/v2"
	"k8s.io/kms/pkg/service"
)

// AnnotationKey is the v2 annotation naming the key ID (a fully qualified
// domain name, as kube-apiserver requires of annotation keys).
const AnnotationKey = "key-id.kmsplugin.apiserver-storage.test"

// Counts are the calls received per method, counted on arrival (failed and
// hung calls included).
type Counts struct {
	V2 struct {
		Status  int64 `json:"status"`
		Encrypt int64 `json:"encrypt"`
		Decrypt int64 `json:"decrypt"`
	} `json:"v2"`
	V1 struct {
		Version int64 `json:"version"`
		Encrypt int64 `json:"encrypt"`
		Decrypt int64 `json:"decrypt"`
	} `json:"v1"`
}

// Plugin holds the KEKs and the switches; its methods are safe for
// concurrent use.
type Plugin struct {
	mu        sync.Mutex
	baseKeyID string
	keyID     string
	keks      map[string]cipher.AEAD
	rotations int
	failing   bool
	unhealthy bool
	hanging   bool
	release   chan struct{} // closed by Reset: wakes hung calls
	v2Status  atomic.Int64
	v2Encrypt atomic.Int64
	v2Decrypt atomic.Int64
	v1Version atomic.Int64
	v1Encrypt atomic.Int64
	v1Decrypt atomic.Int64
}

// New returns a healthy plugin whose current key is keyID, with a fresh KEK.
func New(keyID string) (*Plugin, error) {
	p := &Plugin{baseKeyID: keyID, keks: map[string]cipher.AEAD{}, release: make(chan struct{})}
	if err := p.addKey(keyID); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Plugin) addKey(keyID string) error {
	if len(keyID) == 0 || len(keyID) > 255 {
		return fmt.Errorf("key ID %q: want 1 to 255 bytes", keyID)
	}
	if _, ok := p.keks[keyID]; ok {
		return fmt.Errorf("key ID %q is already in use", keyID)
	}
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		return err
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	p.keks[keyID] = aead
	p.keyID = keyID
	return nil
}

// KeyID is the current key ID (the one Status reports and Encrypt uses).
func (p *Plugin) KeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keyID
}

// Rotate switches to a new key ID with a new KEK: keyID when not empty,
// else "<initial key ID>-<n>" (n = 2, 3, ...). Old KEKs are kept.
func (p *Plugin) Rotate(keyID string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if keyID == "" {
		p.rotations++
		keyID = fmt.Sprintf("%s-%d", p.baseKeyID, p.rotations+1)
	}
	if err := p.addKey(keyID); err != nil {
		return "", err
	}
	return keyID, nil
}

// Fail makes Encrypt and Decrypt (both APIs) answer with gRPC code
// Unavailable; Status and Version still answer.
func (p *Plugin) Fail() { p.set(func() { p.failing = true }) }

// Unhealthy makes v2 Status report healthz "unhealthy" (v1beta1 has no
// health call of its own: kube-apiserver probes it with Encrypt/Decrypt).
func (p *Plugin) Unhealthy() { p.set(func() { p.unhealthy = true }) }

// Hang makes v2 Status and Encrypt/Decrypt of both APIs block until Reset
// or the caller's deadline (then they answer DeadlineExceeded/Canceled).
func (p *Plugin) Hang() { p.set(func() { p.hanging = true }) }

// Reset clears Fail, Unhealthy and Hang (releasing hung calls, which then
// proceed normally); keys are kept.
func (p *Plugin) Reset() {
	p.set(func() {
		p.failing, p.unhealthy, p.hanging = false, false, false
		close(p.release)
		p.release = make(chan struct{})
	})
}

func (p *Plugin) set(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

// Stats returns the calls received so far.
func (p *Plugin) Stats() Counts {
	var c Counts
	c.V2.Status, c.V2.Encrypt, c.V2.Decrypt = p.v2Status.Load(), p.v2Encrypt.Load(), p.v2Decrypt.Load()
	c.V1.Version, c.V1.Encrypt, c.V1.Decrypt = p.v1Version.Load(), p.v1Encrypt.Load(), p.v1Decrypt.Load()
	return c
}

// gate applies Hang, then Fail when fail is true (Status is only hung).
func (p *Plugin) gate(ctx context.Context, fail bool) error {
	for {
		p.mu.Lock()
		hanging, failing, release := p.hanging, p.failing, p.release
		p.mu.Unlock()
		if !hanging {
			if fail && failing {
				return status.Error(codes.Unavailable, "kmsplugin: failing (set by the control API)")
			}
			return nil
		}
		select {
		case <-release:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (p *Plugin) encrypt(plaintext []byte) ([]byte, string, error) {
	p.mu.Lock()
	keyID, aead := p.keyID, p.keks[p.keyID]
	p.mu.Unlock()
	out := make([]byte, 0, 1+len(keyID)+12+len(plaintext)+aead.Overhead())
	out = append(out, byte(len(keyID)))
	out = append(out, keyID...)
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", status.Error(codes.Internal, err.Error())
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, []byte(keyID)), keyID, nil
}

// KeyIDOf is the key ID inside one of the plugin's ciphertexts.
func KeyIDOf(ciphertext []byte) (string, error) {
	if len(ciphertext) < 1 || len(ciphertext) < 1+int(ciphertext[0])+12 {
		return "", errors.New("kmsplugin: ciphertext too short")
	}
	return string(ciphertext[1 : 1+int(ciphertext[0])]), nil
}

func (p *Plugin) decrypt(ciphertext []byte) ([]byte, string, error) {
	keyID, err := KeyIDOf(ciphertext)
	if err != nil {
		return nil, "", status.Error(codes.InvalidArgument, err.Error())
	}
	p.mu.Lock()
	aead := p.keks[keyID]
	p.mu.Unlock()
	if aead == nil {
		return nil, keyID, status.Errorf(codes.NotFound, "kmsplugin: no KEK for key ID %q", keyID)
	}
	body := ciphertext[1+len(keyID):]
	plain, err := aead.Open(nil, body[:12], body[12:], []byte(keyID))
	if err != nil {
		return nil, keyID, status.Errorf(codes.InvalidArgument, "kmsplugin: ciphertext does not decrypt with key ID %q", keyID)
	}
	return plain, keyID, nil
}

// V2 is the plugin as a k8s.io/kms/pkg/service.Service.
func (p *Plugin) V2() service.Service { return v2Service{p} }

type v2Service struct{ p *Plugin }

func (s v2Service) Status(ctx context.Context) (*service.StatusResponse, error) {
	s.p.v2Status.Add(1)
	if err := s.p.gate(ctx, false); err != nil {
		return nil, err
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	healthz := "ok"
	if s.p.unhealthy {
		healthz = "unhealthy (set by the control API)"
	}
	return &service.StatusResponse{Version: "v2", Healthz: healthz, KeyID: s.p.keyID}, nil
}

func (s v2Service) Encrypt(ctx context.Context, _ string, data []byte) (*service.EncryptResponse, error) {
	s.p.v2Encrypt.Add(1)
	if err := s.p.gate(ctx, true); err != nil {
		return nil, err
	}
	ciphertext, keyID, err := s.p.encrypt(data)
	if err != nil {
		return nil, err
	}
	return &service.EncryptResponse{Ciphertext: ciphertext, KeyID: keyID, Annotations: map[string][]byte{AnnotationKey: []byte(keyID)}}, nil
}

func (s v2Service) Decrypt(ctx context.Context, _ string, req *service.DecryptRequest) ([]byte, error) {
	s.p.v2Decrypt.Add(1)
	if err := s.p.gate(ctx, true); err != nil {
		return nil, err
	}
	plain, keyID, err := s.p.decrypt(req.Ciphertext)
	if err != nil {
		return nil, err
	}
	if req.KeyID != keyID || string(req.Annotations[AnnotationKey]) != keyID {
		return nil, status.Errorf(codes.InvalidArgument, "kmsplugin: the ciphertext is for key ID %q, the request names key ID %q and annotation %q",
			keyID, req.KeyID, req.Annotations[AnnotationKey])
	}
	return plain, nil
}

// V1 is the plugin as a v1beta1 gRPC server.
func (p *Plugin) V1() kmsv1.KeyManagementServiceServer { return &v1Server{p: p} }

type v1Server struct {
	kmsv1.UnimplementedKeyManagementServiceServer
	p *Plugin
}

func (s *v1Server) Version(context.Context, *kmsv1.VersionRequest) (*kmsv1.VersionResponse, error) {
	s.p.v1Version.Add(1)
	return &kmsv1.VersionResponse{Version: "v1beta1", RuntimeName: "kmsplugin", RuntimeVersion: "0.1.0"}, nil
}

func (s *v1Server) Encrypt(ctx context.Context, req *kmsv1.EncryptRequest) (*kmsv1.EncryptResponse, error) {
	s.p.v1Encrypt.Add(1)
	if err := s.p.gate(ctx, true); err != nil {
		return nil, err
	}
	ciphertext, _, err := s.p.encrypt(req.Plain)
	if err != nil {
		return nil, err
	}
	return &kmsv1.EncryptResponse{Cipher: ciphertext}, nil
}

func (s *v1Server) Decrypt(ctx context.Context, req *kmsv1.DecryptRequest) (*kmsv1.DecryptResponse, error) {
	s.p.v1Decrypt.Add(1)
	if err := s.p.gate(ctx, true); err != nil {
		return nil, err
	}
	plain, _, err := s.p.decrypt(req.Cipher)
	if err != nil {
		return nil, err
	}
	return &kmsv1.DecryptResponse{Plain: plain}, nil
}

// Control is the HTTP control API: POST /fail, /hang, /unhealthy, /rotate
// (an optional body names the new key ID; the reply is the new key ID),
// /reset; GET /stats (Counts as JSON) and /key-id.
func (p *Plugin) Control() http.Handler {
	mux := http.NewServeMux()
	post := func(path string, f func()) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, _ *http.Request) {
			f()
			fmt.Fprintln(w, "ok")
		})
	}
	post("/fail", p.Fail)
	post("/hang", p.Hang)
	post("/unhealthy", p.Unhealthy)
	post("/reset", p.Reset)
	mux.HandleFunc("POST /rotate", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 256))
		keyID, err := p.Rotate(string(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, keyID)
	})
	mux.HandleFunc("GET /key-id", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, p.KeyID())
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Stats())
	})
	return mux
}

// Server is a running plugin: its listeners and servers.
type Server struct {
	grpc    []*grpc.Server
	http    *http.Server
	sockets []string
	done    sync.WaitGroup
}

// Serve listens on the given unix socket paths (an empty path is skipped;
// an existing file there is removed first) and serves until Close.
func Serve(p *Plugin, v2Socket, v1Socket, controlSocket string) (*Server, error) {
	s := &Server{}
	listen := func(path string) (net.Listener, error) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		l, err := net.Listen("unix", path)
		if err == nil {
			s.sockets = append(s.sockets, path)
		}
		return l, err
	}
	serveGRPC := func(path string, register func(*grpc.Server)) error {
		l, err := listen(path)
		if err != nil {
			return err
		}
		g := grpc.NewServer()
		register(g)
		s.grpc = append(s.grpc, g)
		s.done.Add(1)
		go func() { defer s.done.Done(); _ = g.Serve(l) }()
		return nil
	}
	var err error
	if v2Socket != "" {
		// The upstream adapter from service.Service to the v2 gRPC API;
		// its own ListenAndServe would not tell us when it listens.
		adapter := service.NewGRPCService(v2Socket, 0, p.V2())
		err = serveGRPC(v2Socket, func(g *grpc.Server) { kmsv2.RegisterKeyManagementServiceServer(g, adapter) })
	}
	if err == nil && v1Socket != "" {
		err = serveGRPC(v1Socket, func(g *grpc.Server) { kmsv1.RegisterKeyManagementServiceServer(g, p.V1()) })
	}
	if err == nil && controlSocket != "" {
		var l net.Listener
		if l, err = listen(controlSocket); err == nil {
			s.http = &http.Server{Handler: p.Control(), ReadHeaderTimeout: 10 * time.Second}
			s.done.Add(1)
			go func() { defer s.done.Done(); _ = s.http.Serve(l) }()
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops all servers at once (in-flight calls are cancelled) and
// removes the sockets.
func (s *Server) Close() {
	for _, g := range s.grpc {
		g.Stop()
	}
	if s.http != nil {
		_ = s.http.Close()
	}
	s.done.Wait()
	for _, path := range s.sockets {
		_ = os.Remove(path)
	}
}
