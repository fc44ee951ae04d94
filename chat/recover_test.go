package chat_test

import (
	"context"
	"testing"
	"time"

	"nochat/chat"
)

// waitForError polls the error log, up to a bound, for an entry of kind at
// place, and reports whether it came.
func waitForError(h *chat.Hub, kind, place string) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, e := range h.Snapshot(chat.ErrorLogSize).Errors {
			if e.Kind == kind && e.Place == place {
				return true
			}
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
	if !waitForError(r.hub, chat.KindPanic, "broadcaster") {
		t.Fatal("the panic left no entry in the error log")
	}
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
	if !waitForError(r.hub, chat.KindPanic, "error log flusher") {
		t.Fatal("the panic left no entry in the error log")
	}
	saved := func() bool {
		rows, err := r.store.RecentErrors(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rows {
			if e.Kind == chat.KindPanic && e.Place == "error log flusher" {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !saved(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flusher stopped writing after its panic")
		}
	}
	c := r.dial(t, "nochat.v1", "")
	sendAcked(t, c, "still serving")
}
