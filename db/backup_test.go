package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nochat/db"
)

// checkBackup opens a backup as NoChat would after a restore and returns how
// many messages it holds, checking it is whole: integrity_check passes and
// its ids run 1..n without a hole (nothing is deleted in these tests).
func checkBackup(t *testing.T, path string) int {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var check string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of %s: %q, %v", path, check, err)
	}
	var n int
	var maxID sql.NullInt64
	if err := raw.QueryRow("SELECT count(*), max(id) FROM messages").Scan(&n, &maxID); err != nil {
		t.Fatal(err)
	}
	if int64(n) != maxID.Int64 {
		t.Fatalf("backup holds %d messages up to id %d: not one commit's state", n, maxID.Int64)
	}
	raw.Close()

	// Restoring is copying the file into place: NoChat opens it as it is.
	restored := filepath.Join(t.TempDir(), "restored.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(restored, b, 0o600)
	s, err := db.Open(context.Background(), restored, db.Options{})
	if err != nil {
		t.Fatalf("open the restored backup: %v", err)
	}
	defer s.Close()
	latest, err := s.Latest(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 && (len(latest) != 1 || latest[0].ID != maxID.Int64) {
		t.Fatalf("restored backup's newest message = %+v, want id %d", latest, maxID.Int64)
	}
	return n
}

func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	insertN(t, s, "before", 300)

	var live atomic.Int64
	w := db.NewWriter(s, 0, func(c db.Commit[int]) {
		if c.Err != nil {
			t.Error(c.Err)
		}
		live.Add(int64(len(c.Items)))
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := w.Append(ctx, db.Draft{User: "live", Message: fmt.Sprint("during the backup ", i)}, i); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
	// The writer is well under way.
	for deadline := time.Now().Add(10 * time.Second); live.Load() < 50; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(stop) // not waited for: a stuck writer would block it
			t.Fatalf("%d messages committed after 10 s, want 50 before the first backup", live.Load())
		}
	}

	dir := t.TempDir()
	prev := 0
	for i := range 3 {
		dest := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
		if err := db.BackupFile(ctx, s.Path(), dest); err != nil {
			t.Fatal(err)
		}
		n := checkBackup(t, dest)
		if n < 350 || n < prev {
			t.Fatalf("backup %d holds %d messages, want at least %d", i, n, max(350, prev))
		}
		prev = n
	}
	close(stop)
	wg.Wait()
	w.Close()
	t.Logf("the last backup holds %d messages", prev)
}

func TestBackupRefusesToOverwrite(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	insert(t, s, "hello")
	dest := filepath.Join(t.TempDir(), "backup.db")
	os.WriteFile(dest, []byte("precious"), 0o600)
	if err := db.BackupFile(ctx, s.Path(), dest); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Backup over an existing file: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "precious" {
		t.Fatalf("the existing file now holds %q", b)
	}
}

func TestBackupFileOfMissingDatabaseCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	src, dest := filepath.Join(dir, "typo.db"), filepath.Join(dir, "backup.db")
	if err := db.BackupFile(context.Background(), src, dest); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("BackupFile of a missing database: %v, want fs.ErrNotExist", err)
	}
	for _, p := range []string{src, dest} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s exists after a failed backup", p)
		}
	}
}

func TestBackupFileOfStoppedDatabase(t *testing.T) {
	// No server running: the database was closed, its WAL checkpointed away.
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	insert(t, s, "one", "two")
	s.Close()
	dest := filepath.Join(t.TempDir(), "backup.db")
	if err := db.BackupFile(context.Background(), path, dest); err != nil {
		t.Fatal(err)
	}
	if got, want := checkBackup(t, dest), 2; got != want {
		t.Fatalf("backup holds %d messages, want %d", got, want)
	}
}
