package chat_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
)

// stuckPusher takes one push, then never returns until released: a push
// service that hangs.
type stuckPusher struct {
	got     chan chat.Notification
	release chan struct{}
}

func (p *stuckPusher) Push(_ int64, n chat.Notification) {
	p.got <- n
	<-p.release
}

// A push that hangs holds up no message: the broadcaster only queues, and
// past the queue messages notify no one (counted) rather than wait.
func TestAHangingPushDelaysNoMessage(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	account := func(name string) chat.Identity {
		a, err := store.CreateAccount(ctx, db.Account{Name: name, NameKey: name, PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return chat.Identity{UserID: a.ID, Name: name, Role: db.RoleMember}
	}
	ann, bob := account("ann"), account("bob")
	if err := store.CreateSession(ctx, []byte("bob"), db.Session{Kind: db.SessionAccount, AccountID: bob.UserID, Created: time.Now(), Expires: time.Now().Add(time.Hour)}, 8); err != nil {
		t.Fatal(err)
	}
	sessions, err := store.SessionsOf(ctx, bob.UserID, time.Now())
	if err != nil || len(sessions) != 1 {
		t.Fatal(sessions, err)
	}
	if err := store.SavePushSubscription(ctx, db.PushSubscription{SessionID: sessions[0].ID, AccountID: bob.UserID, Endpoint: "https://push.example/bob", P256dh: "k", Auth: "a", Created: time.Now()}, 10); err != nil {
		t.Fatal(err)
	}
	p := &stuckPusher{got: make(chan chat.Notification, 1), release: make(chan struct{})}
	r := serveRoom(t, store, chat.Options{Pusher: p, PushGrace: time.Nanosecond, MsgRate: -1})
	defer close(p.release) // before the hub closes (cleanups run after)

	if _, err := r.hub.SendAs(ctx, ann, "", "@bob are you there?", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-p.got:
		if n.Body != "@bob are you there?" || !n.Urgent {
			t.Fatalf("the push: %+v", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no push for a mention of bob, away")
	}
	// The pusher now hangs. Every send still returns: each is stored and
	// handed to every socket (SendAs returns after both).
	const senders, each = 8, chat.NotifyQueue/8 + 20
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				if _, err := r.hub.SendAs(ctx, ann, "", fmt.Sprintf("message %d.%d", s, i), ""); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := chat.PushDropped(r.hub); got < senders*each-chat.NotifyQueue {
		t.Fatalf("%d messages were dropped from the push queue, want at least %d", got, senders*each-chat.NotifyQueue)
	}
}
