package db_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"nochat/db"
)

// A database from before 0005 had one row per kind and detail, up to a
// thousand of them a client could fill. The migration folds each kind's
// rows into one, keeping the counts and the latest detail.
func TestErrorRowsOfEarlierVersionsAreFoldedByKind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	raw, err := sqlOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"0001_messages.sql", "0002_admin.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if _, err := tx.Exec(`INSERT INTO errors (kind, detail, subject, count, first_seen, last_seen) VALUES (?, ?, ?, 2, ?, ?)`,
			[]string{"bad origin", "bad input"}[i%2], fmt.Sprintf("detail %d", i), fmt.Sprintf("subject %d", i), 1000+i, 2000+i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 2"); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.RecentErrors(context.Background(), 2000)
	if err != nil {
		t.Fatal(err)
	}
	want := []db.ErrorEntry{
		{Kind: "bad input", Place: "before the upgrade", Detail: "detail 999", Subject: "subject 999", Count: 1000, FirstSeen: 1001, LastSeen: 2999},
		{Kind: "bad origin", Place: "before the upgrade", Detail: "detail 998", Subject: "subject 998", Count: 1000, FirstSeen: 1000, LastSeen: 2998},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the migration:\n got %+v\nwant %+v", got, want)
	}
}

// One entry per kind and place: saving it again updates its sample.
func TestSaveErrorsKeepsOneRowPerKindAndPlace(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	for i := range 3 {
		e := db.ErrorEntry{Kind: "k", Place: "p", Detail: fmt.Sprint("d", i), Subject: "s", Count: int64(i + 1), FirstSeen: 1, LastSeen: int64(10 + i)}
		if err := s.SaveErrors(ctx, []db.ErrorEntry{e}, 10); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RecentErrors(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Detail != "d2" || got[0].Count != 3 {
		t.Fatalf("rows %+v, want one with the latest detail and count", got)
	}
}

// A panic while storing a batch used to end the process: it is now the
// batch's error, and the writer takes the next batch. A nil store is what
// panics here, inside Insert, as a fault would.
func TestWriterSurvivesAPanicWhileStoring(t *testing.T) {
	got := make(chan db.Commit[int], 2)
	w := db.NewWriter[int](nil, 8, func(c db.Commit[int]) { got <- c })
	defer w.Close()
	for i := range 2 {
		if err := w.Append(context.Background(), db.Draft{User: "u", Message: "m"}, i); err != nil {
			t.Fatal(err)
		}
		c := <-got
		if !errors.Is(c.Err, db.ErrPanic) || len(c.Items) != 1 || c.Items[0].Tag != i {
			t.Fatalf("commit %d: %+v, want the draft back with ErrPanic", i, c)
		}
	}
}
