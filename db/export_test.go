package db_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nochat/db"
)

// TestExportIsOneSnapshot holds an export mid-way (its reader stops
// reading), stores messages and a change meanwhile, and finds the export
// as of its start: the writer went on (WAL), the file has none of them,
// and its counter is the last exported message's id.
func TestExportIsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Enough that the export's 64 KiB buffer fills, and it waits on its
	// reader, before the messages are all written.
	texts := make([]string, 3000)
	for i := range texts {
		texts[i] = fmt.Sprintf("message %d before the export, long enough to fill a buffer soon", i)
	}
	before := insert(t, s, texts...)
	last := before[len(before)-1].ID

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := db.ExportFile(ctx, path, pw, time.Now())
		pw.CloseWithError(err)
		done <- err
	}()
	r := bufio.NewReader(pr)
	header, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	// The export waits on its reader now; the writer does not wait on it.
	insert(t, s, "during the export")
	// The admin dashboard's deletion: an event, and a message gone.
	if st, err := s.Insert(ctx, []db.Draft{{Change: db.Delete, Target: before[0].ID, Room: db.DefaultRoom, Moderator: true}}); err != nil || st[0].Refused != nil {
		t.Fatalf("delete during the export: %v %v", err, st)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(header, `{"nochat_export":1,`) {
		t.Fatalf("header = %q", header)
	}
	var messages int
	var seq int64 = -1
	for _, line := range strings.Split(strings.TrimSpace(string(rest)), "\n") {
		var l struct {
			Type string `json:"type"`
			Row  struct {
				ID      int64  `json:"id"`
				Message string `json:"message"`
			} `json:"row"`
			Name string `json:"name"`
			Seq  int64  `json:"seq"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%v: %.100s", err, line)
		}
		switch {
		case l.Type == "message":
			messages++
			if strings.Contains(l.Row.Message, "during the export") {
				t.Errorf("the export has a message stored after it began: %+v", l.Row)
			}
		case l.Type == "event":
			t.Errorf("the export has a change stored after it began: %.100s", line)
		case l.Type == "sequence" && l.Name == "messages":
			seq = l.Seq
		}
	}
	if messages != len(texts) || seq != last {
		t.Errorf("export has %d messages and counter %d; want %d and %d, as when it began", messages, seq, len(texts), last)
	}
}
