package chat_test

import (
	"context"
	"errors"
	"testing"

	"nochat/chat"
)

// A cid names one send of one sender: the README's example cid from two
// people is two messages, and a cid reused for another text is refused.

func TestREADMEExampleCIDFromTwoSendersIsTwoMessages(t *testing.T) {
	r := newRoom(t, chat.Options{})
	ann := r.dial(t, "nochat.v1", "?user=ann")
	bob := r.dial(t, "nochat.v1", "?user=bob")

	ann.say("hi!", "a1")
	if a := ann.expect("ack"); a.CID != "a1" {
		t.Fatalf("ann's ack = %+v, want cid a1", a)
	}
	first := ann.expect("message")
	if m := bob.expect("message"); m.ID != first.ID {
		t.Fatalf("bob got %+v, want ann's message %d", m, first.ID)
	}

	bob.say("hi!", "a1")
	ack := bob.expect("ack")
	if ack.CID != "a1" || ack.ID == first.ID {
		t.Fatalf("bob's ack = %+v, want cid a1 and a message of his own, not ann's %d", ack, first.ID)
	}
	if m := bob.expect("message"); m.ID != ack.ID || m.User != "bob" {
		t.Fatalf("bob got %+v, want his message %d", m, ack.ID)
	}
	if m := ann.expect("message"); m.ID != ack.ID || m.User != "bob" {
		t.Fatalf("ann got %+v, want bob's message %d", m, ack.ID)
	}

	// A REST send's key lives in the same scope as a cid: ann's REST retry
	// under a1 is her message, not a third one.
	st, err := r.hub.SendAs(context.Background(), chat.Identity{}, "ann", "hi!", "a1")
	if err != nil || !st.Duplicate || st.Message.ID != first.ID {
		t.Fatalf("ann's REST retry = %+v, %v; want a duplicate of %d", st, err, first.ID)
	}
	msgs, err := r.store.Latest(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), 2; got != want {
		t.Fatalf("%d messages stored, want %d", got, want)
	}
}

func TestCIDReusedForAnotherTextIsRefused(t *testing.T) {
	r := newRoom(t, chat.Options{})
	ann := r.dial(t, "nochat.v1", "?user=ann")
	other := r.dial(t, "nochat.v1", "?user=bob")

	ann.say("first", "r1")
	ann.expect("ack")
	first := ann.expect("message")
	other.expect("message")

	ann.say("second", "r1")
	if e := ann.expect("error"); e.Code != "cid_reused" || e.CID != "r1" {
		t.Fatalf("reused cid got %+v, want error cid_reused for r1", e)
	}
	if _, err := r.hub.SendAs(context.Background(), chat.Identity{}, "ann", "second", "r1"); !errors.Is(err, chat.ErrCIDReused) {
		t.Fatalf("REST send with the reused key: %v, want ErrCIDReused", err)
	}

	// Nothing of "second" reached anyone: the next message is the next one.
	ann.say("third", "r2")
	if a := ann.expect("ack"); a.CID != "r2" || a.ID != first.ID+1 {
		t.Fatalf("ack = %+v, want r2 as %d", a, first.ID+1)
	}
	if m := other.expect("message"); m.Message != "third" {
		t.Fatalf("other got %q, want third", m.Message)
	}
	msgs, err := r.store.Latest(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Message != "first" || msgs[1].Message != "third" {
		t.Fatalf("stored %+v, want first and third", msgs)
	}
}
