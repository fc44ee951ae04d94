package handlers

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"nochat/chat"
)

// The HTTP edge: what every request passes before it reaches a route. It
// bounds the request body in time and size. The socket's own edge (origin,
// admission, upgrade) is in chat, behind this one.

// bodyTimeout is how long a client has, once its headers are in, to send
// its whole request body: as long as it had for the headers. Without it
// net/http waits for a body forever, even one the route never reads: it
// reads what is left before answering.
const bodyTimeout = 10 * time.Second

// errBodyTooLarge refuses a body declared larger than any route takes.
var errBodyTooLarge = fmt.Errorf("request body too large: the limit is %d KiB", maxBodyBytes>>10)

// limitBodies bounds every request body: it must arrive within bodyTimeout
// and hold at most maxBodyBytes. A WebSocket upgrade has no body, and once
// upgraded its connection has the socket's own deadlines (gorilla clears
// the server's when it takes the connection).
func limitBodies(d Deps, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || chat.IsUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if r.ContentLength > maxBodyBytes {
			// Not to be read: the deadline passes now, so that net/http,
			// which reads a short unread body before it answers, does not
			// wait for this one, and the connection closes after the 413.
			rc.SetReadDeadline(time.Now())
			w.Header().Set("Connection", "close")
			d.Hub.RecordError(chat.KindTooLarge, fmt.Sprintf("request body of %d bytes refused", r.ContentLength), requestSubject(r, d.TrustProxy))
			refuseRequest(w, r, d, http.StatusRequestEntityTooLarge, errBodyTooLarge)
			return
		}
		if err := rc.SetReadDeadline(time.Now().Add(bodyTimeout)); err != nil {
			d.Log.Warn("request body deadline", "err", err)
		}
		r.Body = &deadlineBody{ReadCloser: http.MaxBytesReader(w, r.Body, maxBodyBytes), rc: rc}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the body's read deadline once the body is read to the
// end: the deadline is for the body, and net/http's watch for a client
// hanging up, which reads on past it, would take it for a hang-up and
// cancel a handler still at work.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// refuseRequest answers a request the edge turns away: {"error": ...} on
// the REST routes, one line of text elsewhere.
func refuseRequest(w http.ResponseWriter, r *http.Request, d Deps, status int, err error) {
	if strings.HasPrefix(r.URL.Path, "/discussion") {
		writeError(w, r, d.Log, status, err)
		return
	}
	http.Error(w, err.Error(), status)
}
