package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"nochat/db"
)

func TestPushSubscriptionsGoWithTheirSession(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	ann := newAccount(t, s, "ann", db.RoleMember)
	bob := newAccount(t, s, "bob", db.RoleMember)
	now := time.Now()
	// Sessions 1 and 2 are Ann's, 3 Bob's, 4 Ann's and already expired.
	newSession(t, s, 1, db.SessionAccount, ann.ID, "", now.Add(time.Hour))
	newSession(t, s, 2, db.SessionAccount, ann.ID, "", now.Add(time.Hour))
	newSession(t, s, 3, db.SessionAccount, bob.ID, "", now.Add(time.Hour))
	sessionID := func(account int64, n int) int64 {
		t.Helper()
		ss, err := s.SessionsOf(ctx, account, now)
		if err != nil || len(ss) <= n {
			t.Fatalf("sessions of %d: %v, %v", account, ss, err)
		}
		return ss[n].ID
	}
	save := func(account, session int64, endpoint string, at time.Time) {
		t.Helper()
		sub := db.PushSubscription{SessionID: session, AccountID: account, Endpoint: endpoint, P256dh: "k", Auth: "a", Created: at}
		if err := s.SavePushSubscription(ctx, sub, 3); err != nil {
			t.Fatal(err)
		}
	}
	endpoints := func(account int64) string {
		t.Helper()
		subs, err := s.PushSubscriptions(ctx, account, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, p := range subs {
			out += p.Endpoint + " "
		}
		return out
	}
	ann1, ann2 := sessionID(ann.ID, 0), sessionID(ann.ID, 1)
	for i := range 4 { // one more than the cap of 3: the oldest goes
		save(ann.ID, ann1, fmt.Sprintf("https://push.example/a%d", i), now.Add(time.Duration(i)*time.Second))
	}
	save(bob.ID, sessionID(bob.ID, 0), "https://push.example/b", now)
	if got, want := endpoints(ann.ID), "https://push.example/a1 https://push.example/a2 https://push.example/a3 "; got != want {
		t.Fatalf("Ann's subscriptions = %q, want %q", got, want)
	}
	// The same endpoint again, from her other session: moved, not doubled.
	save(ann.ID, ann2, "https://push.example/a1", now.Add(time.Minute))
	if got, want := endpoints(ann.ID), "https://push.example/a1 https://push.example/a2 https://push.example/a3 "; got != want {
		t.Fatalf("Ann's subscriptions after subscribing a1 again = %q, want %q", got, want)
	}
	// Only one's own can be removed.
	if err := s.DeletePushSubscription(ctx, bob.ID, "https://push.example/a2"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("Bob removing Ann's subscription: %v, want ErrNotFound", err)
	}
	// Deactivating Ann ends her sessions, and with them her subscriptions;
	// Bob's stay.
	if _, _, err := s.Deactivate(ctx, ann.ID, now); err != nil {
		t.Fatal(err)
	}
	if got := endpoints(ann.ID); got != "" {
		t.Fatalf("Ann's subscriptions after deactivation = %q, want none", got)
	}
	if got, want := endpoints(bob.ID), "https://push.example/b "; got != want {
		t.Fatalf("Bob's subscriptions = %q, want %q", got, want)
	}
	// A session that expired pushes nothing, even before it is pruned.
	if got := func() string {
		subs, err := s.PushSubscriptions(ctx, bob.ID, now.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(len(subs))
	}(); got != "0" {
		t.Fatalf("Bob's subscriptions once his session expired: %s, want 0", got)
	}
}

func TestNotifyLevelIsAMembersOwn(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	ann := newAccount(t, s, "ann", db.RoleMember)
	if err := s.SetNotify(ctx, db.DefaultRoom, ann.ID, db.NotifyAll); err != nil {
		t.Fatal(err)
	}
	unread, err := s.UnreadOf(ctx, ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := unread[db.DefaultRoom].Notify; got != db.NotifyAll {
		t.Fatalf("Ann's level in the lobby = %q, want all", got)
	}
	if err := s.SetNotify(ctx, 999, ann.ID, db.NotifyAll); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a level in a room Ann is not in: %v, want ErrNotFound", err)
	}
	if err := s.SetNotify(ctx, db.DefaultRoom, ann.ID, "loud"); err == nil {
		t.Fatal("the database took the level loud")
	}
}
