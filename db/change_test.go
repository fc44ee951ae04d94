package db_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"nochat/db"
)

// account makes an account named name in s and returns its id.
func account(t *testing.T, s *db.Store, name string) int64 {
	t.Helper()
	a, err := s.CreateAccount(context.Background(), db.Account{Name: name, NameKey: name, PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// store stores drafts in one transaction and fails the test on error.
func store(t *testing.T, s *db.Store, drafts ...db.Draft) []db.Stored {
	t.Helper()
	out, err := s.Insert(context.Background(), drafts)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func on(b bool) *bool { return &b }

// Edits, deletions and reactions take ids from the messages' sequence, in
// the order they were submitted, in one batch or many; the log after an id
// hands them out in that order, with the messages in their current state.
func TestChangesAreEventsOfTheOneLog(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann, bob := account(t, s, "ann"), account(t, s, "bob")

	first := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "helo"})[0].Message
	out := store(t, s,
		db.Draft{UserID: ann, Change: db.Edit, Target: first.ID, Message: "hello"},
		db.Draft{User: "bob", UserID: bob, Message: "gone soon"},
		db.Draft{UserID: bob, Change: db.React, Target: first.ID, Message: "👍"},
		db.Draft{User: "ann", UserID: ann, Message: "third"},
		db.Draft{UserID: bob, Change: db.Delete, Target: first.ID + 2},
	)
	var ids []int64
	for i, st := range out {
		if st.Refused != nil {
			t.Fatalf("draft %d refused: %v", i, st.Refused)
		}
		id := st.Message.ID
		if st.Change != nil {
			id = st.Change.ID
		}
		ids = append(ids, id)
	}
	if want := []int64{first.ID + 1, first.ID + 2, first.ID + 3, first.ID + 4, first.ID + 5}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v: one sequence, in submission order", ids, want)
	}
	if got := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "after"})[0].Message.ID; got != first.ID+6 {
		t.Fatalf("the next message took id %d, want %d", got, first.ID+6)
	}
	if latest, err := s.LatestID(ctx); err != nil || latest != first.ID+6 {
		t.Fatalf("LatestID = %d, %v; want %d", latest, err, first.ID+6)
	}

	log, err := s.LogAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		if e.Message != nil {
			got = append(got, "message "+e.Message.Message)
		} else {
			got = append(got, string(e.Change.Kind))
		}
	}
	// "gone soon" and nothing about it but its deletion.
	want := []string{"message hello", "edit", "react", "message third", "delete", "message after"}
	if !slices.Equal(got, want) {
		t.Fatalf("log after 0: %q, want %q", got, want)
	}
	m := log[0].Message
	if m.EditedAt == nil || len(m.Reactions) != 1 || m.Reactions[0].Emoji != "👍" || m.Reactions[0].Count != 1 || m.Reactions[0].Users[0] != "bob" {
		t.Fatalf("the first message replayed as %+v, want edited, with bob's 👍", m)
	}
	if edit := log[1].Change; edit.Text != "hello" || edit.Message != first.ID || edit.EditedAt == 0 {
		t.Fatalf("edit event %+v", edit)
	}
	if n, err := s.Count(ctx); err != nil || n != 3 {
		t.Fatalf("Count = %d, %v; want 3 (one deleted)", n, err)
	}

	// The page of history shows the same current state.
	page, err := s.LatestIn(ctx, db.DefaultRoom, 10)
	if err != nil {
		t.Fatal(err)
	}
	if page[0].Message != "hello" || page[0].EditedAt == nil || len(page[0].Reactions) != 1 {
		t.Fatalf("history's first message %+v", page[0])
	}

	// The sequence survives a restart: the next id follows the last event.
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	edit := store(t, s2, db.Draft{UserID: ann, Change: db.Edit, Target: first.ID + 6, Message: "after all"})[0]
	if edit.Change == nil || edit.Change.ID != first.ID+7 {
		t.Fatalf("an edit after reopening: %+v, want id %d", edit, first.ID+7)
	}
}

