// Command kmsplugin is a KMS plugin for tests (see package plugin): the v2
// API on --v2-socket, the v1beta1 API on --v1-socket, and an HTTP control
// API on --control. It prints "ready" on stdout once every socket listens.
//
//	kmsplugin --v2-socket /tmp/k/v2.sock --v1-socket /tmp/k/v1.sock --control /tmp/k/control.sock
//	curl --unix-socket /tmp/k/control.sock -X POST http://plugin/rotate
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"apiserver-storage/kube/kmsplugin/plugin"
)

func main() {
	v2Socket := flag.String("v2-socket", "", "unix socket path for the KMS v2 API (none when empty)")
	v1Socket := flag.String("v1-socket", "", "unix socket path for the KMS v1beta1 API (none when empty)")
	control := flag.String("control", "", "unix socket path for the HTTP control API (none when empty)")
	keyID := flag.String("key-id", "key-1", "the initial key ID")
	withStdin := flag.Bool("exit-with-stdin", false, "exit when stdin reaches end of file (so a harness that dies takes the plugin with it)")
	flag.Parse()
	if *v2Socket == "" && *v1Socket == "" {
		fmt.Fprintln(os.Stderr, "kmsplugin: give --v2-socket, --v1-socket or both")
		os.Exit(2)
	}

	p, err := plugin.New(*keyID)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsplugin:", err)
		os.Exit(2)
	}
	server, err := plugin.Serve(p, *v2Socket, *v1Socket, *control)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsplugin:", err)
		os.Exit(1)
	}
	fmt.Println("ready")

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	if *withStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop <- syscall.SIGTERM
		}()
	}
	<-stop
	server.Close()
}
