package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nochat/db"
)

// The tests here run a second process beside a Store, as an admin's
// sqlite3 shell, `nochat backup` or `nochat cluster status` would
// (db.OtherProcess).

// TestHelperProcess is the other process: it does nothing unless
// otherProcess started it.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("NOCHAT_HELPER_DB")
	switch os.Getenv("NOCHAT_HELPER") {
	case "":
		return
	case "lock":
		// Who holds a lock on the -shm's DMS byte, which SQLite's unix
		// VFS keeps read-locked while a process has the database open
		// (UNIX_SHM_DMS, offset 128)? A process that finds it free
		// takes itself for the only one, and truncates the WAL index.
		f, err := os.OpenFile(path+"-shm", os.O_RDWR, 0)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 128, Len: 1}
		if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("type=%d pid=%d\n", lk.Type, lk.Pid)
		os.Exit(0)
	case "read":
		// Open the database, read it and close it, again and again, for
		// a while: a reader in another process.
		n := 0
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); n++ {
			d, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
			if err == nil {
				var count int
				err = d.QueryRow("SELECT count(*) FROM messages").Scan(&count)
				d.Close()
			}
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
		}
		fmt.Printf("read %d times\n", n)
		os.Exit(0)
	}
}

// TestStoreKeepsItsLocksOnTheWALIndex: once the Store has committed (and
// its checkpointer has looked at the WAL index, as it does after every
// commit), another process still finds the Store's lock on the index.
// The checkpointer used to open and close the -shm file to read its
// header, which dropped every lock SQLite held on it.
func TestStoreKeepsItsLocksOnTheWALIndex(t *testing.T) {
	_, w, path := openCkptStore(t)
	sendAll(t, w, 300) // crosses the checkpoint threshold: the checkpointer reads the index
	time.Sleep(100 * time.Millisecond)
	out := db.OtherProcess(t, "lock", path)
	if want := db.LockedByUs(); strings.TrimSpace(out) != want {
		t.Fatalf("another process sees the WAL index's DMS lock as %q, want %q (a read lock, held by this process)", strings.TrimSpace(out), want)
	}
}

// TestAnotherProcessReadingDoesNotHarmTheWriter: a process that opens the
// database again and again while the Store writes (an admin's shell, a
// status command) leaves every send committed and every message there.
// Before the Store kept its locks, such a reader truncated the WAL index
// under the writer: commits failed with "disk I/O error (8714)"
// (SQLITE_IOERR_IN_PAGE) and a replicated node lost applied messages.
func TestAnotherProcessReadingDoesNotHarmTheWriter(t *testing.T) {
	s, w, path := openCkptStore(t)
	const n = 3000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		ctx := context.Background()
		for i := 0; i < n; i += 100 {
			done := make(chan error, 100)
			for j := range 100 {
				if err := w.Append(ctx, draftN(i+j), done); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
			for range 100 {
				if err := <-done; err != nil {
					t.Errorf("commit: %v", err)
					return
				}
			}
			time.Sleep(10 * time.Millisecond) // spread over the reader's run
		}
	}()
	defer func() { <-sent }() // also when the other process fails the test
	out := db.OtherProcess(t, "read", path)
	<-sent
	t.Logf("the other process: %s", strings.TrimSpace(out))

	got, err := s.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Errorf("%d messages stored, %d sent", got, n)
	}
	d, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var ok string
	if err := d.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check: %q, %v", ok, err)
	}
	rows, err := d.Query("SELECT message FROM messages ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			t.Fatal(err)
		}
		if want := draftN(i).Message; text != want {
			t.Fatalf("message %d is %q, want %q", i+1, text, want)
		}
		i++
	}
	if i != n {
		t.Errorf("read back %d messages, want %d", i, n)
	}
}

func draftN(i int) db.Draft {
	return db.Draft{User: "ann", Message: "message " + strconv.Itoa(i) + ", long enough to fill a page or two of the WAL now and then"}
}
