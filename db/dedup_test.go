package db_test

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"nochat/db"
)

// A client id (cid) names one send of one sender within a window of time:
// these tests check its scope, the refusal of a reused one and the window.

func TestSameCIDFromTwoSendersIsTwoMessages(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	// The README's example cid, run by ann and then by bob; then by both in
	// one batch, with another cid.
	first, err := s.Insert(ctx, []db.Draft{{User: "ann", Message: "hi!", CID: "a1"}})
	if err != nil {
		t.Fatal(err)
	}
	later, err := s.Insert(ctx, []db.Draft{
		{User: "bob", Message: "hi!", CID: "a1"},
		{User: "cy", Message: "hey", CID: "b2"},
		{User: "dee", Message: "hey", CID: "b2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range append(first, later...) {
		if st.Duplicate || st.Reused || st.Message.ID == 0 {
			t.Fatalf("send %d = %+v, want stored", i, st)
		}
	}
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), 4; got != want {
		t.Fatalf("%d messages stored, want %d: %+v", got, want, msgs)
	}
}

func TestSameSenderRetryIsStoredOnce(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	first, err := s.Insert(ctx, []db.Draft{{User: "ann", Message: "hi!", CID: "a1"}})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := s.Insert(ctx, []db.Draft{{User: "ann", Message: "hi!", CID: "a1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !retry[0].Duplicate || !reflect.DeepEqual(retry[0].Message, first[0].Message) {
		t.Fatalf("retry = %+v, want a duplicate of %+v", retry[0], first[0].Message)
	}
	if n, err := s.Count(ctx); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1", n, err)
	}
}

func TestCIDReusedForAnotherTextIsRefused(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	first, err := s.Insert(ctx, []db.Draft{{User: "ann", Message: "hi!", CID: "a1"}})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.Insert(ctx, []db.Draft{
		{User: "ann", Message: "something else", CID: "a1"}, // stored before with "hi!"
		{User: "ann", Message: "new", CID: "n1"},
		{User: "ann", Message: "not new", CID: "n1"}, // the batch's own, another text
		{User: "ann", Message: "new", CID: "n1"},     // the batch's own, same text
		{User: "ann", Message: "hi!", CID: "a1"},     // after a refusal, the send itself
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := stored[0]; !st.Reused || st.Duplicate || !reflect.DeepEqual(st.Message, first[0].Message) {
		t.Fatalf("reused cid = %+v, want Reused naming %+v", st, first[0].Message)
	}
	if st := stored[1]; st.Reused || st.Duplicate || st.Message.ID != first[0].Message.ID+1 {
		t.Fatalf("fresh cid = %+v, want stored as %d", st, first[0].Message.ID+1)
	}
	if st := stored[2]; !st.Reused || !reflect.DeepEqual(st.Message, stored[1].Message) {
		t.Fatalf("cid reused in the batch = %+v, want Reused naming %+v", st, stored[1].Message)
	}
	if st := stored[3]; !st.Duplicate || !reflect.DeepEqual(st.Message, stored[1].Message) {
		t.Fatalf("cid repeated in the batch = %+v, want a duplicate of %+v", st, stored[1].Message)
	}
	if st := stored[4]; !st.Duplicate || !reflect.DeepEqual(st.Message, first[0].Message) {
		t.Fatalf("retry after a refusal = %+v, want a duplicate of %+v", st, first[0].Message)
	}
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := texts(msgs), "hi!,new"; got != want {
		t.Fatalf("room holds %q, want %q", got, want)
	}
}

// clock is a settable time for Options.Now.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func newClock(t time.Time) *clock        { c := &clock{}; c.ms.Store(t.UnixMilli()); return c }

func TestCIDIsForgottenAfterTheWindow(t *testing.T) {
	ctx := context.Background()
	c := newClock(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	s := newTestStoreWith(t, db.Options{DedupWindow: time.Minute, Now: c.now})
	send := func(text string) db.Stored {
		t.Helper()
		st, err := s.Insert(ctx, []db.Draft{{User: "ann", Message: text, CID: "w"}})
		if err != nil {
			t.Fatal(err)
		}
		return st[0]
	}
	first := send("hi")
	if got, want := first.Message.Timestamp, c.now().UnixMilli(); got != want {
		t.Fatalf("timestamp %d, want the clock's %d", got, want)
	}
	c.advance(time.Minute) // the last moment of the window
	if st := send("hi"); !st.Duplicate || !reflect.DeepEqual(st.Message, first.Message) {
		t.Fatalf("retry at the end of the window = %+v, want a duplicate of %+v", st, first.Message)
	}
	if st := send("bye"); !st.Reused {
		t.Fatalf("another text at the end of the window = %+v, want Reused", st)
	}
	c.advance(time.Millisecond) // past it: the cid names nothing any more
	second := send("bye")
	if second.Duplicate || second.Reused || second.Message.ID != first.Message.ID+1 {
		t.Fatalf("cid after the window = %+v, want stored as %d", second, first.Message.ID+1)
	}
	// And from now on it names the new message.
	if st := send("bye"); !st.Duplicate || !reflect.DeepEqual(st.Message, second.Message) {
		t.Fatalf("retry of the new send = %+v, want a duplicate of %+v", st, second.Message)
	}
	if st := send("hi"); !st.Reused || !reflect.DeepEqual(st.Message, second.Message) {
		t.Fatalf("the old text again = %+v, want Reused naming %+v", st, second.Message)
	}
	if n, err := s.Count(ctx); err != nil || n != 2 {
		t.Fatalf("Count = %d, %v; want 2", n, err)
	}
}

// TestCIDScopeMigration upgrades a database that holds messages under the
// old rule (cids unique across the room) and checks the new rule holds on it.
func TestCIDScopeMigration(t *testing.T) {
	ctx := context.Background()
	// The first two migrations: the schema before cids had a scope.
	raw, path := schemaBefore(t, "0003_sessions.sql")
	now := time.Now().UnixMilli()
	if _, err := raw.Exec(`INSERT INTO messages (user, message, timestamp, cid) VALUES
		('ann', 'hi!', ?, 'a1'), ('bob', 'yo', ?, NULL), ('cy', 'hey', ?, 'c3')`, now, now, now); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored, err := s.Insert(ctx, []db.Draft{
		{User: "ann", Message: "hi!", CID: "a1"},  // a retry of a message from before
		{User: "bob", Message: "hi!", CID: "a1"},  // another sender's send
		{User: "cy", Message: "other", CID: "c3"}, // reused
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := stored[0]; !st.Duplicate || st.Message.ID != 1 {
		t.Fatalf("ann's retry = %+v, want a duplicate of message 1", st)
	}
	if st := stored[1]; st.Duplicate || st.Reused || st.Message.ID != 4 {
		t.Fatalf("bob's send = %+v, want stored as 4", st)
	}
	if st := stored[2]; !st.Reused || st.Message.ID != 3 {
		t.Fatalf("cy's reused cid = %+v, want Reused naming message 3", st)
	}
	if n, err := s.Count(ctx); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v; want 4", n, err)
	}
}

// A member's re-send after a rename is the same sender's: the cid is kept
// per account, not per name. A guest who takes the old name is another
// sender, even with the same cid.
func TestMemberRetryAfterRenameIsStoredOnce(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann, err := s.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Insert(ctx, []db.Draft{{User: "Ann", UserID: ann.ID, Message: "hi!", CID: "a1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RenameAccount(ctx, ann.ID, "Annie", "annie"); err != nil {
		t.Fatal(err)
	}
	retry, err := s.Insert(ctx, []db.Draft{
		{User: "Annie", UserID: ann.ID, Message: "hi!", CID: "a1"},
		{User: "Ann", Message: "hi!", CID: "a1"}, // a guest under the freed name
	})
	if err != nil {
		t.Fatal(err)
	}
	if !retry[0].Duplicate || retry[0].Message.ID != first[0].Message.ID {
		t.Fatalf("re-send after rename = %+v, want a duplicate of message %d", retry[0], first[0].Message.ID)
	}
	if retry[1].Duplicate || retry[1].Reused || retry[1].Message.ID == first[0].Message.ID {
		t.Fatalf("guest's send under the old name = %+v, want a new message", retry[1])
	}
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), 2; got != want {
		t.Fatalf("%d messages stored, want %d: %+v", got, want, msgs)
	}
}
