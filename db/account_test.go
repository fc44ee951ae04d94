package db_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nochat/db"
)

func TestFirstAdminSpendsTheSetupToken(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	if err := s.SetSetting(ctx, db.SettingSetupToken, "abc"); err != nil {
		t.Fatal(err)
	}
	first := db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "x", Created: time.Now()}
	if _, err := s.CreateFirstAdmin(ctx, first, "wrong"); !errors.Is(err, db.ErrSetupDone) {
		t.Fatalf("wrong token: err = %v, want ErrSetupDone", err)
	}
	a, err := s.CreateFirstAdmin(ctx, first, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || a.Role != db.RoleAdmin {
		t.Fatalf("first admin = %+v, want an id and the admin role", a)
	}
	second := db.Account{Name: "Bob", NameKey: "bob", PasswordHash: "x", Created: time.Now()}
	if _, err := s.CreateFirstAdmin(ctx, second, "abc"); !errors.Is(err, db.ErrSetupDone) {
		t.Fatalf("the token again: err = %v, want ErrSetupDone", err)
	}
	// A token stored again (a restart before HasAdmin was asked) opens
	// nothing once an admin exists.
	s.SetSetting(ctx, db.SettingSetupToken, "def")
	if _, err := s.CreateFirstAdmin(ctx, second, "def"); !errors.Is(err, db.ErrSetupDone) {
		t.Fatalf("a token after the first admin: err = %v, want ErrSetupDone", err)
	}
	if ok, err := s.HasAdmin(ctx); err != nil || !ok {
		t.Fatalf("HasAdmin = %v, %v; want true", ok, err)
	}
}

func TestAccountNamesAreUniqueByKey(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	if _, err := s.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateAccount(ctx, db.Account{Name: "ANN", NameKey: "ann", PasswordHash: "y", Role: db.RoleMember, Created: time.Now()})
	if !errors.Is(err, db.ErrNameTaken) {
		t.Fatalf("same key: err = %v, want ErrNameTaken", err)
	}
	a, err := s.AccountByNameKey(ctx, "ann")
	if err != nil || a.Name != "Ann" {
		t.Fatalf("AccountByNameKey = %+v, %v; want Ann", a, err)
	}
}

