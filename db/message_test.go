package db_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"nochat/db"
)

// A batch is written a chunk of rows per statement; these tests check what
// a reader sees of batches that span chunks, mix CIDs, repeat them or fail.

func TestInsertBatchLargerThanAChunk(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	before := insert(t, s, "before")[0]

	const n = 300 // more than the largest statement takes
	drafts := make([]db.Draft, n)
	for i := range drafts {
		drafts[i] = db.Draft{User: fmt.Sprint("u", i%7), Message: fmt.Sprint("m", i)}
	}
	stored, err := s.Insert(ctx, drafts)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range stored {
		if got, want := st.Message.ID, before.ID+1+int64(i); got != want {
			t.Fatalf("draft %d got id %d, want %d (contiguous, in order)", i, got, want)
		}
		if st.Duplicate {
			t.Fatalf("draft %d marked duplicate", i)
		}
		got, err := s.Get(ctx, st.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, st.Message) || got.User != drafts[i].User || got.Message != drafts[i].Message {
			t.Fatalf("message %d reads back as %+v, Insert said %+v for draft %+v", st.Message.ID, got, st.Message, drafts[i])
		}
	}
	msgs, err := s.Latest(ctx, n+10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), n+1; got != want {
		t.Fatalf("%d messages stored, want %d", got, want)
	}
	for i, m := range msgs[1:] {
		if m.Message != drafts[i].Message {
			t.Fatalf("message %d in the room is %q, want %q", i, m.Message, drafts[i].Message)
		}
	}
	if count, err := s.Count(ctx); err != nil || count != n+1 {
		t.Fatalf("Count = %d, %v; want %d", count, err, n+1)
	}
}

