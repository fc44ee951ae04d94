package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"nochat/db"
	"nochat/db/dbtest"
)

// holeyLog is a Stream whose first reader skips entries, as a reader
// served by a node whose copy of the stream is still being rebuilt did in
// the cluster's test; a reader started again sees them all. (The real
// stream, NATS JetStream, is tested with three nodes in package cluster
// and with three processes in package main; this one makes the skip
// happen every time.)
type holeyLog struct {
	mu      sync.Mutex
	entries []db.StreamEntry
	follows int
	// blank: the first reader hands out entries 3 to 5 empty, their
	// places without their contents, instead of skipping them.
	blank bool
}

func (l *holeyLog) Publish(context.Context, []db.StreamEntry) []error {
	panic("the test only applies")
}

func (l *holeyLog) Last(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.entries)), nil
}

func (l *holeyLog) Entries(ctx context.Context, after int64) (<-chan db.StreamEntry, error) {
	l.mu.Lock()
	l.follows++
	skip := l.follows == 1
	l.mu.Unlock()
	out := make(chan db.StreamEntry, len(l.entries))
	for _, e := range l.entries {
		if e.Seq <= after {
			continue
		}
		if skip && e.Seq >= 3 && e.Seq <= 5 {
			if !l.blank {
				continue
			}
			e.Data = nil
		}
		out <- e
	}
	// Open, as a live stream is, until the reader stops.
	go func() { <-ctx.Done(); close(out) }()
	return out, nil
}

func TestAReaderThatSkipsEntriesIsFollowedAgain(t *testing.T) {
	t.Run("skipped", func(t *testing.T) { followedAgain(t, &holeyLog{}) })
	// The kill test once ended with a replaced node 256 messages short,
	// its last id the same as the others': applied empty, the entries
	// were stored as nothing.
	t.Run("empty", func(t *testing.T) { followedAgain(t, &holeyLog{blank: true}) })
}

func followedAgain(t *testing.T, l *holeyLog) {
	ctx := context.Background()
	s, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 8 {
		data, _ := json.Marshal(db.Draft{User: "ann", Message: fmt.Sprint("entry ", i+1), At: time.Now().UnixMilli()})
		l.entries = append(l.entries, db.StreamEntry{Seq: int64(i + 1), Key: fmt.Sprint("k", i+1), Data: data})
	}
	var mu sync.Mutex
	var failures []error
	w, err := db.NewReplicatedWriter(s, l, 0, func(c db.Commit[int]) {
		if c.Err != nil {
			mu.Lock()
			failures = append(failures, c.Err)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for deadline := time.Now().Add(10 * time.Second); w.Applied() < 8; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("applied up to %d of 8", w.Applied())
		}
	}
	got, err := s.LogAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("%d entries stored, want all 8", len(got))
	}
	for i, e := range got {
		if e.ID() != int64(i+1) || e.Message.Message != fmt.Sprint("entry ", i+1) {
			t.Errorf("entry %d: %d %q", i+1, e.ID(), e.Message.Message)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) != 1 {
		t.Errorf("the hole was reported %d times, want once: %v", len(failures), failures)
	}
}

// electingLog is the in-memory log of package dbtest, under the name
// these tests knew it by.
type electingLog = dbtest.Log

func newElectingLog(refuse int) *electingLog { return dbtest.NewLog(refuse) }

// A send while the cluster elects a leader (every publication refused as
// unavailable for a moment) is published again until the election is
// over: its sender gets an ack, and the message is stored once. (It was
// refused at once, and a tutorial client, which does not send again, had
// lost it.)
func TestASendDuringAnElectionIsPublishedAgain(t *testing.T) {
	ctx := context.Background()
	s, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := newElectingLog(3) // refused 3 times: 0.1 + 0.2 + 0.4 s
	w, err := db.NewReplicatedWriter(s, l, 0, func(c db.Commit[chan error]) {
		for _, it := range c.Items {
			if it.Tag != nil {
				it.Tag <- c.Err
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	done := make(chan error, 1)
	if err := w.Append(ctx, db.Draft{User: "ann", Message: "during the election"}, done); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the send: %v, want it stored once the election is over", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the send was never answered")
	}
	if published := l.Published(); published != 4 {
		t.Errorf("published %d times, want 4 (3 refused, then stored)", published)
	}
	got, err := s.LogAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Message.Message != "during the election" {
		t.Fatalf("stored %d entries (%+v), want the message once", len(got), got)
	}
}

// lostAnswerLog stores what is published, but its answer is lost: the
// publisher hears an error that is not ErrUnavailable.
type lostAnswerLog struct{ *electingLog }

func (l lostAnswerLog) Publish(ctx context.Context, entries []db.StreamEntry) []error {
	l.electingLog.Publish(ctx, entries)
	errs := make([]error, len(entries))
	for i := range errs {
		errs[i] = errors.New("the answer was lost")
	}
	return errs
}

// A message this node published is its own when applied, even if the
// publish lost its answer and the sender's tag with it: the node that
// sent it, and only that one, calls its bots' webhooks.
func TestAMessageWhosePublishLostItsAnswerIsStillThisNodes(t *testing.T) {
	ctx := context.Background()
	l := newElectingLog(0)
	local := make(map[string]chan db.Item[int])
	for _, name := range []string{"a", "b"} {
		s, err := db.Open(ctx, filepath.Join(t.TempDir(), name+".db"), db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		items := make(chan db.Item[int], 16)
		var stream db.Stream = l
		if name == "a" {
			stream = lostAnswerLog{l}
		}
		w, err := db.NewReplicatedWriter(s, stream, 0, func(c db.Commit[int]) {
			if c.Err == nil {
				for _, it := range c.Items {
					items <- it
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		local[name] = items
		if name == "a" {
			if err := w.Append(ctx, db.Draft{User: "ann", Message: "did it land?", CID: "c1"}, 7); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range map[string]bool{"a": true, "b": false} {
		select {
		case it := <-local[name]:
			if it.Message.Message != "did it land?" || it.Local != want || it.Tag != 0 {
				t.Errorf("%s applied %q, local %v, tag %d; want local %v, no tag", name, it.Message.Message, it.Local, it.Tag, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not apply the message", name)
		}
	}
}
