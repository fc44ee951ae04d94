package db_test

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"nochat/db"
)

var updateExample = flag.Bool("update-example", false, "rebuild ../nochat.db.example from the migrations")

const examplePath = "../nochat.db.example"

// demo is the conversation in nochat.db.example.
// printers is the example's second room, 3d-printers.
var printers = []struct{ user, message string }{
	{"cleo", "Anyone have PETG left? The Prusa ran dry mid-print."},
	{"bob", "Half a spool of orange in the cupboard, help yourself"},
	{"cleo", "Orange benchy it is 🚤"},
}

var demo = []struct{ user, message string }{
	{"ann", "Hi all! NoChat is up on the Pi in the hallway 🎉"},
	{"bob", "Nice. One binary and one file, that's it?"},
	{"ann", "That's it: copy the binary, run it, open http://raspberrypi.local:8080"},
	{"carol", "Messages come through instantly here, and they're still there after a reload."},
	{"bob", "And if my Wi-Fi drops, I don't miss anything — it catches up when I'm back."},
	{"carol", "Try <b>this</b>: HTML shows up as plain text, as it should."},
	{"ann", "Old tutorial clients work too: they speak echo-protocol on the same port."},
}

// TestExampleDatabase checks that the committed example opens, is at the
// latest schema and holds the demo conversation. With -update-example it
// first rebuilds it: go test ./db -run TestExampleDatabase -update-example
func TestExampleDatabase(t *testing.T) {
	ctx := context.Background()
	if *updateExample {
		buildExample(t)
	}
	// Work on a copy: opening a database may write to it. Its schema is
	// read before opening, which would bring it up to date.
	path := filepath.Join(t.TempDir(), "nochat.db")
	copyFile(t, examplePath, path)
	raw, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	err = raw.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v != db.LatestSchemaVersion() {
		t.Fatalf("nochat.db.example is at schema %d, latest is %d: rebuild it with go test ./db -run TestExampleDatabase -update-example", v, db.LatestSchemaVersion())
	}
	msgs, err := s.Latest(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(demo) {
		t.Fatalf("example holds %d messages, want %d", len(msgs), len(demo))
	}
	for i, m := range msgs {
		if m.User != demo[i].user || m.Message != demo[i].message {
			t.Errorf("message %d = %s: %q, want %s: %q", i, m.User, m.Message, demo[i].user, demo[i].message)
		}
	}
	room, err := s.LatestIn(ctx, 2, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(room) != len(printers) || room[0].Message != printers[0].message {
		t.Fatalf("the example's 3d-printers room holds %d messages, want %d", len(room), len(printers))
	}
	// Its messages are in the search index, and the index is whole: an
	// edit, a deletion or retention would fail on a message missing there.
	if found, err := s.Search(ctx, db.SearchQuery{Text: "hallway", Rooms: []int64{db.DefaultRoom, 2}}); err != nil || len(found) != 1 {
		t.Errorf("search for hallway in the example: %d matches, %v; want 1", len(found), err)
	}
	if err := s.SearchIndexCheck(ctx); err != nil {
		t.Error(err)
	}
}

func buildExample(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	tmp := filepath.Join(t.TempDir(), "example.db")
	s, err := db.Open(ctx, tmp, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sqlOpen(tmp)
	if err != nil {
		t.Fatal(err)
	}
	// Fixed times, a minute or so apart, so the file is the same every build.
	start := time.Date(2026, 11, 1, 18, 0, 0, 0, time.UTC)
	for i, d := range demo {
		ts := start.Add(time.Duration(i) * 73 * time.Second).UnixMilli()
		if _, err := raw.ExecContext(ctx, "INSERT INTO messages (user, message, timestamp) VALUES (?, ?, ?)", d.user, d.message, ts); err != nil {
			t.Fatal(err)
		}
	}
	// A second open room, so the example shows the sidebar at work; the
	// lobby's creation time fixed, as the rest.
	if _, err := raw.ExecContext(ctx, "UPDATE rooms SET created = ? WHERE id = 1", start.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO rooms (id, slug, name, topic, kind, guests, created) VALUES
		(2, '3d-printers', '3D printers', 'Prusa, Bambu, resin, and who has the filament', 'open', 1, ?)`, start.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	for i, d := range printers {
		ts := start.Add(time.Duration(len(demo)+i) * 61 * time.Second).UnixMilli()
		if _, err := raw.ExecContext(ctx, "INSERT INTO messages (user, message, timestamp, room_id) VALUES (?, ?, ?, 2)", d.user, d.message, ts); err != nil {
			t.Fatal(err)
		}
	}
	// New messages reach the search index through Store.Insert, not a
	// trigger (migration 0024): these raw ones are indexed here. Then fold
	// the WAL into the file and compact it: the example is one file.
	for _, q := range []string{"INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')", "PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM"} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, tmp, examplePath)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
