package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"nochat/db"
)

// ckptAfter is the tests' checkpoint threshold: small, so a few thousand
// messages cross it many times.
const ckptAfter = 64 << 10

// sendAll sends n messages through a Writer, waiting for each batch of 100
// to commit, and fails the test if any send or commit fails.
func sendAll(t *testing.T, w *db.Writer[chan error], n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += 100 {
		done := make(chan error, 100)
		k := min(100, n-i)
		for j := range k {
			if err := w.Append(ctx, db.Draft{User: "ann", Message: fmt.Sprintf("message %d, long enough to fill a page or two of the WAL now and then", i+j)}, done); err != nil {
				t.Fatalf("append: %v", err)
			}
		}
		for range k {
			if err := <-done; err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
	}
}

func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// waitWAL waits, a bounded while, for the WAL file to be at most want bytes,
// and returns its size.
func waitWAL(t *testing.T, path string, want int64) int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := walSize(t, path)
		if got <= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openCkptStore(t *testing.T) (*db.Store, *db.Writer[chan error], string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(context.Background(), path, db.Options{CheckpointAfter: ckptAfter, CheckpointIdle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := db.NewWriter(s, 0, func(c db.Commit[chan error]) {
		for _, it := range c.Items {
			it.Tag <- c.Err
		}
	})
	t.Cleanup(func() {
		w.Close()
		s.Close()
	})
	return s, w, path
}

// holdSnapshot opens a read transaction on its own connection, as a long
// export or a slow page would, and returns what ends it.
func holdSnapshot(t *testing.T, path string) func() {
	t.Helper()
	r, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := r.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return func() {
		tx.Rollback()
		r.Close()
	}
}

// A reader holding a snapshot keeps the WAL from being copied back, so it
// grows; once the reader lets go and the chat goes quiet, the file is
// truncated to nothing (before the checkpointer, it kept its largest size,
// up to journal_size_limit, until Close).
func TestWALTruncatedWhenIdleAfterReader(t *testing.T) {
	s, w, path := openCkptStore(t)
	sendAll(t, w, 200)

	release := holdSnapshot(t, path)
	sendAll(t, w, 2000)
	pinned := walSize(t, path)
	if pinned < 4*ckptAfter {
		t.Fatalf("WAL with a reader holding a snapshot = %d bytes, want it to have grown past %d", pinned, 4*ckptAfter)
	}
	release()

	// Writes after the reader let go: checkpoints run beside them.
	sendAll(t, w, 3000)
	if got := s.CheckpointStats().Runs[db.Passive]; got == 0 {
		t.Errorf("passive checkpoints = 0, want some under sustained writes")
	}

	// Quiet: the idle truncate empties the file.
	if got := waitWAL(t, path, 0); got != 0 {
		t.Errorf("WAL of an idle chat = %d bytes, want 0 (truncated)", got)
	}
}

// A checkpoint a reader keeps from completing is the checkpointer's
// business: every send still commits, and the WAL is truncated once the
// reader is gone.
func TestIncompleteCheckpointDoesNotFailSends(t *testing.T) {
	s, w, path := openCkptStore(t)
	release := holdSnapshot(t, path)
	sendAll(t, w, 3000) // fails the test on any send's error
	// Let the idle truncate try, and fail, against the snapshot.
	deadline := time.Now().Add(20 * time.Second)
	for s.CheckpointStats().Partial+s.CheckpointStats().Failed == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st := s.CheckpointStats()
	if st.Partial+st.Failed == 0 {
		t.Fatalf("checkpoints kept from completing = 0, want some while a reader holds the WAL (stats %+v)", st)
	}
	sendAll(t, w, 100) // the writer is not held up by the failed attempts
	release()
	if got := waitWAL(t, path, 0); got != 0 {
		t.Errorf("WAL once the reader let go and the chat is idle = %d bytes, want 0", got)
	}
	if n, err := s.Count(context.Background()); err != nil || n != 3100 {
		t.Errorf("Count = %d, %v; want 3100", n, err)
	}
}

// Close leaves no WAL behind: the last connection's checkpoint copies it
// into the database file, as before the checkpointer.
func TestCloseCheckpointsTheWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(context.Background(), path, db.Options{CheckpointIdle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	insert(t, s, "one", "two", "three")
	if walSize(t, path) == 0 {
		t.Fatal("WAL empty before Close, want the messages in it")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := walSize(t, path); got != 0 {
		t.Errorf("WAL after Close = %d bytes, want none", got)
	}
	s, err = db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Count(context.Background()); err != nil || n != 3 {
		t.Errorf("Count after reopening = %d, %v; want 3", n, err)
	}
}
