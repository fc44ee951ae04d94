package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Store.Close with a read still under way (sql.DB.Close leaves a
// connection in use open until it is put back) keeps the WAL index's
// descriptor, and so SQLite's locks: another process still finds the
// database in use. (It closed the descriptor regardless, and dropped
// the locks of the connection still reading.)
func TestCloseKeepsTheIndexOpenWhileAReadGoesOn(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(s, 0, func(c Commit[chan error]) {
		for _, it := range c.Items {
			it.Tag <- c.Err
		}
	})
	done := make(chan error, 1)
	if err := w.Append(ctx, Draft{User: "ann", Message: "hello"}, done); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
	time.Sleep(100 * time.Millisecond) // the checkpointer looks at the index after the commit
	rows, err := s.read.QueryContext(ctx, "SELECT id FROM messages")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	t.Cleanup(func() {
		if s.ckpt.index != nil {
			s.ckpt.index.Close()
		}
	})

	if got, want := strings.TrimSpace(OtherProcess(t, "lock", path)), LockedByUs(); got != want {
		t.Errorf("with a read still going on after Close, another process sees the index's lock as %q, want %q", got, want)
	}
	for rows.Next() {
	}
	rows.Close()
}
