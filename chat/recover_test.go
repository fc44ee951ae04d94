package chat_test

import (
	"context"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
)

// waitUntil polls cond every 20 ms, up to 10 s, and fails the test with
// failure if it never holds.
func waitUntil(t *testing.T, failure string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(failure)
		}
	}
}

// hasError reports whether entries hold one of kind at place.
func hasError(entries []db.ErrorEntry, kind, place string) bool {
	for _, e := range entries {
		if e.Kind == kind && e.Place == place {
			return true
		}
	}
	return false
}

// A panic in one of the broadcaster's operations used to end the process;
// now it is an error entry and the room goes on.
func TestBroadcasterSurvivesAPanic(t *testing.T) {
	r := newRoom(t, chat.Options{})
	c := r.dial(t, "nochat.v1", "")
	sendAcked(t, c, "before")
	if !chat.OnBroadcaster(r.hub, func() { panic("broken operation") }) {
		t.Fatal("the broadcaster has stopped")
	}
	waitUntil(t, "the panic left no entry in the error log", func() bool {
		return hasError(r.hub.Snapshot(chat.ErrorLogSize).Errors, chat.KindPanic, "broadcaster")
	})
	sendAcked(t, c, "after")
	other := r.dial(t, "echo-protocol", "")
	c.say("to both", "x1")
	if got := other.expectText(); got != "to both" {
		t.Fatalf("echo client got %q", got)
	}
}

// A panic in the error-log flusher used to end the process (the eviction
// bug did exactly that); now the pass is recorded, the next pass writes the
// entry, and the room goes on.
func TestErrorFlusherSurvivesAPanic(t *testing.T) {
	r := newRoom(t, chat.Options{})
	chat.BreakErrorSaving(r.hub, func() { panic("disk on fire") })
	r.hub.RecordErrorAt(chat.KindBadInput, "test", "something to flush", "test")
	waitUntil(t, "the panic left no entry in the error log", func() bool {
		return hasError(r.hub.Snapshot(chat.ErrorLogSize).Errors, chat.KindPanic, "error log flusher")
	})
	waitUntil(t, "the flusher stopped writing after its panic", func() bool {
		rows, err := r.store.RecentErrors(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		return hasError(rows, chat.KindPanic, "error log flusher")
	})
	c := r.dial(t, "nochat.v1", "")
	sendAcked(t, c, "still serving")
}
