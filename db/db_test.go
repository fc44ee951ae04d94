package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"nochat/db"
)

// newTestStore opens a real database file in a temporary directory.
func newTestStore(t testing.TB) *db.Store {
	t.Helper()
	return newTestStoreWith(t, db.Options{})
}

// newTestStoreWith is newTestStore with options.
func newTestStoreWith(t testing.TB, o db.Options) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func insert(t testing.TB, s *db.Store, texts ...string) []db.Message {
	t.Helper()
	drafts := make([]db.Draft, len(texts))
	for i, text := range texts {
		drafts[i] = db.Draft{User: "ann", Message: text}
	}
	stored, err := s.Insert(context.Background(), drafts)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]db.Message, len(stored))
	for i, st := range stored {
		msgs[i] = st.Message
	}
	return msgs
}

func texts(msgs []db.Message) string {
	s := ""
	for i, m := range msgs {
		if i > 0 {
			s += ","
		}
		s += m.Message
	}
	return s
}

func TestOpenCreatesSchemaInWAL(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v, db.LatestSchemaVersion(); got != want || want < 1 {
		t.Fatalf("schema version = %d, want %d (>= 1)", got, want)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsMessagesAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(ctx, path, db.Options{Durability: db.Normal})
	if err != nil {
		t.Fatal(err)
	}
	insert(t, s, "one", "two")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := texts(msgs), "one,two"; got != want {
		t.Fatalf("after reopen: %q, want %q", got, want)
	}
}

func TestOrderingAndPaging(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	var all []string
	for i := 1; i <= 10; i++ {
		all = append(all, fmt.Sprint(i))
	}
	msgs := insert(t, s, all...)
	for i := 1; i < len(msgs); i++ {
		if msgs[i].ID <= msgs[i-1].ID {
			t.Fatalf("ids not increasing: %d after %d", msgs[i].ID, msgs[i-1].ID)
		}
	}
	tests := []struct {
		name string
		read func() ([]db.Message, error)
		want string
	}{
		{"latest 3 oldest first", func() ([]db.Message, error) { return s.Latest(ctx, 3) }, "8,9,10"},
		{"latest more than stored", func() ([]db.Message, error) { return s.Latest(ctx, 50) }, "1,2,3,4,5,6,7,8,9,10"},
		{"before the 8th, 3", func() ([]db.Message, error) { return s.Before(ctx, msgs[7].ID, 3) }, "5,6,7"},
		{"before the 2nd", func() ([]db.Message, error) { return s.Before(ctx, msgs[1].ID, 50) }, "1"},
		{"before the 1st", func() ([]db.Message, error) { return s.Before(ctx, msgs[0].ID, 50) }, ""},
		{"after the 7th", func() ([]db.Message, error) { return s.After(ctx, msgs[6].ID, 50) }, "8,9,10"},
		{"after 0, 2", func() ([]db.Message, error) { return s.After(ctx, 0, 2) }, "1,2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read()
			if err != nil {
				t.Fatal(err)
			}
			if texts(got) != tt.want {
				t.Fatalf("got %q, want %q", texts(got), tt.want)
			}
		})
	}
	id, err := s.LatestID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := id, msgs[9].ID; got != want {
		t.Fatalf("LatestID = %d, want %d", got, want)
	}
}

func TestTextIsStoredVerbatim(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	tricky := []string{`Robert'); DROP TABLE messages;--`, `<script>alert(1)</script>`, "émoji 🎉 ünïcode", `"quoted" \ back`}
	insert(t, s, tricky...)
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if m.Message != tricky[i] {
			t.Errorf("message %d = %q, want %q", i, m.Message, tricky[i])
		}
	}
}