// A change is checked against the message as stored, in its transaction:
// refused, it stores nothing and takes no id, and the batch goes on.
func TestChangesAreRefusedAgainstTheStoredMessage(t *testing.T) {
	ctx := context.Background()
	clock := time.Unix(1_800_000_000, 0)
	s, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ann, bob := account(t, s, "ann"), account(t, s, "bob")
	m := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "mine"})[0].Message
	guest := store(t, s, db.Draft{User: "visitor", Message: "a guest's"})[0].Message

	clock = clock.Add(20 * time.Minute)
	since := clock.Add(-15 * time.Minute).UnixMilli()
	cases := []struct {
		name string
		d    db.Draft
		want error
	}{
		{"another's edit", db.Draft{UserID: bob, Change: db.Edit, Target: m.ID, Message: "bob's now"}, db.ErrNotAuthor},
		{"an edit after the window", db.Draft{UserID: ann, Change: db.Edit, Target: m.ID, Message: "late", EditSince: since}, db.ErrEditWindow},
		{"another's deletion", db.Draft{UserID: bob, Change: db.Delete, Target: m.ID}, db.ErrNotAuthor},
		{"a guest's message edited by an account", db.Draft{UserID: ann, Change: db.Edit, Target: guest.ID, Message: "x"}, db.ErrNotAuthor},
		{"a message of another room", db.Draft{UserID: ann, Change: db.Edit, Target: m.ID, Message: "x", Room: 7}, db.ErrNoMessage},
		{"no such message", db.Draft{UserID: ann, Change: db.React, Target: 999, Message: "👍"}, db.ErrNoMessage},
	}
	drafts := []db.Draft{}
	for _, c := range cases {
		drafts = append(drafts, c.d)
	}
	drafts = append(drafts, db.Draft{User: "ann", UserID: ann, Message: "still stored"})
	out := store(t, s, drafts...)
	for i, c := range cases {
		if !errors.Is(out[i].Refused, c.want) || out[i].Change != nil {
			t.Errorf("%s: %+v, want refused with %v", c.name, out[i], c.want)
		}
	}
	if last := out[len(cases)].Message.ID; last != guest.ID+1 {
		t.Fatalf("the message after the refusals took id %d, want %d: a refusal takes none", last, guest.ID+1)
	}
	if got, _ := s.Get(ctx, m.ID); got.Message != "mine" {
		t.Fatalf("after the refusals the message reads %q", got.Message)
	}

	// A moderator deletes another's message; the same text again is no
	// change; a reaction asked for as it is changes nothing.
	out = store(t, s,
		db.Draft{UserID: ann, Change: db.React, Target: guest.ID, Message: "🎉", On: on(false)},
		db.Draft{UserID: bob, Change: db.Delete, Target: guest.ID, Moderator: true},
	)
	if out[0].Change != nil || out[0].Refused != nil {
		t.Fatalf("taking back a reaction never made: %+v, want no change", out[0])
	}
	if out[1].Change == nil || out[1].Change.Kind != db.Delete {
		t.Fatalf("a moderator's deletion: %+v", out[1])
	}
	if _, err := s.Get(ctx, guest.ID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("the deleted message: %v, want not found", err)
	}
}

