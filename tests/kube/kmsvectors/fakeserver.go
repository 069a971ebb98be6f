package main

import (
	"context"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kmsv1 "k8s.io/kms/apis/v1beta1"
	kmsv2 "k8s.io/kms/apis/v2"
	"k8s.io/kms/pkg/service"
)

// serveFake serves the fake KMS's API (v2 reporting keyID, or v1beta1) on
// a unix socket until stop is called.
func serveFake(socket, api, keyID string) (stop func(), err error) {
	l, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer()
	if api == "v2" {
		kmsv2.RegisterKeyManagementServiceServer(g, service.NewGRPCService(socket, 0, &fakeV2{keyID: keyID}))
	} else {
		kmsv1.RegisterKeyManagementServiceServer(g, fakeV1Server{})
	}
	go func() { _ = g.Serve(l) }()
	return func() { g.Stop(); _ = os.Remove(socket) }, nil
}

type fakeV1Server struct {
	kmsv1.UnimplementedKeyManagementServiceServer
}

func (fakeV1Server) Version(context.Context, *kmsv1.VersionRequest) (*kmsv1.VersionResponse, error) {
	return &kmsv1.VersionResponse{Version: "v1beta1", RuntimeName: "kmsvectors", RuntimeVersion: "0.1.0"}, nil
}

func (fakeV1Server) Encrypt(_ context.Context, req *kmsv1.EncryptRequest) (*kmsv1.EncryptResponse, error) {
	return &kmsv1.EncryptResponse{Cipher: fakeEncrypt(req.Plain)}, nil
}

func (fakeV1Server) Decrypt(_ context.Context, req *kmsv1.DecryptRequest) (*kmsv1.DecryptResponse, error) {
	plain, err := fakeDecrypt(req.Cipher)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &kmsv1.DecryptResponse{Plain: plain}, nil
}
