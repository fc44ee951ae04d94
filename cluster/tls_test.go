package cluster

import (
	"bytes"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nochat/cluster/clustertest"
	"nochat/db"
)

// handshake runs a TLS handshake between a client and a server configured
// with client and server, and reports each side's error.
func handshake(t *testing.T, client, server *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(conn, server)
		err = s.Handshake()
		if err == nil {
			// TLS 1.3 checks the client's certificate after the client
			// is done: read, so a refusal reaches the client.
			if _, err = s.Read(make([]byte, 1)); err == nil {
				_, err = s.Write([]byte("y"))
			}
		}
		done <- err
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(conn, client)
	if clientErr = c.Handshake(); clientErr == nil {
		if _, clientErr = c.Write([]byte("x")); clientErr == nil {
			_, clientErr = c.Read(make([]byte, 1))
		}
	}
	conn.Close()
	return clientErr, <-done
}

func TestRouteTLSAdmitsOnlyTheClustersNodes(t *testing.T) {
	conf := func(secret, cluster, node string) *tls.Config {
		c, err := routeTLS(secret, cluster, node)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	n1, n2 := conf(testSecret, "nochat", "n1"), conf(testSecret, "nochat", "n2")
	if cerr, serr := handshake(t, n1, n2); cerr != nil || serr != nil {
		t.Fatalf("two nodes with the cluster's secret: client %v, server %v", cerr, serr)
	}
	for _, tc := range []struct {
		what   string
		client *tls.Config
		server *tls.Config
	}{
		{"a node with another secret calls a node", conf("another-secret-entirely", "nochat", "x"), n1},
		{"a node calls a node with another secret", n1, conf("another-secret-entirely", "nochat", "x")},
		{"a node of another cluster with the same secret", conf(testSecret, "other", "x"), n1},
		{"a client with no certificate", &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, n1},
	} {
		cerr, serr := handshake(t, tc.client, tc.server)
		if cerr == nil && serr == nil {
			t.Errorf("%s: the handshake succeeded", tc.what)
		}
	}
}

// recorder is a TCP proxy to one address that keeps every byte it passes,
// both ways.
type recorder struct {
	l    net.Listener
	mu   sync.Mutex
	seen bytes.Buffer
}

func newRecorder(t *testing.T, to string) *recorder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to)
			if err != nil {
				in.Close()
				continue
			}
			go r.pipe(in, out)
			go r.pipe(out, in)
		}
	}()
	return r
}

func (r *recorder) pipe(from, to net.Conn) {
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.seen.Write(buf[:n])
			r.mu.Unlock()
			if _, err := to.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.seen.Bytes())
}

// What crosses the network between nodes is encrypted: a message is on
// every node, and nowhere in the bytes that carried it.
func TestRoutesAreEncrypted(t *testing.T) {
	routes := clustertest.LoopbackPorts(t, 3)
	nowhere := clustertest.LoopbackPorts(t, 1)[0]
	cfgs := configs(t, routes)
	var recs []*recorder
	for i := range cfgs {
		// Every route goes through a recorder, and no node can find
		// another way: each advertises an address where nothing listens.
		cfgs[i].Peers = nil
		for j, to := range routes {
			if i != j {
				r := newRecorder(t, to)
				recs = append(recs, r)
				cfgs[i].Peers = append(cfgs[i].Peers, r.l.Addr().String())
			}
		}
		cfgs[i].Advertise = nowhere
		cfgs[i].Dir = filepath.Join(t.TempDir(), "jetstream")
	}
	nodes := startAll(t, cfgs)
	const text = "the door code is 4711, meet at the makerspace"
	it := nodes[0].send(t, db.Draft{User: "annabelle", Message: text}, "a1")
	if it.Refused != nil {
		t.Fatal(it.Refused)
	}
	caughtUp(t, nodes, it.Message.ID)
	for _, nd := range nodes {
		if h := history(t, nd); len(h) != 1 || !strings.Contains(h[0], "door code") {
			t.Fatalf("%s: history %q", nd.cfg.Node, h)
		}
	}
	var all []byte
	for _, r := range recs {
		all = append(all, r.bytes()...)
	}
	if len(all) < 1000 {
		t.Fatalf("only %d bytes went through the recorders: the routes went around them", len(all))
	}
	// Each is long enough not to turn up by chance in the ciphertext:
	// some 200-300 KB cross the recorders, and a three-byte name, at any
	// place of random bytes once in 16 million, did so in about one run
	// in 70 (a CI run met it).
	for _, secret := range []string{"code is 4711", "makerspace", testSecret, "annabelle"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("%q crossed the network in the clear", secret)
		}
	}
}