// Reactions toggle, keep who and in what order, and are capped per message.
func TestReactions(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann, bob := account(t, s, "ann"), account(t, s, "bob")
	m := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "party"})[0].Message
	react := func(user int64, emoji string, set *bool) db.Stored {
		t.Helper()
		return store(t, s, db.Draft{UserID: user, Change: db.React, Target: m.ID, Message: emoji, On: set})[0]
	}
	react(bob, "🎉", nil)
	react(ann, "🎉", nil)
	st := react(ann, "👍", nil)
	if rs := st.Change.Reactions; len(rs) != 2 || rs[0].Emoji != "🎉" || !slices.Equal(rs[0].Users, []string{"bob", "ann"}) || rs[1].Count != 1 {
		t.Fatalf("reactions %+v", rs)
	}
	st = react(ann, "🎉", nil) // toggled off
	if !(st.Change != nil && !st.Change.On) || st.Change.Reactions[0].Count != 1 {
		t.Fatalf("toggling off: %+v", st.Change)
	}
	if st := react(bob, "🎉", on(true)); st.Change != nil {
		t.Fatalf("setting on what is on: %+v, want no change", st.Change)
	}
	for i := range db.MaxReactionKinds - 2 {
		react(bob, string(rune(0x1F600+i)), nil)
	}
	if st := react(ann, "🦄", nil); !errors.Is(st.Refused, db.ErrTooManyReactions) {
		t.Fatalf("one kind too many: %+v", st)
	}
	if st := react(ann, "👍", nil); st.Change == nil {
		t.Fatalf("taking back one of the kinds there: %+v", st)
	}
	if st := react(ann, "👍", nil); st.Change == nil {
		t.Fatalf("an emoji already there, again: refused %v", st.Refused)
	}
	got, err := s.Get(ctx, m.ID)
	if err != nil || len(got.Reactions) != db.MaxReactionKinds {
		t.Fatalf("Get: %d kinds, %v", len(got.Reactions), err)
	}
}

// A deleted message takes its earlier edits with it: a client resuming
// from before them never sees the text.
func TestDeletionForgetsTheEdits(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann := account(t, s, "ann")
	m := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "oops"})[0].Message
	store(t, s, db.Draft{UserID: ann, Change: db.Edit, Target: m.ID, Message: "my password is hunter2"})
	store(t, s, db.Draft{UserID: ann, Change: db.React, Target: m.ID, Message: "😱"})
	store(t, s, db.Draft{UserID: ann, Change: db.Delete, Target: m.ID})
	log, err := s.LogAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Change == nil || log[0].Change.Kind != db.Delete || log[0].Change.Text != "" {
		t.Fatalf("log after the deletion: %+v, want the deletion alone", log)
	}
}

// A change sent again under its cid (a client that reconnected with its
// ack lost) is the change made the first time: a toggled reaction is not
// toggled back, the same id is answered, nothing is logged twice. Another
// change under the same cid is refused; another account's cid, or the
// same one past the de-duplication window, names nothing.
func TestAChangeSentAgainUnderItsCIDIsMadeOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := newTestStoreWith(t, db.Options{DedupWindow: time.Hour, Now: func() time.Time { return now }})
	ann, bob := account(t, s, "ann"), account(t, s, "bob")
	msg := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "lunch?"})[0].Message
	toggle := db.Draft{UserID: bob, Change: db.React, Target: msg.ID, Message: "👍", CID: "r1"}

	first := store(t, s, toggle)[0]
	if first.Change == nil || !first.Change.On {
		t.Fatalf("the toggle: %+v, want the reaction added", first)
	}
	for _, again := range [][]db.Stored{store(t, s, toggle), store(t, s, toggle, toggle)} {
		for _, st := range again {
			if !st.Duplicate || st.Change == nil || st.Change.ID != first.Change.ID || st.Refused != nil {
				t.Fatalf("the toggle sent again: %+v, want the change %d again", st, first.Change.ID)
			}
		}
	}
	if got, _ := s.Get(ctx, msg.ID); len(got.Reactions) != 1 || got.Reactions[0].Count != 1 {
		t.Fatalf("reactions after the toggle was sent three times more: %+v, want Bob's 👍 once", got.Reactions)
	}
	if log, _ := s.LogAfter(ctx, msg.ID, 10); len(log) != 1 {
		t.Fatalf("the log after the message: %d entries, want the one reaction", len(log))
	}

	other := toggle
	other.Message = "🎉"
	if st := store(t, s, other)[0]; !st.Reused || st.Change != nil {
		t.Fatalf("another change under the cid: %+v, want it refused as reused", st)
	}
	taken := toggle
	taken.UserID = ann // Ann's own r1: another sender's cid names nothing of hers
	if st := store(t, s, taken)[0]; st.Duplicate || st.Reused || st.Change == nil || !st.Change.On {
		t.Fatalf("Ann's toggle under Bob's cid: %+v, want her reaction added", st)
	}
	now = now.Add(2 * time.Hour)
	if st := store(t, s, toggle)[0]; st.Duplicate || st.Change == nil || st.Change.On {
		t.Fatalf("the toggle past the window: %+v, want it made, taking Bob's reaction back", st)
	}
	plain := toggle
	plain.CID = ""
	for i, want := range []bool{true, false} {
		if st := store(t, s, plain)[0]; st.Duplicate || st.Change == nil || st.Change.On != want {
			t.Fatalf("toggle %d without a cid: %+v, want on = %v", i, st, want)
		}
	}
}

