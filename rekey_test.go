package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"nochat/db"
)

// oldKeyOfCyrillicBob is what chat.NameKey made of "Вob" (Cyrillic capital
// В) before it read look-alike capitals as Latin ones: В lower-cases to в,
// whose prototype is the small capital ʙ, so the name escaped "Bob".
const oldKeyOfCyrillicBob = "\u0299ob"

// storeWithAccounts makes a database holding accounts with the keys an
// older version stored, and closes it, as a server about to be upgraded
// leaves it. Each account's password is passwordOf its name.
func storeWithAccounts(t *testing.T, accounts ...db.Account) (string, []db.Account) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, a := range accounts {
		hash, err := bcrypt.GenerateFromPassword([]byte(passwordOf(a.Name)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		a.PasswordHash, a.Role, a.Created = string(hash), db.RoleMember, time.Now()
		if accounts[i], err = s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return path, accounts
}

func passwordOf(name string) string { return "correct horse of " + name }

func TestStartupRekeysAccountsSoLookalikesAreRefused(t *testing.T) {
	path, _ := storeWithAccounts(t, db.Account{Name: "\u0412ob", NameKey: oldKeyOfCyrillicBob})
	s := start(t, map[string]string{"NOCHAT_DB": path})
	_, token := setupLink(t, s)
	p := fetch(t, "POST", s.url+"/setup", "", url.Values{"token": {token}, "name": {"Bob"}, "password": {"correct horse"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "That name is taken") || p.cookies["nochat_session"] != "" {
		t.Fatalf("set-up as Bob beside Cyrillic Вob: %d, session %q; want 400 saying the name is taken", p.status, p.cookies["nochat_session"])
	}
	if !strings.Contains(s.logs.String(), "account name keys recomputed") {
		t.Errorf("no word of the recomputed keys in the log:\n%s", s.logs)
	}
}

func TestStartupKeepsAccountsNowAlikeAndWarnsTheAdmin(t *testing.T) {
	path, accts := storeWithAccounts(t,
		db.Account{Name: "Bob", NameKey: "bob"},
		db.Account{Name: "\u0412ob", NameKey: oldKeyOfCyrillicBob},
	)
	bob, cyrillic := accts[0], accts[1]
	s := start(t, map[string]string{"NOCHAT_DB": path})
	var warning string
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "look alike") {
			warning = line
		}
	}
	for _, want := range []string{"account=2", "name=\u0412ob", "other_account=1", "other_name=Bob", "renaming"} {
		if !strings.Contains(warning, want) {
			t.Fatalf("warning %q does not say %s; log:\n%s", warning, want, s.logs)
		}
	}
	// Both still sign in by their own names: Вob's name finds Bob's key,
	// but not Bob's account.
	for _, a := range accts {
		p := fetch(t, "POST", s.url+"/signin", "", url.Values{"name": {a.Name}, "password": {passwordOf(a.Name)}})
		if p.cookies["nochat_session"] == "" {
			t.Errorf("%s cannot sign in: %d", a.Name, p.status)
		}
	}
	s.shutdown(t)

	store, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, want := range []db.Account{bob, cyrillic} {
		got, err := store.AccountByID(context.Background(), want.ID)
		if err != nil || got.Name != want.Name || got.NameKey != want.NameKey {
			t.Errorf("account %d = %q key %q, %v; want %q kept with key %q", want.ID, got.Name, got.NameKey, err, want.Name, want.NameKey)
		}
	}
}