func TestMessagesCarryTheirSendersAccount(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	a, err := s.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.Insert(ctx, []db.Draft{{User: "Ann", UserID: a.ID, Message: "hi"}, {User: "guest", Message: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := stored[0].Message.UserID; got == nil || *got != a.ID {
		t.Fatalf("stored member message user_id = %v, want %d", got, a.ID)
	}
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(msgs)
	want := `"user":"Ann","message":"hi","timestamp":`
	if got := string(b); !strings.Contains(got, want) || !strings.Contains(got, `"user_id":null`) || !strings.Contains(got, `"user_id":1`) {
		t.Fatalf("JSON = %s, want user_id 1 for Ann and null for the guest", got)
	}
}

func TestSettingOrKeepsTheFirstValue(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	for _, offered := range []string{"first", "second"} {
		if got, err := s.SettingOr(ctx, "k", offered); err != nil || got != "first" {
			t.Fatalf("SettingOr(%q) = %q, %v; want the first value", offered, got, err)
		}
	}
	if err := s.SetSetting(ctx, "k", "third"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SettingOr(ctx, "k", "fourth"); err != nil || got != "third" {
		t.Fatalf("SettingOr after SetSetting = %q, %v; want third", got, err)
	}
}

func TestRenameShowsTheNewNameOnOldMessages(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann, err := s.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount(ctx, db.Account{Name: "Bob", NameKey: "bob", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(ctx, []db.Draft{{User: "Ann", UserID: ann.ID, Message: "hi"}, {User: "Ann", Message: "a guest called Ann, before accounts"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameAccount(ctx, ann.ID, "BOB", "bob"); !errors.Is(err, db.ErrNameTaken) {
		t.Fatalf("rename to a taken key: err = %v, want ErrNameTaken", err)
	}
	if err := s.RenameAccount(ctx, 99, "Cy", "cy"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("rename of no account: err = %v, want ErrNotFound", err)
	}
	if err := s.RenameAccount(ctx, ann.ID, "Annie", "annie"); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := msgs[0].User, "Annie"; got != want {
		t.Fatalf("member's old message by %q, want the new name %q", got, want)
	}
	if got, want := msgs[1].User, "Ann"; got != want {
		t.Fatalf("guest's message by %q, want the name it was sent under, %q", got, want)
	}
	b, _ := json.Marshal(msgs)
	if got := string(b); strings.Count(got, `"guest":false`) != 1 || strings.Count(got, `"guest":true`) != 1 {
		t.Fatalf("JSON = %s, want guest false for the member's message and true for the guest's", got)
	}
}

// A password change and the end of the other sessions are one change: if
// ending the sessions fails, the old password stands, with its sessions;
// never a new password beside the sessions it was meant to end.
func TestPasswordChangeAndItsSessionEndsAreOneTransaction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acct, err := s.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "old", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for i, token := range []string{"this device", "a stolen laptop"} {
		sess := db.Session{Kind: db.SessionAccount, AccountID: acct.ID, Created: time.Now(), LastSeen: time.Now(), Expires: time.Now().Add(time.Hour)}
		if err := s.CreateSession(ctx, []byte(token), sess, 10); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	live := func() []db.Session {
		got, err := s.SessionsOf(ctx, acct.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	keep := live()[1].ID // the older: "this device"

	// Ending the sessions fails (a trigger stands in for a full disk).
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER no_session_ends BEFORE DELETE ON sessions BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangePassword(ctx, acct.ID, "new", keep); err == nil {
		t.Fatal("the change succeeded though its sessions could not be ended")
	}
	if a, _ := s.AccountByID(ctx, acct.ID); a.PasswordHash != "old" || len(live()) != 2 {
		t.Fatalf("after the failed change: password %q with %d sessions, want the old one with both", a.PasswordHash, len(live()))
	}

	if _, err := raw.Exec(`DROP TRIGGER no_session_ends`); err != nil {
		t.Fatal(err)
	}
	ended, err := s.ChangePassword(ctx, acct.ID, "new", keep)
	if err != nil || len(ended) != 1 {
		t.Fatalf("ChangePassword = %v, %v; want the other session ended", ended, err)
	}
	if a, _ := s.AccountByID(ctx, acct.ID); a.PasswordHash != "new" || len(live()) != 1 || live()[0].ID != keep {
		t.Fatalf("after the change: password %q, sessions %+v; want the new one, this device only", a.PasswordHash, live())
	}
	if _, err := s.ChangePassword(ctx, 999, "new", 0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a change for no account = %v, want ErrNotFound", err)
	}
}

// upperKey stands in for chat.NameKey in the rekey tests: a new rule under
// which names that differ in case compare as one.
func upperKey(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty")
	}
	return strings.ToUpper(name), nil
}

func TestRekeyAccountsStoresTheNewKeys(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	// Old keys as an older rule made them; "Cy" takes the key "Bo" leaves
	// and "Bo" takes "Al"'s, the order of the updates notwithstanding.
	ann := createAccount(t, s, "Ann", "ann")
	cy := createAccount(t, s, "Cy", "BO")
	bo := createAccount(t, s, "Bo", "AL")
	al := createAccount(t, s, "Al", "al")
	changed, conflicts, err := s.RekeyAccounts(ctx, upperKey)
	if err != nil {
		t.Fatal(err)
	}
	if changed != 4 || len(conflicts) != 0 {
		t.Fatalf("RekeyAccounts = %d, %+v; want 4 changed, no conflicts", changed, conflicts)
	}
	for _, want := range []db.Account{{ID: ann.ID, NameKey: "ANN"}, {ID: cy.ID, NameKey: "CY"}, {ID: bo.ID, NameKey: "BO"}, {ID: al.ID, NameKey: "AL"}} {
		if got, err := s.AccountByID(ctx, want.ID); err != nil || got.NameKey != want.NameKey {
			t.Errorf("account %d key = %q, %v; want %q", want.ID, got.NameKey, err, want.NameKey)
		}
	}
	// The key is the one names are checked against from now on.
	if _, err := s.CreateAccount(ctx, db.Account{Name: "ANN", NameKey: "ANN", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()}); !errors.Is(err, db.ErrNameTaken) {
		t.Fatalf("ANN after rekeying: err = %v, want ErrNameTaken", err)
	}
	if changed, conflicts, err := s.RekeyAccounts(ctx, upperKey); err != nil || changed != 0 || len(conflicts) != 0 {
		t.Fatalf("RekeyAccounts again = %d, %+v, %v; want nothing to do", changed, conflicts, err)
	}
}

func TestRekeyAccountsKeepsBothOfTwoAccountsNowAlike(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	older := createAccount(t, s, "bob", "bob")      // will take BOB
	holder := createAccount(t, s, "Zed", "ZED")     // has its key already
	newer := createAccount(t, s, "Bob", "Bob")      // wants BOB too
	usurper := createAccount(t, s, "zed", "zed")    // wants ZED, older's no help
	refused := createAccount(t, s, "", "was-empty") // refused by the new rule
	changed, conflicts, err := s.RekeyAccounts(ctx, upperKey)
	if err != nil {
		t.Fatal(err)
	}
	want := []db.KeyConflict{
		{ID: newer.ID, Name: "Bob", OtherID: older.ID, OtherName: "bob"},
		{ID: usurper.ID, Name: "zed", OtherID: holder.ID, OtherName: "Zed"},
	}
	if changed != 1 || len(conflicts) != len(want) {
		t.Fatalf("RekeyAccounts = %d, %+v; want 1 changed and conflicts %+v", changed, conflicts, want)
	}
	for i := range want {
		if conflicts[i] != want[i] {
			t.Errorf("conflict %d = %+v, want %+v", i, conflicts[i], want[i])
		}
	}
	for _, a := range []struct {
		id  int64
		key string
	}{{older.ID, "BOB"}, {holder.ID, "ZED"}, {newer.ID, "Bob"}, {usurper.ID, "zed"}, {refused.ID, "was-empty"}} {
		if got, err := s.AccountByID(ctx, a.id); err != nil || got.NameKey != a.key {
			t.Errorf("account %d key = %q, %v; want %q", a.id, got.NameKey, err, a.key)
		}
	}
	// The one left on its old key is still found by its exact name, for
	// sign-in, though its new key finds the other.
	if got, err := s.AccountByName(ctx, "Bob"); err != nil || got.ID != newer.ID {
		t.Errorf("AccountByName(Bob) = %+v, %v; want account %d", got, err, newer.ID)
	}
	if _, err := s.AccountByName(ctx, "BOB"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("AccountByName(BOB) err = %v, want ErrNotFound", err)
	}
}

// createAccount stores a member account under the given key, as an older
// rule would have made it.
func createAccount(t *testing.T, s *db.Store, name, key string) db.Account {
	t.Helper()
	a, err := s.CreateAccount(context.Background(), db.Account{Name: name, NameKey: key, PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
