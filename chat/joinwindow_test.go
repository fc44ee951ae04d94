package chat_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// A socket lets its sign-in in at the upgrade and joins the broadcaster a
// moment later. Ending the sign-in (or the account) in that moment closes
// only the sockets the broadcaster has: the new one must close all the same.
func TestEndingASignInAsItsSocketOpensClosesIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(ctx context.Context, store *db.Store, hub *chat.Hub, acct db.Account, session int64) error
		code int
		// noSession: the socket speaks for the account with no sign-in
		// session (as a bot's does), so that only the account can end it.
		noSession bool
	}{
		{"signed out", func(ctx context.Context, store *db.Store, hub *chat.Hub, acct db.Account, session int64) error {
			if err := store.DeleteSessionOf(ctx, acct.ID, session); err != nil {
				return err
			}
			if n := hub.EndSessions(session); n != 0 {
				t.Errorf("EndSessions closed %d sockets before the socket joined", n)
			}
			return nil
		}, websocket.ClosePolicyViolation, false},
		{"deactivated", func(ctx context.Context, store *db.Store, hub *chat.Hub, acct db.Account, _ int64) error {
			if _, _, err := store.Deactivate(ctx, acct.ID, time.Now()); err != nil {
				return err
			}
			hub.EndAccount(acct.ID, "deactivated")
			return nil
		}, chat.CloseAccountEnded, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoom(t, chat.Options{})
			ctx := context.Background()
			now := time.Now()
			acct, err := r.store.CreateAccount(ctx, db.Account{Name: "Ada", NameKey: "ada", Role: db.RoleMember, Created: now})
			if err != nil {
				t.Fatal(err)
			}
			hash := sha256.Sum256([]byte("ada's token"))
			if err := r.store.CreateSession(ctx, hash[:], db.Session{Kind: db.SessionAccount, AccountID: acct.ID, Created: now, Expires: now.Add(time.Hour)}, 10); err != nil {
				t.Fatal(err)
			}
			sess, err := r.store.SessionByToken(ctx, hash[:], now)
			if err != nil {
				t.Fatal(err)
			}
			id := chat.Identity{UserID: acct.ID, Name: acct.Name, Role: acct.Role, Session: sess.ID}
			if tc.noSession {
				id.Session = 0
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.hub.ServeWSAs(w, req, id) }))
			defer srv.Close()
			chat.WhileJoining(r.hub, func() {
				if err := tc.end(ctx, r.store, r.hub, acct, sess.ID); err != nil {
					t.Error(err)
				}
			})

			helloThenClose(t, srv, tc.code)
		})
	}
}

// The same for a bot whose token is replaced as its socket opens.
func TestReplacingABotTokenAsItsSocketOpensClosesIt(t *testing.T) {
	r := newRoom(t, chat.Options{})
	ctx := context.Background()
	old, fresh := sha256.Sum256([]byte("old token")), sha256.Sum256([]byte("new token"))
	bot, err := r.store.CreateBot(ctx, "Heron", "heron", []int64{db.DefaultRoom}, old[:], "nochat_bot_ab", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id := chat.Identity{UserID: bot.ID, Name: bot.Name, Role: db.RoleBot, TokenHash: old[:]}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.hub.ServeWSAs(w, req, id) }))
	defer srv.Close()
	chat.WhileJoining(r.hub, func() {
		if err := r.store.SetBotToken(ctx, bot.ID, fresh[:], "nochat_bot_cd"); err != nil {
			t.Error(err)
		}
		r.hub.EndAccount(bot.ID, chat.CloseBotRevoked)
	})
	helloThenClose(t, srv, chat.CloseAccountEnded)
}

// helloThenClose opens a nochat.v1 socket on srv, and wants its hello and
// then a close with code.
func helloThenClose(t *testing.T, srv *httptest.Server, code int) {
	t.Helper()
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &wsClient{t: t, conn: conn, proto: "nochat.v1"}
	c.expect("hello")
	c.expectClose(code)
}

// The same for an address banned as a guest's socket from it opens: the
// door let the socket in, the ban's CloseAddresses ran before it joined,
// and it joins to a close saying why, never to the room.
func TestBanningAnAddressAsItsSocketOpensClosesIt(t *testing.T) {
	var banned atomic.Bool
	r := newRoom(t, chat.Options{Refused: func(ip string) bool { return banned.Load() && chat.AddressKey(ip) == "127.0.0.1" }})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.hub.ServeWSAs(w, req, chat.Identity{}) }))
	defer srv.Close()
	chat.WhileJoining(r.hub, func() {
		banned.Store(true)
		if n := r.hub.CloseAddresses([]string{"127.0.0.1"}, chat.CloseAddressBanned); n != 0 {
			t.Errorf("CloseAddresses closed %d sockets before the socket joined", n)
		}
	})
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != chat.CloseAccountEnded || ce.Text != chat.CloseAddressBanned {
		t.Fatalf("the socket opened as its address was banned: %q, %v; want a close %d saying %q", b, err, chat.CloseAccountEnded, chat.CloseAddressBanned)
	}
	if online := r.hub.Snapshot(10).Online; online != 0 {
		t.Fatalf("%d online after the banned socket closed, want 0", online)
	}
}
