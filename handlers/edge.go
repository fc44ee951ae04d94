package handlers

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"nochat/chat"
)

// The HTTP edge: what every request passes before it reaches a route. It
// checks the host name the request was sent to and bounds the request body
// in time and size. The socket's own edge (origin, admission, upgrade) is in
// chat, behind this one: the origin check compares Origin with Host, which
// means something only once Host is one of this server's names.

// Hosts are the host names NoChat answers to. A page on another site can
// make a visitor's browser reach NoChat under that site's own name (DNS
// rebinding: attacker.example re-resolved to the Pi's address); its
// requests then carry Host: attacker.example, and a matching Origin passes
// the same-origin checks. Only names NoChat is meant to be reached by are
// answered.
type Hosts struct {
	anyName bool
	names   map[string]bool
}

// NewHosts allows IP literals, localhost, the machine's host name (its
// first label too) and that name under .local (mDNS), and the names in
// allow ("*" for any name at all).
func NewHosts(hostname string, allow []string) Hosts {
	h := Hosts{names: make(map[string]bool)}
	add := func(name string) {
		if name = normalHost(name); name != "" {
			h.names[name] = true
		}
	}
	add("localhost")
	if hostname = normalHost(hostname); hostname != "" {
		short, _, _ := strings.Cut(hostname, ".")
		add(hostname)
		add(short)
		add(short + ".local")
	}
	for _, a := range allow {
		if a == "*" {
			h.anyName = true
		}
		add(a)
	}
	return h
}

// Allowed reports whether a request sent to host (a Host header, with or
// without its port) may be answered. An empty Host is allowed: only an
// HTTP/1.0 client sends none, and browsers always send one.
func (h Hosts) Allowed(host string) bool {
	if h.anyName || host == "" {
		return true
	}
	if name, _, err := net.SplitHostPort(host); err == nil {
		host = name
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true // no page is served under an IP but from that IP
	}
	return h.names[normalHost(host)]
}

// normalHost is a host name as compared: lower case, without the root's
// trailing dot.
func normalHost(name string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
}

// checkHost answers 421 Misdirected Request to a request for a host name
// NoChat is not meant to be reached by, naming the flag that allows it.
// /healthz answers under any name: it reads nothing private and changes
// nothing, and local probes reach it by whatever name they have for the
// machine (a container's service name, an uptime checker's alias).
func checkHost(d Deps, hosts Hosts, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hosts.Allowed(r.Host) || r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		d.Hub.RecordErrorAt(chat.KindBadOrigin, placeHost, fmt.Sprintf("request for host %.60q refused (-allow-host)", r.Host), requestSubject(r, d.TrustProxy))
		err := fmt.Errorf("host %.60q is not a name this server answers to: add it with -allow-host (NOCHAT_ALLOW_HOST)", r.Host)
		if r.ContentLength != 0 {
			leaveBodyUnread(w) // outside limitBodies: with no deadline for it
		}
		refuseRequest(w, r, d.Log, http.StatusMisdirectedRequest, err)
	})
}

// defaultBodyTimeout is how long a client has, once its headers are in, to
// send its whole request body: as long as it had for the headers. Without
// it net/http waits for a body forever, even one the route never reads: it
// reads what is left before answering.
const defaultBodyTimeout = 10 * time.Second

// errBodyTimeout is a body that did not come in time; what a route reading
// the body gets (wrapped, with the time allowed).
var errBodyTimeout = errors.New("request timed out: the body did not arrive")

// errBodyTooLarge refuses a body declared larger than any route takes.
var errBodyTooLarge = fmt.Errorf("request body too large: the limit is %d KiB", maxBodyBytes>>10)