// What a cid names is matched in full: the kind, the message, an edit's
// text, a reaction's emoji and, when the copy says, which way. Two copies
// in one batch are one change; an edit sent again after a later edit does
// not bring back the text it replaced; and ChangeUnderCID, which chat asks
// before drafting, finds a deletion's after its message is gone.
func TestWhatAChangesCIDNames(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann, bob := account(t, s, "ann"), account(t, s, "bob")
	msgs := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "one"}, db.Draft{User: "ann", UserID: ann, Message: "two"})
	one, two := msgs[0].Message.ID, msgs[1].Message.ID

	like := db.Draft{UserID: bob, Change: db.React, Target: one, Message: "👍", On: on(true), CID: "like"}
	out := store(t, s, like, like)
	if out[0].Change == nil || out[0].Duplicate || !out[1].Duplicate || out[1].Change == nil || out[1].Change.ID != out[0].Change.ID {
		t.Fatalf("two copies in one batch: %+v, %+v; want one change, then it again", out[0], out[1])
	}
	for name, d := range map[string]db.Draft{
		"the other way":     {UserID: bob, Change: db.React, Target: one, Message: "👍", On: on(false), CID: "like"},
		"another emoji":     {UserID: bob, Change: db.React, Target: one, Message: "🎉", On: on(true), CID: "like"},
		"another message":   {UserID: bob, Change: db.React, Target: two, Message: "👍", On: on(true), CID: "like"},
		"another kind":      {UserID: bob, Change: db.Delete, Target: one, Moderator: true, CID: "like"},
		"a toggle, not on?": {UserID: bob, Change: db.React, Target: one, Message: "👍", CID: "like"},
	} {
		st := store(t, s, d)[0]
		switch {
		case name == "a toggle, not on?" && (!st.Duplicate || st.Change == nil):
			t.Errorf("%s: %+v, want the change made before (a toggle names no way)", name, st)
		case name != "a toggle, not on?" && (!st.Reused || st.Change != nil):
			t.Errorf("%s under the cid: %+v, want it refused as reused", name, st)
		}
	}

	first := store(t, s, db.Draft{UserID: ann, Change: db.Edit, Target: two, Message: "two!", CID: "e1"})[0]
	store(t, s, db.Draft{UserID: ann, Change: db.Edit, Target: two, Message: "two!!", CID: "e2"})
	if st := store(t, s, db.Draft{UserID: ann, Change: db.Edit, Target: two, Message: "two!", CID: "e1"})[0]; !st.Duplicate || st.Change.ID != first.Change.ID {
		t.Fatalf("the first edit sent again: %+v, want it answered as before", st)
	}
	if m, _ := s.Get(ctx, two); m.Message != "two!!" {
		t.Fatalf("the text after the first edit came again: %q, want the later edit's", m.Message)
	}

	gone := store(t, s, db.Draft{UserID: ann, Change: db.Delete, Target: two, CID: "d1"})[0]
	again := db.Draft{UserID: ann, Change: db.Delete, Target: two, CID: "d1"}
	st, named, err := s.ChangeUnderCID(ctx, again)
	if err != nil || !named || !st.Duplicate || st.Change.ID != gone.Change.ID {
		t.Fatalf("ChangeUnderCID of the deletion sent again: %+v, %v, %v; want deletion %d", st, named, err, gone.Change.ID)
	}
	if _, named, _ := s.ChangeUnderCID(ctx, db.Draft{UserID: bob, Change: db.Delete, Target: two, CID: "d1"}); named {
		t.Fatal("Bob's d1 names Ann's deletion")
	}
}
