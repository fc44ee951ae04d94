package db_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"nochat/db"
)

func newAccount(t *testing.T, s *db.Store, name, role string) db.Account {
	t.Helper()
	a, err := s.CreateAccount(context.Background(), db.Account{Name: name, NameKey: name, PasswordHash: "x", Role: role, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newSession(t *testing.T, s *db.Store, token byte, kind string, acct int64, addr string, expires time.Time) {
	t.Helper()
	if err := s.CreateSession(context.Background(), []byte{token}, db.Session{Kind: kind, AccountID: acct, Created: time.Now(), Expires: expires, Address: addr}, 32); err != nil {
		t.Fatal(err)
	}
}

func TestLastAdminKeepsTheRole(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	ann := newAccount(t, s, "ann", db.RoleAdmin)
	bob := newAccount(t, s, "bob", db.RoleMember)
	if _, err := s.SetRole(ctx, ann.ID, db.RoleMember); !errors.Is(err, db.ErrLastAdmin) {
		t.Fatalf("demote the last admin: err = %v, want ErrLastAdmin", err)
	}
	if _, _, err := s.Deactivate(ctx, ann.ID, time.Now()); !errors.Is(err, db.ErrLastAdmin) {
		t.Fatalf("deactivate the last admin: err = %v, want ErrLastAdmin", err)
	}
	if _, err := s.SetRole(ctx, bob.ID, db.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRole(ctx, ann.ID, db.RoleMember); err != nil {
		t.Fatalf("demote an admin beside another: %v", err)
	}
	if got, _ := s.AccountByID(ctx, ann.ID); got.Role != db.RoleMember {
		t.Fatalf("role = %q, want member", got.Role)
	}
}

func TestDeactivateEndsSessions(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	newAccount(t, s, "ann", db.RoleAdmin)
	bob := newAccount(t, s, "bob", db.RoleMember)
	later := time.Now().Add(time.Hour)
	newSession(t, s, 1, db.SessionAccount, bob.ID, "192.0.2.1", later)
	newSession(t, s, 2, db.SessionReset, bob.ID, "", later)
	_, ended, err := s.Deactivate(ctx, bob.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 {
		t.Fatalf("ended %v, want the one sign-in session", ended)
	}
	if _, err := s.SessionByToken(ctx, []byte{2}, time.Now()); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("reset link after deactivation: err = %v, want ErrNotFound", err)
	}
	if got, _ := s.AccountByID(ctx, bob.ID); !got.Deactivated {
		t.Fatal("bob is not deactivated")
	}
	people, err := s.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if people[1].LastSeen.IsZero() {
		t.Fatal("bob's last seen went with his sessions")
	}
	if _, err := s.Reactivate(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AccountByID(ctx, bob.ID); got.Deactivated {
		t.Fatal("bob is still deactivated")
	}
}

func TestBanAndUnban(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	newAccount(t, s, "ann", db.RoleAdmin)
	bob := newAccount(t, s, "bob", db.RoleMember)
	newSession(t, s, 1, db.SessionAccount, bob.ID, "192.0.2.1", time.Now().Add(time.Hour))
	if _, err := s.Insert(ctx, []db.Draft{{User: "bob", UserID: bob.ID, Message: "spam"}, {User: "guest", Message: "hi"}, {User: "bob", UserID: bob.ID, Message: "more"}}); err != nil {
		t.Fatal(err)
	}
	_, ended, addrs, err := s.Ban(ctx, bob.ID, []string{"2001:db8::/64", "198.51.100.9"}, []string{"198.51.100.9"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := addrs, []string{"192.0.2.1", "2001:db8::/64"}; !slices.Equal(got, want) {
		t.Fatalf("banned addresses = %v, want %v", got, want)
	}
	if len(ended) != 1 {
		t.Fatalf("ended %v, want one session", ended)
	}
	if _, err := s.Reactivate(ctx, bob.ID); !errors.Is(err, db.ErrBanned) {
		t.Fatalf("reactivate banned: err = %v, want ErrBanned", err)
	}
	// What a ban that deletes them deletes, a batch at a time, oldest first.
	var after int64
	for _, c := range []struct {
		limit int
		want  []string
	}{{1, []string{"spam"}}, {10, []string{"more"}}, {10, nil}} {
		msgs, err := s.MessagesOf(ctx, bob.ID, after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, m.Message)
			after = m.ID
		}
		if !slices.Equal(got, c.want) {
			t.Fatalf("MessagesOf(bob, after %d, %d) = %q, want %q", after, c.limit, got, c.want)
		}
	}
	if all, _ := s.MessagesOf(ctx, bob.ID, 0, 10); len(all) != 2 {
		t.Fatalf("MessagesOf(bob, 0, 10): %d messages, want both", len(all))
	}
	if _, err := s.DeleteMessagesOfInOneCommand(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Fatalf("count = %d, want the guest's one", n)
	}
	people, err := s.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(people) != 2 || !people[1].Banned || !people[1].Deactivated || people[1].Messages != 0 {
		t.Fatalf("people = %+v", people)
	}
	if _, freed, err := s.Unban(ctx, bob.ID); err != nil || len(freed) != 2 {
		t.Fatalf("unban: freed %v, err %v", freed, err)
	}
	if left, _ := s.BannedAddresses(ctx); len(left) != 0 {
		t.Fatalf("banned after unban: %v", left)
	}
}

func TestResetPasswordOnce(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	bob := newAccount(t, s, "bob", db.RoleMember)
	later := time.Now().Add(time.Hour)
	newSession(t, s, 1, db.SessionAccount, bob.ID, "", later)
	newSession(t, s, 2, db.SessionReset, bob.ID, "", later)
	acct, ended, err := s.ResetPassword(ctx, []byte{2}, "new", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if acct.ID != bob.ID || len(ended) != 1 {
		t.Fatalf("reset: account %d, ended %v", acct.ID, ended)
	}
	if got, _ := s.AccountByID(ctx, bob.ID); got.PasswordHash != "new" {
		t.Fatalf("hash = %q", got.PasswordHash)
	}
	if _, _, err := s.ResetPassword(ctx, []byte{2}, "again", time.Now()); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("second use: err = %v, want ErrNotFound", err)
	}
	newSession(t, s, 3, db.SessionReset, bob.ID, "", time.Now().Add(time.Minute))
	if _, _, err := s.ResetPassword(ctx, []byte{3}, "late", time.Now().Add(2*time.Minute)); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("expired: err = %v, want ErrNotFound", err)
	}
}

func TestAuditKeepsTheNewest(t *testing.T) {
	s, ctx := newTestStore(t), context.Background()
	for i := range db.MaxAudit + 5 {
		if err := s.Audit(ctx, db.AuditEntry{At: time.Now(), Actor: "ann", Action: "role", Target: "bob", Detail: string(rune('a' + i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := s.AuditLog(ctx, db.MaxAudit*2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(log), db.MaxAudit; got != want {
		t.Fatalf("kept %d, want %d", got, want)
	}
	if log[0].ID < log[1].ID {
		t.Fatal("not newest first")
	}
}

// TestABotIsSeenWhenItsTokenOrWebhookIsUsed: a bot has no session, so the
// People list's "Last seen" is when its token, or a webhook posting as it,
// was last used.
func TestABotIsSeenWhenItsTokenOrWebhookIsUsed(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	created := time.UnixMilli(1_700_000_000_000)
	bot, err := s.CreateBot(ctx, "Heron", "heron", nil, []byte("token hash"), "nochat_bot_1", created)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := s.CreateWebhook(ctx, db.DefaultRoom, "Doorbell", "doorbell", []byte("secret hash"), "Ann", created)
	if err != nil {
		t.Fatal(err)
	}
	seen := func(id int64) time.Time {
		t.Helper()
		people, err := s.People(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range people {
			if p.ID == id {
				return p.LastSeen
			}
		}
		t.Fatalf("account %d not in People", id)
		return time.Time{}
	}
	if got := seen(bot.ID); !got.IsZero() {
		t.Fatalf("a bot never used: last seen %v, want never", got)
	}
	used := created.Add(time.Hour)
	if err := s.TouchBot(ctx, bot.ID, used); err != nil {
		t.Fatal(err)
	}
	if got := seen(bot.ID); !got.Equal(used) {
		t.Fatalf("a bot whose token was used at %v: last seen %v", used, got)
	}
	if err := s.TouchWebhook(ctx, hook.ID, used.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := seen(hook.AccountID); !got.Equal(used.Add(time.Minute)) {
		t.Fatalf("a webhook's account, posted through at %v: last seen %v", used.Add(time.Minute), got)
	}
}
