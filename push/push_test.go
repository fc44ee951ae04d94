package push_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/db/dbtest"
	"nochat/push"
)

func newStore(t *testing.T) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// keys are a browser's subscription keys, base64url.
func keys(t *testing.T) (string, string) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return b64(k.PublicKey().Bytes()), b64(make([]byte, 16))
}

func TestSubscriptionsNeedAPushServiceByName(t *testing.T) {
	s, err := push.New(context.Background(), newStore(t), push.Options{Subject: "mailto:ops@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	p256dh, auth := keys(t)
	for _, c := range []struct{ name, endpoint, p256dh, auth string }{
		{"http", "http://push.example/x", p256dh, auth},
		{"no host", "https:///x", p256dh, auth},
		{"IPv4", "https://192.168.1.1/x", p256dh, auth},
		{"loopback", "https://127.0.0.1:8443/x", p256dh, auth},
		{"IPv6", "https://[::1]/x", p256dh, auth},
		{"mapped IPv4", "https://[::ffff:10.0.0.1]/x", p256dh, auth},
		{"too long", "https://push.example/" + strings.Repeat("x", push.MaxEndpointBytes), p256dh, auth},
		{"a user in it", "https://me:pw@push.example/x", p256dh, auth},
		{"a short key", "https://push.example/x", p256dh[:40], auth},
		{"a long auth", "https://push.example/x", p256dh, auth + "AAAA"},
	} {
		if err := s.CheckSubscription(c.endpoint, c.p256dh, c.auth); err == nil {
			t.Errorf("%s: %s accepted", c.name, c.endpoint)
		}
	}
	if err := s.CheckSubscription("https://fcm.googleapis.com/fcm/send/abc", p256dh, auth); err != nil {
		t.Errorf("a push service's endpoint: %v", err)
	}
}

// A name that resolves into the machine or its network is refused where
// it is dialled: "localhost" passes the check of names, and must not be
// posted to.
func TestNoPushToALoopbackAddressByName(t *testing.T) {
	var reached atomic.Int64
	stand := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer stand.Close()
	store, ctx := newStore(t), context.Background()
	acct, err := store.CreateAccount(ctx, db.Account{Name: "ann", NameKey: "ann", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateSession(ctx, []byte("t"), db.Session{Kind: db.SessionAccount, AccountID: acct.ID, Created: time.Now(), Expires: time.Now().Add(time.Hour)}, 8); err != nil {
		t.Fatal(err)
	}
	sessions, err := store.SessionsOf(ctx, acct.ID, time.Now())
	if err != nil || len(sessions) != 1 {
		t.Fatal(sessions, err)
	}
	endpoint := strings.Replace(stand.URL, "127.0.0.1", "localhost", 1) + "/x"
	// The stand-in's certificate is trusted: only the address stops it.
	s, err := push.New(ctx, store, push.Options{Subject: "mailto:ops@example.org",
		RootCAs: stand.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	p256dh, auth := keys(t)
	if err := s.CheckSubscription(endpoint, p256dh, auth); err != nil {
		t.Fatalf("%s refused by its name: %v", endpoint, err)
	}
	if err := store.SavePushSubscription(ctx, db.PushSubscription{SessionID: sessions[0].ID, AccountID: acct.ID, Endpoint: endpoint, P256dh: p256dh, Auth: auth, Created: time.Now()}, 10); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	s.Push(acct.ID, chat.Notification{Title: "t", Body: "b", URL: "/r/lobby/1", Tag: "nochat-1"})
	for i := 0; ; i++ {
		if _, _, _, failed := s.Stats(); failed == 1 {
			break
		}
		if i == 500 {
			t.Fatal("the push to localhost was neither refused nor given up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the server posted to localhost %d times", n)
	}
}

// On a cluster the nodes push with one VAPID key, the one the first of
// them put in the log: a page subscribes with the key of whichever node
// answered it, and another node may push to it. Until its node has the
// cluster's key, a sender has none to give out.
func TestTheNodesOfAClusterShareOneKey(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := dbtest.NewLog(0)
	var senders []*push.Sender
	for range 2 {
		store := newStore(t)
		w, err := db.NewReplicatedWriter(store, log, 0, func(db.Commit[int]) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		s, err := push.New(ctx, store, push.Options{Subject: "mailto:ops@example.org", Shared: true})
		if err != nil {
			t.Fatal(err)
		}
		if k := s.PublicKey(); k != "" {
			t.Fatalf("a cluster's node gives out key %q before its cluster agreed one", k)
		}
		go s.Run(ctx)
		senders = append(senders, s)
	}
	var got [2]string
	for deadline := time.Now().Add(10 * time.Second); got[0] == "" || got[1] == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the nodes' keys after 10 s: %q", got)
		}
		got = [2]string{senders[0].PublicKey(), senders[1].PublicKey()}
	}
	if got[0] != got[1] {
		t.Errorf("the nodes push with %q and %q, want one key", got[0], got[1])
	}
}