func TestDuplicateCIDStoredOnce(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	stored, err := s.Insert(ctx, []db.Draft{
		{User: "ann", Message: "hi", CID: "c1"},
		{User: "bob", Message: "yo"},
		{User: "ann", Message: "hi", CID: "c1"}, // re-sent in the same batch
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Insert(ctx, []db.Draft{{User: "ann", Message: "hi", CID: "c1"}}) // and later
	if err != nil {
		t.Fatal(err)
	}
	if stored[0].Duplicate || !stored[2].Duplicate || !again[0].Duplicate {
		t.Fatalf("duplicate flags = %v %v %v, want false true true", stored[0].Duplicate, stored[2].Duplicate, again[0].Duplicate)
	}
	if stored[2].Message.ID != stored[0].Message.ID || again[0].Message.ID != stored[0].Message.ID {
		t.Fatalf("re-sends got ids %d and %d, want the original %d", stored[2].Message.ID, again[0].Message.ID, stored[0].Message.ID)
	}
	msgs, _ := s.Latest(ctx, 10)
	if got, want := texts(msgs), "hi,yo"; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
	// Re-sends leave no hole in the ids.
	next := insert(t, s, "next")
	if got, want := next[0].ID, stored[1].Message.ID+1; got != want {
		t.Fatalf("next id = %d, want %d", got, want)
	}
}

func TestParseDurability(t *testing.T) {
	for _, in := range []string{"full", "FULL", "normal"} {
		if _, err := db.ParseDurability(in); err != nil {
			t.Errorf("ParseDurability(%q): %v", in, err)
		}
	}
	for _, in := range []string{"", "off", "bogus"} {
		if _, err := db.ParseDurability(in); err == nil {
			t.Errorf("ParseDurability(%q) accepted", in)
		}
	}
}

func TestWriterCommitsInOrderAndGroups(t *testing.T) {
	s := newTestStore(t)
	var (
		mu      sync.Mutex
		commits []db.Commit[int]
	)
	w := db.NewWriter(s, 64, func(c db.Commit[int]) {
		mu.Lock()
		commits = append(commits, c)
		mu.Unlock()
	})
	const senders, each = 16, 25
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if err := w.Append(context.Background(), db.Draft{User: "u", Message: fmt.Sprint(g, "-", i)}, g*each+i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	w.Close()
	if err := w.Append(context.Background(), db.Draft{User: "u", Message: "late"}, -1); err != db.ErrClosed {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}

	var lastID int64
	seen := map[int]bool{}
	for _, c := range commits {
		if c.Err != nil {
			t.Fatal(c.Err)
		}
		for _, it := range c.Items {
			if it.Message.ID <= lastID {
				t.Fatalf("id %d handed on after %d", it.Message.ID, lastID)
			}
			lastID = it.Message.ID
			seen[it.Tag] = true
		}
	}
	if len(seen) != senders*each {
		t.Fatalf("%d messages committed, want %d", len(seen), senders*each)
	}
	if len(commits) >= senders*each {
		t.Errorf("%d commits for %d messages from %d concurrent senders: no grouping", len(commits), senders*each, senders)
	}
	msgs, _ := s.Latest(context.Background(), 500)
	if len(msgs) != senders*each {
		t.Fatalf("%d messages stored, want %d", len(msgs), senders*each)
	}
}

func TestWriterReportsFailedCommit(t *testing.T) {
	s := newTestStore(t)
	got := make(chan db.Commit[string], 1)
	w := db.NewWriter(s, 8, func(c db.Commit[string]) { got <- c })
	defer w.Close()
	s.Close() // every later write fails
	if err := w.Append(context.Background(), db.Draft{User: "u", Message: "lost"}, "tag"); err != nil {
		t.Fatal(err)
	}
	c := <-got
	if c.Err == nil {
		t.Fatal("commit on a closed database reported no error")
	}
	if len(c.Items) != 1 || c.Items[0].Tag != "tag" || c.Items[0].Message.ID != 0 {
		t.Fatalf("failed commit items = %+v, want the one draft with tag and no id", c.Items)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if s, err := db.Open(ctx, path, db.Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database from a newer NoChat")
	}
}

func sqlOpen(path string) (*sql.DB, error) { return sql.Open("sqlite", "file:"+path) }

// schemaBefore is a new database file with every migration before the one
// named (its file name, as "0009_rooms.sql") applied, opened as plain
// SQLite at that version: what an earlier NoChat left, for a test to fill
// as it would have and then open with the store, which migrates it.
func schemaBefore(t *testing.T, migration string) (raw *sql.DB, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "nochat.db")
	raw, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	names, err := filepath.Glob("migrations/*.sql")
	version := slices.IndexFunc(names, func(n string) bool { return filepath.Base(n) == migration })
	if err != nil || version < 0 {
		t.Fatalf("no migration %s in %v (%v)", migration, names, err)
	}
	for _, name := range names[:version] {
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		t.Fatal(err)
	}
	return raw, path
}

func TestCountFollowsEveryWrite(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	counted := func() int64 {
		t.Helper()
		n, err := s.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert(t, s, "a", "b")
	if got := counted(); got != 2 {
		t.Fatalf("Count = %d after 2 inserts", got)
	}
	// Counted from here on, not read again.
	msgs := insert(t, s, "c", "d", "e")
	s.Insert(ctx, []db.Draft{{User: "u", Message: "x", CID: "k"}, {User: "u", Message: "x", CID: "k"}}) // one stored
	if err := s.Delete(ctx, msgs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Prune(ctx, time.Time{}, 3, 1); err != nil {
		t.Fatal(err)
	}
	raw, err := sqlOpen(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var want int64
	raw.QueryRow("SELECT count(*) FROM messages").Scan(&want)
	if got := counted(); got != want || want != 3 {
		t.Fatalf("Count = %d, the table holds %d (want 3)", got, want)
	}
}
