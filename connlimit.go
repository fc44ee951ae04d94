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

	mu   sync.Mutex
	open map[string]int
}

func newConnLimit(perIP int, refuse func(ip string)) *connLimit {
	return &connLimit{perIP: perIP, refuse: refuse, open: make(map[string]int)}
}

// listener wraps ln: a connection over the cap is answered 429 and closed
// as soon as it is accepted, without reading a request from it. On HTTPS
// (conf not nil: ln's connections are to be TLS) the answer comes once
// the connection's handshake is done, which a browser can show: a 429
// written on the bare socket read to it as a broken handshake.
func (l *connLimit) listener(ln net.Listener, conf *tls.Config) net.Listener {
	return &limitedListener{Listener: ln, limit: l, tls: conf, handshakes: make(chan struct{}, refusalHandshakes)}
}

// refusalHandshakes bounds the TLS handshakes of refused connections at
// once, each on its own goroutine for at most refusalWait: past it, a
// refused connection is closed without an answer, so that a flood of
// them holds at most that many goroutines (each handshake's CPU is what
// any connection's costs). A handshake that waits on a certificate
// (ACME's, being issued) holds its goroutine until that returns.
const (
	refusalHandshakes = 32
	refusalWait       = 2 * time.Second
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
	limit      *connLimit
	tls        *tls.Config   // nil: plain HTTP
	handshakes chan struct{} // refused connections' handshakes under way
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
		if ln.tls == nil {
			// A new socket's send buffer is empty, so this write does
			// not wait on the client; the deadline is there in case it
			// ever would.
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			ln.tooMany(c)
			c.Close()
			continue
		}
		select {
		case ln.handshakes <- struct{}{}:
		default:
			c.Close()
			continue
		}
		go func() {
			defer func() { <-ln.handshakes }()
			tc := tls.Server(c, ln.tls)
			defer tc.Close()
			tc.SetDeadline(time.Now().Add(refusalWait))
			if tc.Handshake() != nil {
				return
			}
			// The answer to its first request, once that has come: one
			// written before it reaches a client (Go's, say) as an answer
			// to nothing it asked. Then what else it sends is read, to the
			// deadline, so that the close does not reset the connection
			// under the answer before the client reads it.
			if _, err := http.ReadRequest(bufio.NewReader(tc)); err != nil {
				return
			}
			ln.tooMany(tc)
			tc.CloseWrite()
			io.Copy(io.Discard, io.LimitReader(tc, 64<<10))
		}()
	}
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
