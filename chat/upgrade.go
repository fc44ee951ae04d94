package chat

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// A melody session runs its read loop inside the handler that upgraded it,
// for as long as the socket is open. Called from net/http's handler, that
// keeps the whole HTTP connection alive underneath: the connection goroutine's
// deep stack (8 KiB), the server's 4 KiB read and write buffers, the response
// and request. So ServeWS takes the connection out of the server (net/http's
// Hijack), lets the HTTP handler return, and upgrades on a goroutine of its
// own through hijacked, a ResponseWriter whose Hijack hands over that
// connection. gorilla then reads through a small buffer of its own
// (readBufferSize) and melody never sees net/http. Measured at 5,000 idle
// sockets, that took each from 31.7 KiB of RSS to 18.6 KiB (BENCHMARKS.md).

// readBufferSize is each connection's read buffer. Frames longer than it are
// read straight into the message, so it only bounds how many small frames
// one read system call takes in: 1 KiB holds a dozen chat lines.
const readBufferSize = 1024

// handshakeOK reports whether the upgrader will accept r's handshake: the
// checks gorilla/websocket makes before taking the connection. A request
// that fails one is upgraded in place instead, so that gorilla answers it
// through net/http as usual.
func handshakeOK(r *http.Request) bool {
	if r.Method != http.MethodGet || !IsUpgrade(r) {
		return false
	}
	version := false
	for _, v := range r.Header.Values("Sec-Websocket-Version") {
		for t := range strings.SplitSeq(v, ",") {
			version = version || strings.TrimSpace(t) == "13"
		}
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-Websocket-Key"))
	return version && err == nil && len(key) == 16
}

// handshakeHeaders are the request headers the upgrade reads. The upgrade
// runs after the HTTP handler has returned, when the server's request is no
// longer the handler's to use, so it gets a copy of these.
var handshakeHeaders = []string{"Connection", "Upgrade", "Sec-Websocket-Version", "Sec-Websocket-Key", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Origin"}

// handshakeRequest is the part of r the upgrade needs, with no ties to the
// HTTP server's connection or to the handler's context (cancelled when the
// handler returns).
func handshakeRequest(r *http.Request) *http.Request {
	h := make(http.Header, len(handshakeHeaders))
	for _, k := range handshakeHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	return &http.Request{
		Method:     r.Method,
		URL:        r.URL,
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
		ProtoMinor: r.ProtoMinor,
		Header:     h,
		Host:       r.Host,
		RemoteAddr: r.RemoteAddr,
		RequestURI: r.RequestURI,
	}
}

// hijacked is the ResponseWriter melody upgrades through once ServeWS has
// taken the connection from the HTTP server.
type hijacked struct {
	conn   net.Conn
	brw    *bufio.ReadWriter // the server's buffers, until Hijack hands them over
	header http.Header       // sent with the 101 (the security headers)
	status int
	body   bytes.Buffer
	taken  bool
}

func (h *hijacked) Header() http.Header {
	if h.header == nil {
		h.header = make(http.Header)
	}
	return h.header
}

func (h *hijacked) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *hijacked) Write(p []byte) (int, error) {
	if h.taken {
		return 0, http.ErrHijacked
	}
	h.WriteHeader(http.StatusOK)
	return h.body.Write(p)
}

func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h.taken {
		return nil, nil, http.ErrHijacked
	}
	h.taken = true
	// Nothing here is needed once the upgrader has the connection, and this
	// writer lives as long as the session: let the buffers and headers go.
	brw := h.brw
	h.brw, h.header = nil, nil
	return h.conn, brw, nil
}

// refused answers, and closes, a connection whose upgrade was refused before
// the upgrader took it: with the status and text the upgrader wrote, as
// net/http would have sent them. Once taken, the upgrader has closed it.
func (h *hijacked) refused() {
	if h.taken {
		return
	}
	status := h.status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	resp := &http.Response{
		StatusCode:    status,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h.Header(),
		Body:          io.NopCloser(&h.body),
		ContentLength: int64(h.body.Len()),
		Close:         true,
	}
	var b bytes.Buffer
	resp.Write(&b)
	h.conn.SetWriteDeadline(time.Now().Add(time.Second))
	h.conn.Write(b.Bytes())
	h.conn.Close()
}
