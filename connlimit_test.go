package main

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
)

// A counted connection keeps its socket reachable, so that chat can write
// a WebSocket's frames to it without waiting; a TLS connection's socket
// carries records, not frames, and must not be offered.
func TestACountedConnectionOffersItsSocketButNotUnderTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	tcp, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()

	var plain net.Conn = &countedConn{Conn: tcp, release: func() {}}
	sc, ok := plain.(syscall.Conn)
	if !ok {
		t.Fatal("a counted TCP connection does not offer its socket")
	}
	if _, err := sc.SyscallConn(); err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}

	var secure net.Conn = &countedConn{Conn: tls.Server(tcp, &tls.Config{}), release: func() {}}
	if _, err := secure.(syscall.Conn).SyscallConn(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("a TLS connection's socket was offered (err %v)", err)
	}
}
