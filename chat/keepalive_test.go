package chat_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// TestPingsDoNotGrowIdleConnections holds idle sockets through keepalive
// pings and compares the server's goroutine stacks before the first ping
// and after a few. A ping written by each session's own write goroutine
// grew that goroutine's stack from 2 to 4 KiB for good: 1.5 KiB more a
// connection, from 25 s after it connected, for as long as it stayed open.
func TestPingsDoNotGrowIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for pings: skipped with -short")
	}
	const (
		n      = 200
		period = 2 * time.Second // long enough to connect them all before the first ping
	)
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Sockets come wrapped, as from nochat's own listener (connlimit.go):
	// the write path is as deep as in the server people run.
	r := serveRoomOn(t, store, chat.Options{PingPeriod: period, MaxConnsPerIP: -1}, func(l net.Listener) net.Listener { return wrappingListener{l} })

	start := time.Now()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		// Nothing reads these until the end, so no goroutine of this
		// process holds them: the stacks counted are the server's.
		conns[i] = r.dial(t, "echo-protocol", "").conn
	}
	waitOnline(t, r.hub, n)
	before := stacks()
	connected := time.Since(start)
	if connected > period*3/4 {
		t.Fatalf("connecting took %v, too close to the first ping (%v) to measure before it", connected, period)
	}

	time.Sleep(time.Until(start.Add(2*period + period/2))) // each socket pinged once or twice
	after := stacks()

	// The pings did arrive: each socket holds them, read now, all at once.
	var wg sync.WaitGroup
	pinged := make([]atomic.Bool, n)
	for i, c := range conns {
		c.SetPingHandler(func(string) error {
			pinged[i].Store(true)
			return nil
		})
		c.SetReadDeadline(time.Now().Add(time.Second))
		wg.Go(func() { c.NextReader() }) // ends at the deadline: echo-protocol sends nothing idle
	}
	wg.Wait()
	for i := range pinged {
		if !pinged[i].Load() {
			t.Fatalf("connection %d got no ping", i)
		}
	}
	if r.hub.Online() != n {
		t.Fatalf("%d sessions open, want %d", r.hub.Online(), n)
	}
	per := (float64(after) - float64(before)) / n
	t.Logf("connected in %v; server stacks %d → %d bytes: %+.0f bytes a connection", connected, before, after, per)
	if per > 256 {
		t.Errorf("pings grew the stacks by %.0f bytes a connection, want none", per)
	}
}

// stacks is the stack memory in use, after collections have shrunk what
// they can.
func stacks() uint64 { return collected().StackInuse }

// wrappingListener wraps each connection as nochat's listener does.
type wrappingListener struct{ net.Listener }

func (l wrappingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c}, nil
}

type wrappedConn struct{ net.Conn }

func (c wrappedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// selfSigned is a certificate for 127.0.0.1, made now.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
