package db_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"nochat/db"
)

func tokenHash(i int) []byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "token %d", i))
	return sum[:]
}

func TestSessionsAreCappedPrunedAndEnded(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	const keep = 4

	// One session that expires, then more than keep live ones.
	if err := s.CreateSession(ctx, tokenHash(0), db.Session{Kind: db.SessionAdmin, UserAgent: "old", Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}, keep); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= keep+2; i++ {
		if err := s.CreateSession(ctx, tokenHash(i), db.Session{Kind: db.SessionAdmin, UserAgent: "ua", Created: now, Expires: now.Add(time.Hour)}, keep); err != nil {
			t.Fatal(err)
		}
	}
	live := func(i int) bool {
		_, err := s.SessionByToken(ctx, tokenHash(i), now)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	for i := 0; i <= keep+2; i++ {
		if got, want := live(i), i > 2; got != want {
			t.Errorf("session %d live = %v, want %v (expired: 0; past the cap of %d: 1, 2)", i, got, want, keep)
		}
	}
	got, err := s.SessionByToken(ctx, tokenHash(keep+2), now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != db.SessionAdmin || got.AccountID != 0 || got.UserAgent != "ua" || got.Expires.UnixMilli() != now.Add(time.Hour).UnixMilli() {
		t.Fatalf("session read back as %+v", got)
	}
	if _, err := s.SessionByToken(ctx, tokenHash(keep+2), now.Add(time.Hour)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a session at its expiry: %v, want ErrNotFound", err)
	}

	later := now.Add(10 * time.Minute)
	if err := s.TouchSession(ctx, got.ID, later); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SessionByToken(ctx, tokenHash(keep+2), now); got.LastSeen.UnixMilli() != later.UnixMilli() {
		t.Fatalf("last seen %v after a touch at %v", got.LastSeen, later)
	}

	if err := s.DeleteSession(ctx, tokenHash(keep+2)); err != nil {
		t.Fatal(err)
	}
	if live(keep + 2) {
		t.Fatal("a deleted session is still live")
	}
	n, err := s.DeleteSessions(ctx, db.SessionAdmin)
	if err != nil || n != keep-1 {
		t.Fatalf("DeleteSessions = %d, %v; want %d", n, err, keep-1)
	}
	if n, err := s.PruneSessions(ctx, now.Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("PruneSessions on an empty table = %d, %v", n, err)
	}
}
