package chat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"nochat/chat"
)

// TestResumeAfterRetentionReplaysOnlyWhatIsKept keeps fewer messages than the
// replay window holds: a client resuming from before the pruned ones gets
// what the store still has, and nothing retention deleted.
func TestResumeAfterRetentionReplaysOnlyWhatIsKept(t *testing.T) {
	r := newRoom(t, chat.Options{})
	for i := range 10 {
		if _, err := r.hub.Send(context.Background(), "ann", fmt.Sprint("m", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := r.hub.Prune(context.Background(), time.Time{}, 3)
	if err != nil || n != 7 {
		t.Fatalf("Prune = %d, %v; want 7 deleted", n, err)
	}
	c := r.dial(t, "nochat.v1", "?after=2")
	for want := 8; want <= 10; want++ {
		if m := c.expect("message"); m.Message != fmt.Sprint("m", want) {
			t.Fatalf("resumed after 2, got %q (id %d), want m%d: retention deleted the messages before it", m.Message, m.ID, want)
		}
	}
	// Then live messages, nothing else.
	r.hub.Send(context.Background(), "ann", "live")
	if m := c.expect("message"); m.Message != "live" {
		t.Fatalf("got %q, want the live message", m.Message)
	}

	// By age too: everything is older than now.
	if n, err := r.hub.Prune(context.Background(), time.Now().Add(time.Hour), 0); err != nil || n != 4 {
		t.Fatalf("Prune by age = %d, %v; want 4 deleted", n, err)
	}
	c2 := r.dial(t, "nochat.v1", "?after=0")
	r.hub.Send(context.Background(), "ann", "after the purge")
	if m := c2.expect("message"); m.Message != "after the purge" {
		t.Fatalf("resumed after 0 with every message pruned, got %q, want only the new message", m.Message)
	}
}