func TestInsertMixedCIDs(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	earlier, err := s.Insert(ctx, []db.Draft{
		{User: "ann", Message: "a", CID: "ca"},
		{User: "bob", Message: "b", CID: "cb"},
	})
	if err != nil {
		t.Fatal(err)
	}

	stored, err := s.Insert(ctx, []db.Draft{
		{User: "ann", Message: "a", CID: "ca"}, // stored before
		{User: "cy", Message: "c"},
		{User: "dee", Message: "d", CID: "cd"},
		{User: "bob", Message: "b", CID: "cb"}, // stored before
		{User: "eve", Message: "e"},
		{User: "fay", Message: "f", CID: "cf"},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantDup := map[int]db.Message{0: earlier[0].Message, 3: earlier[1].Message}
	nextID := earlier[1].Message.ID + 1
	for i, st := range stored {
		if m, ok := wantDup[i]; ok {
			if !st.Duplicate || !reflect.DeepEqual(st.Message, m) {
				t.Fatalf("draft %d = %+v, want a duplicate of %+v", i, st, m)
			}
			continue
		}
		if st.Duplicate {
			t.Fatalf("draft %d marked duplicate", i)
		}
		if got, want := st.Message.ID, nextID; got != want {
			t.Fatalf("draft %d got id %d, want %d", i, got, want)
		}
		nextID++
	}
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := texts(msgs), "a,b,c,d,e,f"; got != want {
		t.Fatalf("room holds %q, want %q", got, want)
	}
	if count, err := s.Count(ctx); err != nil || count != 6 {
		t.Fatalf("Count = %d, %v; want 6", count, err)
	}
}

func TestInsertSameCIDTwiceInABatch(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	old := insert(t, s, "old")[0]
	if _, err := s.Insert(ctx, []db.Draft{{User: "ann", Message: "kept", CID: "stored"}}); err != nil {
		t.Fatal(err)
	}

	// Fillers with CIDs of their own: the batch's CIDs are looked up in
	// several statements, and the one stored before is found by a later
	// one than the first, past all the fillers.
	drafts := []db.Draft{{User: "ann", Message: "first", CID: "twice"}}
	for i := range 200 {
		drafts = append(drafts, db.Draft{User: "bob", Message: fmt.Sprint("filler", i), CID: fmt.Sprint("filler", i)})
	}
	drafts = append(drafts,
		db.Draft{User: "ann", Message: "first", CID: "twice"}, // repeats drafts[0]
		db.Draft{User: "ann", Message: "kept", CID: "stored"}, // stored before
		db.Draft{User: "ann", Message: "kept", CID: "stored"}, // and again
		db.Draft{User: "ann", Message: "first", CID: "twice"}, // a third time
		db.Draft{User: "cy", Message: "last", CID: "another"}, // fresh
	)
	stored, err := s.Insert(ctx, drafts)
	if err != nil {
		t.Fatal(err)
	}
	first, last := stored[0], stored[len(stored)-1]
	if first.Duplicate || first.Message.ID != old.ID+2 {
		t.Fatalf("first send = %+v, want stored with id %d", first, old.ID+2)
	}
	for _, i := range []int{201, 204} {
		if st := stored[i]; !st.Duplicate || !reflect.DeepEqual(st.Message, first.Message) {
			t.Fatalf("repeat %d = %+v, want a duplicate of %+v", i, st, first.Message)
		}
	}
	for _, i := range []int{202, 203} {
		if st := stored[i]; !st.Duplicate || st.Message.Message != "kept" || st.Message.ID != old.ID+1 {
			t.Fatalf("re-send %d = %+v, want a duplicate of message %d", i, st, old.ID+1)
		}
	}
	// 1 + 200 + 1 rows stored, with no hole for the repeats.
	if last.Duplicate || last.Message.ID != old.ID+203 {
		t.Fatalf("last draft = %+v, want stored with id %d", last, old.ID+203)
	}
	msgs, err := s.After(ctx, old.ID, 500)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), 203; got != want {
		t.Fatalf("%d messages stored after the old one, want %d", got, want)
	}
	if msgs[1].Message != "first" || msgs[202].Message != "last" {
		t.Fatalf("room holds %q ... %q, want first ... last", msgs[1].Message, msgs[202].Message)
	}
}

func TestInsertFailedBatchStoresNothing(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	before := insert(t, s, "before")[0]

	// A trigger refuses one draft, late in a batch whose first chunks have
	// already been written: the whole batch must go.
	raw, err := sqlOpen(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.message = 'refused'
		BEGIN SELECT RAISE(ABORT, 'refused by test'); END`); err != nil {
		t.Fatal(err)
	}
	var drafts []db.Draft
	for i := range 300 {
		drafts = append(drafts, db.Draft{User: "ann", Message: fmt.Sprint("m", i), CID: fmt.Sprint("c", i)})
	}
	drafts[290].Message = "refused"
	if _, err := s.Insert(ctx, drafts); err == nil {
		t.Fatal("a batch with a refused draft was stored")
	}
	msgs, err := s.Latest(ctx, 500)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := texts(msgs), "before"; got != want {
		t.Fatalf("room holds %q after the failed batch, want %q", got, want)
	}
	if count, err := s.Count(ctx); err != nil || count != 1 {
		t.Fatalf("Count = %d, %v; want 1", count, err)
	}

	// Its CIDs were not kept, and its ids are not lost.
	drafts[290].Message = "m290"
	stored, err := s.Insert(ctx, drafts[:3])
	if err != nil {
		t.Fatal(err)
	}
	if stored[0].Duplicate || stored[0].Message.ID != before.ID+1 {
		t.Fatalf("resent draft = %+v, want stored with id %d", stored[0], before.ID+1)
	}

	// A closed store refuses a batch outright, and stores none of it.
	s.Close()
	if _, err := s.Insert(ctx, drafts[3:]); err == nil {
		t.Fatal("Insert on a closed store reported no error")
	}
	s, err = db.Open(ctx, s.Path(), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs, err = s.Latest(ctx, 500)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := texts(msgs), "before,m0,m1,m2"; got != want {
		t.Fatalf("room holds %q after reopening, want %q", got, want)
	}
}
