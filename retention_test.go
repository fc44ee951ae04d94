package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// fileState is a database file's and its WAL's size and modification time.
func fileState(t *testing.T, dbPath string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{dbPath, dbPath + "-wal"} {
		fi, err := os.Stat(name)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "%s: none; ", filepath.Base(name))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %d bytes, modified %s; ", filepath.Base(name), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
	}
	return b.String()
}

func TestRetentionRunnerRemovesAndCounts(t *testing.T) {
	ctx := t.Context()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	drafts := make([]db.Draft, 1200)
	for i := range drafts {
		drafts[i] = db.Draft{User: "ann", Message: fmt.Sprint("m", i)}
	}
	if _, err := store.Insert(ctx, drafts); err != nil {
		t.Fatal(err)
	}
	hub, err := chat.New(store, chat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close(context.Background())
	stop := startRetention(ctx, slog.New(slog.DiscardHandler), hub, hub, retention{messages: 100}, 20*time.Millisecond)
	defer stop()
	waitUntil(t, 10*time.Second, "retention to remove 1,100 messages", func() bool { return store.Pruned() == 1100 })
	left, err := store.Latest(ctx, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 100 || left[0].Message != "m1100" || left[99].Message != "m1199" {
		t.Fatalf("left %d messages, from %q: want the newest 100", len(left), left[0].Message)
	}

	// From now on the passes have nothing to do: they must not write.
	before := fileState(t, store.Path())
	time.Sleep(300 * time.Millisecond) // about fifteen passes
	if after := fileState(t, store.Path()); after != before {
		t.Fatalf("idle retention passes wrote to the database:\nbefore %s\nafter  %s", before, after)
	}
	if got := store.Pruned(); got != 1100 {
		t.Fatalf("Pruned() = %d after idle passes, want 1100", got)
	}
}

// startRetaining runs NoChat through its config, with retention passes
// every interval instead of every minute.
func startRetaining(t *testing.T, env map[string]string, interval time.Duration) *server {
	t.Helper()
	return startConfig(t, env, func(cfg *config) { cfg.retainEvery = interval })
}

func TestIdleServerWritesNothing(t *testing.T) {
	// An SD card wears with every write: an idle NoChat, retention on and a
	// client connected, leaves the database and its WAL alone, also while
	// retention passes run (here every 100 ms instead of every minute).
	dbPath := filepath.Join(t.TempDir(), "nochat.db")
	s := startRetaining(t, map[string]string{"NOCHAT_DB": dbPath, "NOCHAT_RETAIN_DAYS": "30", "NOCHAT_RETAIN_MESSAGES": "1000", "NOCHAT_LOG_LEVEL": "debug"}, 100*time.Millisecond)
	for i := range 5 {
		s.post(t, "ann", fmt.Sprint("before the quiet ", i))
	}
	d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}}
	conn, _, err := d.Dial(wsURL(s.url), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go io.Copy(io.Discard, conn.NetConn()) // an idle reader, answering nothing

	const pass = "retention pass: nothing to remove"
	passesBefore := strings.Count(s.logs.String(), pass)
	before := fileState(t, dbPath)
	time.Sleep(3 * time.Second)
	after := fileState(t, dbPath)
	passes := strings.Count(s.logs.String(), pass) - passesBefore
	if passes < 2 {
		t.Fatalf("%d retention passes in 3 s, want several: the test would not see one write", passes)
	}
	if after != before {
		t.Fatalf("an idle server wrote to its database during %d retention passes:\nbefore %s\nafter  %s", passes, before, after)
	}
	t.Logf("3 s idle, %d retention passes, unchanged: %s", passes, before)
}

func TestResumeAfterRetentionGetsOnlyWhatIsKept(t *testing.T) {
	// Fewer messages kept than the replay window holds: a page resuming
	// from before the pruned ones must not be handed them.
	s := startRetaining(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_RETAIN_MESSAGES": "3"}, 50*time.Millisecond)
	for i := range 10 {
		s.post(t, "ann", fmt.Sprint("m", i+1))
	}
	waitUntil(t, 10*time.Second, "retention to keep only 3 messages", func() bool { return len(s.latest(t)) == 3 })
	// A pass's deletions are stored just before its Prune has the replay
	// window forget them (chat's TestResumeAfterRetentionReplaysOnlyWhatIsKept
	// holds that order); from outside, wait for the window to follow.
	waitUntil(t, 10*time.Second, "a resume to start at the first message kept", func() bool {
		c := dialV1Query(t, s.url, "?after=1")
		defer c.conn.Close()
		return c.next().Data.Message == "m8"
	})
	c := dialV1Query(t, s.url, "?after=1")
	for _, want := range []string{"m8", "m9", "m10"} {
		c.expectMessage(want)
	}
	s.post(t, "bob", "live")
	c.expectMessage("live")
}

func TestBackupCommandWhileServerWrites(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "nochat.db")
	// No rate limit: with the default, almost every post would be refused
	// and the writes would be over before the first backup starts.
	env := map[string]string{"NOCHAT_DB": dbPath, "NOCHAT_MSG_RATE": "0"}
	s := start(t, env)
	s.post(t, "ann", "first")

	ctx, cancel := context.WithCancel(t.Context())
	posting := make(chan int, 1)
	go func() {
		n := 0
		for ; ctx.Err() == nil; n++ {
			resp, err := http.Post(s.url+"/discussion/"+url.PathEscape(fmt.Sprint("during the backup ", n)), "", nil)
			if err != nil {
				break
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("POST during the backup: %d, want %d", resp.StatusCode, http.StatusOK)
				break
			}
		}
		posting <- n
	}()
	defer func() { cancel(); <-posting }()

	backup := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := run(ctx, append([]string{"nochat", "backup"}, args...), func(k string) string { return env[k] }, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	dest := filepath.Join(dir, "backup.db")
	time.Sleep(100 * time.Millisecond) // let some writes go first
	out, err := backup(dest)
	if err != nil {
		t.Fatalf("nochat backup: %v\n%s", err, out)
	}
	t.Logf("nochat backup: %s", strings.TrimSpace(out))
	firstSize := checkBackupFile(t, dest)

	// An existing DEST is kept unless -force; with it, replaced (flags may
	// follow DEST).
	out, err = backup(dest)
	var usage usageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("backup over an existing file: %v, want an error that suggests -force", err)
	}
	time.Sleep(100 * time.Millisecond)
	if out, err = backup(dest, "-force"); err != nil {
		t.Fatalf("nochat backup -force: %v\n%s", err, out)
	}
	if got := checkBackupFile(t, dest); got < firstSize {
		t.Fatalf("the forced backup holds %d messages, fewer than the first (%d)", got, firstSize)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		for _, e := range entries {
			if strings.Contains(e.Name(), ".partial-") {
				t.Fatalf("left behind: %s", e.Name())
			}
		}
	}

	// Bad use: a usage error, exit status 2.
	if _, err := backup(); !errors.As(err, &usage) {
		t.Fatalf("backup without DEST: %v, want a usage error", err)
	}
	var latest []db.Message
	json.Unmarshal([]byte(s.get(t, "/discussion/latest/1")), &latest)
	t.Logf("%d messages stored while backing up", latest[0].ID)
}

// checkBackupFile opens a backup as a restored database and returns how
// many messages it holds.
func checkBackupFile(t *testing.T, path string) int {
	t.Helper()
	restored := filepath.Join(t.TempDir(), "restored.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(restored, b, 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(t.Context(), restored, db.Options{})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer store.Close()
	msgs, err := store.After(t.Context(), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 || msgs[0].Message != "first" || msgs[len(msgs)-1].ID != int64(len(msgs)) {
		t.Fatalf("backup holds %d messages, not the whole room up to one commit", len(msgs))
	}
	return len(msgs)
}

// A retention pass that panics used to end the process. Now it is an error
// entry and the next pass runs: the runner records it again, and stops when
// told. A nil store is what panics, inside Prune, as a fault would.
func TestRetentionRunnerSurvivesAPanic(t *testing.T) {
	ctx := t.Context()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hub, err := chat.New(store, chat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close(context.Background())
	stop := startRetention(ctx, slog.New(slog.DiscardHandler), panickingPruner{}, hub, retention{messages: 100}, 10*time.Millisecond)
	defer stop()
	waitUntil(t, 10*time.Second, "two retention passes to panic and be recorded", func() bool {
		for _, e := range hub.Snapshot(10).Errors {
			if e.Kind == chat.KindPanic && e.Place == "retention" && e.Count >= 2 {
				return true
			}
		}
		return false
	})
}

// panickingPruner stands in for a retention pass with a bug in it.
type panickingPruner struct{}

func (panickingPruner) Prune(context.Context, time.Time, int) (int64, error) {
	panic("a bug in the retention pass")
}
