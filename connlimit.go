package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"nochat/chat"
)

// connLimit caps the HTTP connections one client address holds open at
// once. Every connection holds a file descriptor, and a process has a
// limit on those (1,024 where nothing raises it): one address holding that
// many sockets would leave the server unable to accept anyone else's, so
// the page and the WebSocket would stop loading for everybody. A connection
// stops counting once it is upgraded to a WebSocket: those have their own
// cap (-max-conns-per-ip). Addresses are counted as the other per-address
// limits count them (chat.AddressKey): IPv6 ones by their /64.
type connLimit struct {
	perIP  int
	refuse func(ip string) // records a refusal

	// refusing holds a place for each refused connection being answered,
	// over every listener (refusalsAtOnce).
	refusing chan struct{}

	mu   sync.Mutex
	open map[string]int
}

func newConnLimit(perIP int, refuse func(ip string)) *connLimit {
	return &connLimit{perIP: perIP, refuse: refuse, open: make(map[string]int), refusing: make(chan struct{}, refusalsAtOnce)}
}

// listener wraps ln: a connection over the cap is answered 429 and
// closed. The answer waits for the client's first request (on HTTPS, for
// its handshake too, conf not nil): one written before it reaches a client
// as an answer to nothing it asked (Go's client drops it, a browser reads
// a 429 written on the bare socket as a broken handshake).
func (l *connLimit) listener(ln net.Listener, conf *tls.Config) net.Listener {
	return &limitedListener{Listener: ln, limit: l, tls: conf}
}

// refusalsAtOnce bounds the refused connections waiting for their first
// request (and handshake), each on its own goroutine for at most
// refusalWait. Past it, in a flood, a refused connection is answered on
// the spot over plain HTTP, and closed without an answer over HTTPS: a
// flood holds at most that many goroutines and sockets more than the cap
// lets in (a handshake's CPU is what any connection's costs). A handshake
// that waits on a certificate (ACME's, being issued) holds its goroutine
// until that returns.
const (
	refusalsAtOnce = 32
	refusalWait    = 2 * time.Second
	maxRefusedHead = 16 << 10
)

// connState is the server's ConnState hook: a connection taken out of the
// server (a WebSocket) no longer counts as an HTTP connection.
func (l *connLimit) connState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok { // HTTPS: the counted connection is under it
		c = tc.NetConn()
	}
	if cc, ok := c.(*countedConn); ok && (state == http.StateHijacked || state == http.StateClosed) {
		cc.release()
	}
}

func (l *connLimit) take(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] >= l.perIP {
		return false
	}
	l.open[ip]++
	return true
}

func (l *connLimit) give(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

type limitedListener struct {
	net.Listener
	limit *connLimit
	tls   *tls.Config // nil: plain HTTP
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerIP(c)
		key := chat.AddressKey(ip) // an IPv6 client's whole /64 is one address here
		if ln.limit.take(key) {
			cc := &countedConn{Conn: c}
			cc.release = sync.OnceFunc(func() { ln.limit.give(key) })
			return cc, nil
		}
		ln.limit.refuse(ip)
		select {
		case ln.limit.refusing <- struct{}{}:
			go ln.refuse(c)
		default:
			if ln.tls == nil {
				// A new socket's send buffer is empty, so this write does
				// not wait on the client; the deadline is there in case it
				// ever would.
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				ln.tooMany(c)
			}
			c.Close()
		}
	}
}

// refuse answers a connection over the cap once its first request has
// come. Then what else the client sends is read, to the deadline, so that
// the close does not reset the connection under the answer before the
// client has read it.
func (ln *limitedListener) refuse(c net.Conn) {
	defer func() { <-ln.limit.refusing }()
	defer c.Close()
	c.SetDeadline(time.Now().Add(refusalWait))
	if ln.tls != nil {
		tc := tls.Server(c, ln.tls)
		if tc.Handshake() != nil {
			return
		}
		c = tc
	}
	// Its head, of which nothing is kept: 16 KiB, a browser's with its
	// cookies and more (a longer one is closed unanswered).
	head := io.LimitReader(c, maxRefusedHead)
	if _, err := http.ReadRequest(bufio.NewReader(head)); err != nil {
		return
	}
	ln.tooMany(c)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// tooMany writes the answer to a connection over the cap.
func (ln *limitedListener) tooMany(c net.Conn) {
	msg := fmt.Sprintf("too many connections from one address (the limit is %d, -max-http-conns-per-ip): close some and try again\n", ln.limit.perIP)
	fmt.Fprintf(c, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
}

// countedConn is a connection counted against its address until it is
// closed or taken out of the server.
type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// SyscallConn is the socket's, if it is one (not TLS): a WebSocket's
// frames may then be written to it without waiting (chat's direct writes).
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// peerIP is the address a connection comes from, without its port.
func peerIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}
