package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/olahol/melody"
)

// Baseline is the server NoChat is measured against: the chat room a
// first melody tutorial gives, keeping nothing. Every text frame is
// broadcast to every session, the sender too (the echo-protocol contract),
// straight from the sender's read goroutine, with melody's defaults: a
// 1 KiB read and write buffer per connection, 256 frames queued per
// session, and, when a session's queue is full, the frame silently dropped.
// It has no storage, no JSON, no ids, no history.
type Baseline struct {
	m *melody.Melody
}

// NewBaseline returns a baseline server; serve it at "/".
func NewBaseline() *Baseline {
	m := melody.New()
	m.Upgrader.Subprotocols = []string{ProtoEcho}
	// The one change from melody's defaults: frames up to NoChat's 16 KiB
	// limit instead of 512 bytes, so both servers take the same messages.
	// It changes nothing for messages that fit in 512 bytes.
	m.Config.MaxMessageSize = 16 << 10
	m.HandleMessage(func(_ *melody.Session, msg []byte) {
		m.Broadcast(msg)
	})
	return &Baseline{m: m}
}

// ServeHTTP upgrades every request to a WebSocket session.
func (b *Baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.m.HandleRequest(w, r)
}

// Close closes every session.
func (b *Baseline) Close() error { return b.m.Close() }

// ServeBaseline serves a baseline on ln until ctx ends.
func ServeBaseline(ctx context.Context, ln net.Listener) error {
	b := NewBaseline()
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(shutdown) // hijacked WebSockets are not waited for…
	b.Close()              // …they are closed here
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