// limitBodies bounds every request body: it must arrive within the body timeout
// and hold at most maxBodyBytes. That includes a WebSocket upgrade that
// comes with a body: refused, it is answered through net/http, which would
// wait for that body. Once upgraded, a connection has the socket's own
// deadlines: gorilla clears the server's when it takes the connection.
func limitBodies(d Deps, next http.Handler) http.Handler {
	timeout := cmp.Or(d.BodyTimeout, defaultBodyTimeout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		limit, timeout, tooLarge, paced := int64(maxBodyBytes), timeout, errBodyTooLarge, false
		if isUpload(r) {
			// A file: larger, and given the time a slow link needs for
			// it, paced by what arrives; the answer's deadline follows
			// the body's end.
			limit, timeout, tooLarge, paced = uploadBodyLimit(d), cmp.Or(d.UploadTimeout, uploadTimeout), errFileTooLarge(d), true
			rc.SetWriteDeadline(time.Now().Add(timeout + writeSlack))
		}
		if r.ContentLength > limit {
			leaveBodyUnread(w)
			d.Hub.RecordErrorAt(chat.KindTooLarge, placeBody, fmt.Sprintf("request body of %d bytes refused", r.ContentLength), requestSubject(r, d.TrustProxy))
			refuseRequest(w, r, d.Log, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		deadline := time.Now().Add(timeout)
		if err := rc.SetReadDeadline(deadline); err != nil {
			d.Log.Warn("request body deadline", "err", err)
		}
		// On a copy of the request: net/http looks at the body of the one
		// it made, once the handler is done, to see what is left of it. A
		// body a client has not sent yet (Expect: 100-continue) it then
		// leaves unasked and closes the connection after the answer; had
		// it found this wrapper, it would wait for that body to read it.
		r = r.WithContext(r.Context())
		body := &deadlineBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), rc: rc, timeout: timeout}
		if paced {
			body.pace = &pace{deadline: deadline, set: rc.SetReadDeadline}
		}
		r.Body = body
		next.ServeHTTP(w, r)
	})
}

// paceBytes is what earns a slow transfer a second more: 32 KiB, so that a
// file over a 256 kbit/s link that keeps going is never cut, however large
// -max-upload allows it, while one that stalls or trickles meets its
// deadline as soon as it would have without the file's size.
const paceBytes = 32 << 10

// pace is a deadline that moves on as a transfer's bytes go by.
type pace struct {
	deadline time.Time
	owed     int // bytes towards the next second
	set      func(time.Time) error
}

func (p *pace) moved(n int) {
	p.owed += n
	if p.owed < paceBytes {
		return
	}
	p.deadline = p.deadline.Add(time.Duration(p.owed/paceBytes) * time.Second)
	p.owed %= paceBytes
	p.set(p.deadline)
}

// deadlineBody lifts the body's read deadline once the body is read to the
// end: the deadline is for the body, and net/http's watch for a client
// hanging up, which reads on past it, would take it for a hang-up and
// cancel a handler still at work.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	pace    *pace // an upload's: the deadline moves on as the file comes
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.pace != nil && n > 0 {
		b.pace.moved(n)
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && b.pace != nil:
		err = fmt.Errorf("%w within %v of the headers and a second more for each 32 KiB that came", errBodyTimeout, b.timeout)
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w within %v of the headers", errBodyTimeout, b.timeout) // what the route tells the client
	}
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
		if b.pace != nil {
			b.rc.SetWriteDeadline(time.Now().Add(writeSlack)) // the answer's, from the body's end
		}
	}
	return n, err
}

// leaveBodyUnread is for an answer given without the request's body: the
// read deadline passes now and the connection closes after the answer.
// Else net/http, which reads what is left of a body before it answers and
// again as it closes the request, would wait for one that may never come.
func leaveBodyUnread(w http.ResponseWriter) {
	http.NewResponseController(w).SetReadDeadline(time.Now())
	w.Header().Set("Connection", "close")
}

// refuseRequest answers a request the edge turns away: {"error": ...} on
// the REST routes, one line of text elsewhere; logged, as writeError logs,
// when the fault is the server's.
func refuseRequest(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, err error) {
	if isREST(r) {
		writeError(w, r, log, status, err)
		return
	}
	if status >= 500 {
		log.Error("request failed", "method", r.Method, "path", loggedPath(r), "status", status, "err", err)
	}
	http.Error(w, err.Error(), status)
}
