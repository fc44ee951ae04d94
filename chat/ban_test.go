package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/db/dbtest"
)

// textsOf is the texts of an account's messages still stored.
func textsOf(t *testing.T, s *db.Store, accountID int64) []string {
	t.Helper()
	msgs, err := s.MessagesOf(context.Background(), accountID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Message)
	}
	return out
}

// On a cluster whose database had a room of its own before rooms were
// shared, the log refuses to delete a message of that room: a ban's
// deletions keep that one, delete the rest, before and after it, and say
// why one was kept; asked again, they do not stop at it either.
func TestBanDeletionsGoPastAMessageTheLogRefuses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ann, err := s.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "h", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	attic, _, err := s.CreateRoom(ctx, db.Room{Slug: "attic", Name: "Attic", Kind: db.KindOpen}, []int64{ann.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(ctx, []db.Draft{
		{User: "Ann", UserID: ann.ID, Message: "lobby 1"},
		{User: "Ann", UserID: ann.ID, Message: "attic", Room: attic.ID},
		{User: "Ann", UserID: ann.ID, Message: "lobby 2"},
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The database then joins a cluster, as one that applied the log's
	// first entry: its attic is its own, not the log's.
	l := dbtest.NewLog(0)
	dbtest.AppliedBefore(t, path, l)
	if s, err = db.Open(ctx, path, db.Options{}); err != nil {
		t.Fatal(err)
	}
	r := serveRoom(t, s, chat.Options{Stream: l})

	n, err := r.hub.DeleteMessagesOf(ctx, ann.ID)
	if n != 2 || !errors.Is(err, chat.ErrNotShared) || !strings.Contains(err.Error(), "1 of the messages") {
		t.Fatalf("DeleteMessagesOf: %d deleted, %v; want 2, and 1 kept as not shared", n, err)
	}
	if left := textsOf(t, s, ann.ID); !slices.Equal(left, []string{"attic"}) {
		t.Fatalf("left %q, want the attic's alone", left)
	}
	if n, err := r.hub.DeleteMessagesOf(ctx, ann.ID); n != 0 || !errors.Is(err, chat.ErrNotShared) {
		t.Fatalf("asked again: %d deleted, %v; want 0, and the attic's kept as not shared", n, err)
	}
}

// deafLog takes a node's entries into the stream but never hands them back
// once stalled: a node whose applier stopped.
type deafLog struct {
	*dbtest.Log
	stall chan struct{}
}

func (d deafLog) Entries(ctx context.Context, after int64) (<-chan db.StreamEntry, error) {
	in, err := d.Log.Entries(ctx, after)
	if err != nil {
		return nil, err
	}
	out := make(chan db.StreamEntry)
	go func() {
		defer close(out)
		for e := range in {
			select {
			case <-d.stall:
				<-ctx.Done()
				return
			default:
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// A ban's deletions, which the handlers let run on when the admin leaves,
// stop when the hub closes, even if the log never answers them: they do
// not keep a goroutine, and the request that began them, for ever.
func TestBanDeletionsStopWhenTheHubCloses(t *testing.T) {
	ctx := context.Background()
	l := deafLog{dbtest.NewLog(0), make(chan struct{})}
	r := newRoom(t, chat.Options{Stream: l, MsgRate: -1})
	ann, err := r.store.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "h", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.hub.SendAs(ctx, chat.Identity{UserID: ann.ID, Name: "Ann", Role: db.RoleMember}, "Ann", "hello", ""); err != nil {
		t.Fatal(err)
	}
	close(l.stall)
	done := make(chan error, 1)
	go func() {
		_, err := r.hub.DeleteMessagesOf(context.WithoutCancel(ctx), ann.ID)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("DeleteMessagesOf returned %v with the log deaf and the hub open", err)
	case <-time.After(300 * time.Millisecond):
	}
	closing, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r.hub.Close(closing)
	select {
	case err := <-done:
		if !errors.Is(err, chat.ErrShutdown) {
			t.Fatalf("after the hub closed: %v, want ErrShutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DeleteMessagesOf still waits 10 s after the hub closed")
	}
}

// A page that was away while a ban deleted a person's messages, and comes
// back after a restart (its resume read from storage, not from memory), is
// told of each deletion in the log's order, and never handed the text of a
// message deleted before it could see it.
func TestBanDeletionsReachAPageResumingFromStorage(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := store.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "h", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ann := chat.Identity{UserID: acct.ID, Name: "Ann", Role: db.RoleMember}
	first, err := chat.New(store, chat.Options{MsgRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	var spam []int64
	say := func(text string) {
		st, err := first.SendAs(ctx, ann, "Ann", text, "")
		if err != nil {
			t.Fatal(err)
		}
		spam = append(spam, st.Message.ID)
	}
	say("spam 1")
	say("spam 2")
	seen, err := first.Send(ctx, "Bob", "what is this?") // the page has everything up to here
	if err != nil {
		t.Fatal(err)
	}
	say("spam 3") // after it: the page never saw this one
	if n, err := first.DeleteMessagesOf(ctx, acct.ID); n != 3 || err != nil {
		t.Fatalf("DeleteMessagesOf: %d, %v; want 3 deleted", n, err)
	}
	if _, err := first.Send(ctx, "Bob", "gone now"); err != nil {
		t.Fatal(err)
	}
	closing, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	first.Close(closing)

	r := serveRoom(t, store, chat.Options{MsgRate: -1})
	c := r.dial(t, "nochat.v1", fmt.Sprintf("?after=%d", seen.ID))
	var told []int64
	for range 100 {
		f, raw := c.next()
		switch f.Type {
		case "deleted":
			var d struct{ Event, ID int64 }
			json.Unmarshal(f.Data, &d)
			if d.Event == 0 {
				t.Fatalf("%s: not an event of the log", raw)
			}
			told = append(told, d.ID)
			continue
		case "message":
			var m msgData
			json.Unmarshal(f.Data, &m)
			if strings.Contains(m.Message, "spam") {
				t.Fatalf("the resumed page was handed %s", raw)
			}
			if m.Message != "gone now" {
				continue
			}
		default:
			continue
		}
		break
	}
	if !slices.Equal(told, spam) {
		t.Fatalf("the resumed page was told of %v deleted, want Ann's %v", told, spam)
	}
}
