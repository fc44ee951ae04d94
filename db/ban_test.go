package db_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"nochat/db"
)

// A guest's address is banned with no account, listed under the guest's
// name, refused once; any refused address, an account's ban's too, is
// freed on its own, and the account stays banned.
func TestAddressBans(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	now := time.Now()
	if err := s.BanAddress(ctx, "203.0.113.9", "Zed", now); err != nil {
		t.Fatal(err)
	}
	if err := s.BanAddress(ctx, "203.0.113.9", "Zed again", now); !errors.Is(err, db.ErrAddressBanned) {
		t.Fatalf("the same address again: %v, want ErrAddressBanned", err)
	}
	bo, err := s.CreateAccount(ctx, db.Account{Name: "Bo", NameKey: "bo", PasswordHash: "x", Role: db.RoleMember, Created: now})
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Minute)
	if _, _, banned, err := s.Ban(ctx, bo.ID, []string{"198.51.100.4", "198.51.100.5"}, nil, later); err != nil || len(banned) != 2 {
		t.Fatalf("Ban = %v, %v; want two addresses", banned, err)
	}

	bans, total, err := s.AddressBans(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []db.AddressBan{
		{Address: "198.51.100.4", AccountID: bo.ID, Name: "Bo", At: time.UnixMilli(later.UnixMilli())},
		{Address: "198.51.100.5", AccountID: bo.ID, Name: "Bo", At: time.UnixMilli(later.UnixMilli())},
		{Address: "203.0.113.9", Name: "Zed", At: time.UnixMilli(now.UnixMilli())},
	}
	if total != 3 || !slices.EqualFunc(bans, want, func(a, b db.AddressBan) bool { return a == b }) {
		t.Fatalf("AddressBans = %+v (%d in all)\nwant %+v (3)", bans, total, want)
	}
	if bans, total, err := s.AddressBans(ctx, 1); err != nil || len(bans) != 1 || total != 3 {
		t.Fatalf("AddressBans(1) = %d bans, %d in all, %v; want 1 of 3", len(bans), total, err)
	}

	// One of the banned account's addresses is freed; the account stays
	// banned, its other address refused.
	if err := s.UnbanAddress(ctx, "198.51.100.4"); err != nil {
		t.Fatal(err)
	}
	if err := s.UnbanAddress(ctx, "198.51.100.4"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("freeing it again: %v, want ErrNotFound", err)
	}
	if err := s.UnbanAddress(ctx, "203.0.113.9"); err != nil {
		t.Fatal(err)
	}
	refused, err := s.BannedAddresses(ctx)
	if err != nil || !slices.Equal(refused, []string{"198.51.100.5"}) {
		t.Fatalf("BannedAddresses = %v, %v; want only Bo's other address", refused, err)
	}
	if a, err := s.AccountByID(ctx, bo.ID); err != nil || !a.Banned {
		t.Fatalf("Bo after one address freed: %+v, %v; want still banned", a, err)
	}
	// The account's unban frees the rest.
	if _, freed, err := s.Unban(ctx, bo.ID); err != nil || !slices.Equal(freed, []string{"198.51.100.5"}) {
		t.Fatalf("Unban = %v, %v", freed, err)
	}
}

// TestAddressBansMigration upgrades a database whose bans each needed an
// account: they stay, under their accounts, and an address can then be
// banned with none.
func TestAddressBansMigration(t *testing.T) {
	ctx := context.Background()
	raw, path := schemaBefore(t, "0027_address_bans.sql")
	if _, err := raw.Exec(`INSERT INTO accounts (id, name, name_key, password_hash, role, created, deactivated, banned)
		VALUES (7, 'Bo', 'bo', 'x', 'member', 1, 2, 2);
		INSERT INTO bans (address, account_id, at) VALUES ('198.51.100.4', 7, 2)`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO bans (address, at) VALUES ('203.0.113.9', 3)`); err == nil {
		t.Fatal("before the migration, a ban without an account was stored: the test would not show the change")
	}
	raw.Close()

	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.BanAddress(ctx, "203.0.113.9", "Zed", time.UnixMilli(3)); err != nil {
		t.Fatal(err)
	}
	bans, _, err := s.AddressBans(ctx, 10)
	want := []db.AddressBan{
		{Address: "203.0.113.9", Name: "Zed", At: time.UnixMilli(3)},
		{Address: "198.51.100.4", AccountID: 7, Name: "Bo", At: time.UnixMilli(2)},
	}
	if err != nil || !slices.Equal(bans, want) {
		t.Fatalf("AddressBans after the migration = %+v, %v\nwant %+v", bans, err, want)
	}
	if _, freed, err := s.Unban(ctx, 7); err != nil || !slices.Equal(freed, []string{"198.51.100.4"}) {
		t.Fatalf("Unban of the account banned before = %v, %v", freed, err)
	}
}

// BenchmarkAddressBans is the dashboard's list of bans, read every second
// while it is open, with 50,000 bans.
//
//	go test ./db -run '^$' -bench AddressBans
func BenchmarkAddressBans(b *testing.B) {
	ctx := context.Background()
	s := newTestStore(b)
	now := time.Now()
	for i := range 50_000 {
		if err := s.BanAddress(ctx, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), "guest", now.Add(time.Duration(i)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		bans, total, err := s.AddressBans(ctx, 100)
		if err != nil || len(bans) != 100 || total != 50_000 {
			b.Fatalf("%d bans of %d, %v", len(bans), total, err)
		}
	}
}
