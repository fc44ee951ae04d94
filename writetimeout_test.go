package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nochat/db"
)

// A client that asks for a large answer and never reads it loses its
// socket once the write deadline passes, while a WebSocket open longer than
// that deadline goes on working: the deadline is for plain HTTP answers.
func TestUnreadAnswerIsCutOffWebSocketsAreNot(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "nochat.db")
	// A history page of 500 messages of 20,000 characters: 10 MB of JSON,
	// more than the kernel's socket buffers hold between the two ends.
	store, err := db.Open(context.Background(), dbPath, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	drafts := make([]db.Draft, 500)
	for i := range drafts {
		drafts[i] = db.Draft{User: "ann", Message: fmt.Sprint(i, strings.Repeat("x", 20000))}
	}
	if _, err := store.Insert(context.Background(), drafts); err != nil {
		t.Fatal(err)
	}
	store.Close()

	const timeout = time.Second
	s := startConfig(t, map[string]string{"NOCHAT_DB": dbPath}, func(cfg *config) { cfg.writeTimeout = timeout })
	ws := dialV1(t, s.url, "bob")

	c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No small receive buffer: set after the handshake, it stalls the
	// sender's zero-window probes, and the kernel's own buffers (a few MB
	// on Linux while the reader is idle) are already less than the answer.
	fmt.Fprintf(c, "GET /discussion?limit=500 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	time.Sleep(3 * timeout) // the client reads nothing meanwhile

	// Now it reads: what the server sent before it gave up, then the end.
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // bounds the test
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read %d bytes and the server still holds the socket: the unread answer has no deadline", n)
	}
	if n >= 10_000_000 {
		t.Fatalf("read all %d bytes: the answer was not cut off", n)
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Logf("the socket ended with %v after %d bytes", err, n) // a reset is as good as a close
	}

	// The WebSocket, open for longer than the deadline, still works.
	ws.sendOK("still here", "cid-after-deadline")
	if got := s.get(t, "/healthz"); strings.TrimSpace(got) != "ok" {
		t.Fatalf("healthz after: %q", got)
	}
}
