package handlers

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/push"
)

// pushService is a push service stand-in on loopback that plays the
// browser too: each device (a path under it) has the key pair and auth
// secret a browser would make; every push is checked (the VAPID JWT, RFC
// 8292) and decrypted (RFC 8291, aes128gcm) as the device would.
type pushService struct {
	t       *testing.T
	srv     *httptest.Server
	subject string // the VAPID subject expected
	vapid   string // the server's VAPID public key, once known

	mu       sync.Mutex
	devices  map[string]*pushDevice
	answers  map[string][]int // per device, statuses to answer next (then 201)
	received chan pushed      // every push accepted (201)
	attempts map[string]int   // every push that reached the device's path
}

type pushDevice struct {
	key  *ecdh.PrivateKey
	auth []byte
}

// pushed is one push a device received, decrypted.
type pushed struct {
	device  string
	payload chat.Notification
	urgency string
}

func newPushService(t *testing.T, subject string) *pushService {
	ps := &pushService{t: t, subject: subject, devices: map[string]*pushDevice{}, answers: map[string][]int{},
		received: make(chan pushed, 100), attempts: map[string]int{}}
	ps.srv = httptest.NewTLSServer(http.HandlerFunc(ps.serve))
	t.Cleanup(ps.srv.Close)
	return ps
}

// device makes a browser's subscription for name: its endpoint and keys,
// as PushSubscription.toJSON() gives them.
func (ps *pushService) device(name string) string {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		ps.t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	ps.mu.Lock()
	ps.devices[name] = &pushDevice{key: key, auth: auth}
	ps.mu.Unlock()
	b64 := base64.RawURLEncoding.EncodeToString
	return fmt.Sprintf(`{"endpoint": %q, "expirationTime": null, "keys": {"p256dh": %q, "auth": %q}}`,
		ps.endpoint(name), b64(key.PublicKey().Bytes()), b64(auth))
}

func (ps *pushService) endpoint(name string) string { return ps.srv.URL + "/push/" + name }

// answer makes the device's next pushes get these statuses.
func (ps *pushService) answer(name string, statuses ...int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.answers[name] = append(ps.answers[name], statuses...)
}

func (ps *pushService) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/push/")
	ps.mu.Lock()
	dev := ps.devices[name]
	ps.attempts[name]++
	status := http.StatusCreated
	if q := ps.answers[name]; len(q) > 0 {
		status, ps.answers[name] = q[0], q[1:]
	}
	ps.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if dev == nil || r.Method != "POST" {
		ps.t.Errorf("push to %s %s: no such device", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if err := ps.checkVAPID(r); err != nil {
		ps.t.Errorf("push to %s: VAPID: %v", name, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if got := r.Header.Get("Content-Encoding"); got != "aes128gcm" {
		ps.t.Errorf("push to %s: Content-Encoding %q, want aes128gcm", name, got)
	}
	if ttl := r.Header.Get("TTL"); ttl == "" || ttl == "0" {
		ps.t.Errorf("push to %s: TTL %q, want one", name, ttl)
	}
	plain, err := decryptPush(body, dev)
	if err != nil {
		ps.t.Errorf("push to %s: decrypt: %v", name, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n chat.Notification
	if err := json.Unmarshal(plain, &n); err != nil {
		ps.t.Errorf("push to %s: payload %q: %v", name, plain, err)
	}
	w.WriteHeader(status)
	if status == http.StatusCreated {
		ps.received <- pushed{device: name, payload: n, urgency: r.Header.Get("Urgency")}
	}
}

// checkVAPID checks the Authorization header per RFC 8292: "vapid t=JWT,
// k=KEY", the JWT signed with ES256 by KEY (the server's public key), for
// this push service's origin, expiring within 24 hours, with the subject.
func (ps *pushService) checkVAPID(r *http.Request) error {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "vapid ")
	if !ok {
		return fmt.Errorf("Authorization %q is not vapid", r.Header.Get("Authorization"))
	}
	var token, key string
	for part := range strings.SplitSeq(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			token = v
		case "k":
			key = v
		}
	}
	if key != ps.vapid {
		return fmt.Errorf("k = %q, want the server's key %q", key, ps.vapid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return err
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return err
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("JWT has %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return fmt.Errorf("signature: %d bytes, %v", len(sig), err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return fmt.Errorf("the JWT's signature does not verify with k")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
	}
	now := time.Now()
	switch exp := time.Unix(claims.Exp, 0); {
	case header.Alg != "ES256":
		return fmt.Errorf("alg %q, want ES256", header.Alg)
	case claims.Aud != ps.srv.URL:
		return fmt.Errorf("aud %q, want %q", claims.Aud, ps.srv.URL)
	case !exp.After(now) || exp.After(now.Add(24*time.Hour)):
		return fmt.Errorf("exp %v: want within 24 h from %v", exp, now)
	case claims.Sub != ps.subject:
		return fmt.Errorf("sub %q, want %q", claims.Sub, ps.subject)
	}
	return nil
}

// decryptPush decrypts an aes128gcm body (RFC 8188) for dev, per RFC 8291.
func decryptPush(body []byte, dev *pushDevice) ([]byte, error) {
	if len(body) < 21 {
		return nil, fmt.Errorf("body of %d bytes", len(body))
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || idlen != 65 {
		return nil, fmt.Errorf("keyid of %d bytes, want the sender's 65-byte key", idlen)
	}
	senderKey, record := body[21:21+idlen], body[21+idlen:]
	if uint32(len(record)) > rs {
		return nil, fmt.Errorf("one record of %d bytes, more than rs %d", len(record), rs)
	}
	as, err := ecdh.P256().NewPublicKey(senderKey)
	if err != nil {
		return nil, err
	}
	secret, err := dev.key.ECDH(as)
	if err != nil {
		return nil, err
	}
	keyInfo := "WebPush: info\x00" + string(dev.key.PublicKey().Bytes()) + string(senderKey)
	ikm, err := hkdf.Key(sha256.New, secret, dev.auth, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, record, nil)
	if err != nil {
		return nil, err
	}
	// The last record: the data, the delimiter 2, then zeros.
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		return nil, fmt.Errorf("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}

// next waits for the next push accepted.
func (ps *pushService) next(what string) pushed {
	ps.t.Helper()
	select {
	case p := <-ps.received:
		return p
	case <-time.After(10 * time.Second):
		ps.t.Fatalf("waiting for a push: %s", what)
	}
	return pushed{}
}

// pushServer starts the handlers with Web Push pointed at ps, people away
// after grace, for accounts Ann (admin), Bob and Cid.
func pushServer(t *testing.T, ps *pushService, grace time.Duration) (*httptest.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nochat.db")
	srv, _, _, _ := testServer{
		path:     path,
		accounts: map[string]string{"Ann": db.RoleAdmin, "Bob": db.RoleMember, "Cid": db.RoleMember},
		hub:      chat.Options{PushGrace: grace},
		push: &push.Options{Subject: ps.subject, AllowLoopback: true, RootCAs: certPool(ps.srv),
			Backoff: 10 * time.Millisecond},
	}.start(t)
	code, body := call(t, srv, "GET", "/push/key", "", "", nil)
	var key struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(body), &key); code != http.StatusOK || err != nil || key.Key == "" {
		t.Fatalf("GET /push/key: %d %s", code, body)
	}
	ps.vapid = key.Key
	return srv, path
}

// subscribe is POST /push/subscriptions of a new device of session's.
func subscribe(t *testing.T, srv *httptest.Server, ps *pushService, session, device string) {
	t.Helper()
	if code, body := call(t, srv, "POST", "/push/subscriptions", session, ps.device(device), nil); code != http.StatusCreated {
		t.Fatalf("subscribing %s: %d %s", device, code, body)
	}
}

// subscriptions counts the stored subscriptions at endpoint, read from
// the database file.
func subscriptions(t *testing.T, path, endpoint string) int {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow("SELECT count(*) FROM push_subscriptions WHERE endpoint = ?", endpoint).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func certPool(srv *httptest.Server) *x509.CertPool {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

// wantPush fails unless p is to device, for the message id of room slug,
// titled and reading as given.
func wantPush(t *testing.T, p pushed, device, title, body, slug string, id int64) {
	t.Helper()
	want := chat.Notification{Title: title, Body: body, URL: fmt.Sprintf("/r/%s/%d", slug, id), Tag: fmt.Sprintf("nochat-%d", id)}
	if p.device != device || p.payload != want {
		t.Fatalf("push to %s: %+v, want to %s: %+v", p.device, p.payload, device, want)
	}
}

func TestPushReachesWhoIsAwayForWhatTheyAskFor(t *testing.T) {
	ps := newPushService(t, "mailto:ops@example.org")
	// Away as soon as the last socket closes: the rule's minute is the
	// next test's.
	srv, path := pushServer(t, ps, time.Nanosecond)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	cid := signInAs(t, srv, "Cid", "password of Cid", firefox)
	subscribe(t, srv, ps, bob, "bob")
	subscribe(t, srv, ps, cid, "cid")

	annSocket := openSocket(t, srv, ann)
	frame(t, annSocket, "hello")
	bobSocket := openSocket(t, srv, bob)
	frame(t, bobSocket, "hello")

	// Bob is online: a mention of him pushes nothing; his own message
	// pushes nothing to him, and reaches Cid (away, mentioned).
	sendTo(t, srv, ann, "lobby", "@Bob are you there?")
	m := sendTo(t, srv, bob, "lobby", "@Cid lunch at noon")
	// Pushes go out in order, one at a time: Cid's for the later message
	// means none for the earlier one is still coming.
	p := ps.next("Cid mentioned")
	wantPush(t, p, "cid", "Bob in Lobby", "@Cid lunch at noon", "lobby", m)
	if p.urgency != "high" {
		t.Errorf("a mention's Urgency = %q, want high", p.urgency)
	}

	// Bob closes his tab: once Ann sees him gone, he is away.
	bobSocket.Close()
	waitPresence(t, annSocket, "Ann 1 | 1 online: Ann")
	m = sendTo(t, srv, ann, "lobby", "@Bob "+strings.Repeat("long lunch ", 20))
	wantPush(t, ps.next("Bob mentioned while away"), "bob", "Ann in Lobby", "@Bob "+strings.Repeat("long lunch ", 20)[:114]+"…", "lobby", m)

	// At "mentions" (the default) a plain message pushes nothing; at
	// "all" it does (Cid), and at "none" not even a mention (Bob).
	if code, body := call(t, srv, "PUT", "/rooms/lobby/notify", cid, `{"level": "all"}`, nil); code != http.StatusOK || !strings.Contains(body, `"level":"all"`) {
		t.Fatalf("Cid's level all: %d %s", code, body)
	}
	if code, body := call(t, srv, "PUT", "/rooms/lobby/notify", bob, `{"level": "none"}`, nil); code != http.StatusOK {
		t.Fatalf("Bob's level none: %d %s", code, body)
	}
	sendTo(t, srv, ann, "lobby", "@Bob still there?")
	m = sendTo(t, srv, ann, "lobby", "a plain message")
	p = ps.next("Cid's level all, the mention of Bob")
	if p.device != "cid" || p.payload.Body != "@Bob still there?" {
		t.Fatalf("the first push after the levels changed: %+v, want Cid's of the mention of Bob", p)
	}
	wantPush(t, ps.next("Cid's level all, a plain message"), "cid", "Ann in Lobby", "a plain message", "lobby", m)
	if code, _ := call(t, srv, "PUT", "/rooms/lobby/notify", bob, `{"level": "all"}`, nil); code != http.StatusOK {
		t.Fatalf("Bob's level all: %d", code)
	}
	if code, _ := call(t, srv, "PUT", "/rooms/lobby/notify", cid, `{"level": "none"}`, nil); code != http.StatusOK {
		t.Fatalf("Cid's level none: %d", code)
	}
	// Edits and reactions push nothing, even at "all": the next push is
	// the next message's.
	edited := sendTo(t, srv, ann, "lobby", "a typo")
	wantPush(t, ps.next("Bob's level all"), "bob", "Ann in Lobby", "a typo", "lobby", edited)
	if code, body := call(t, srv, "PATCH", fmt.Sprintf("/rooms/lobby/messages/%d", edited), ann, `{"message": "no typo"}`, nil); code != http.StatusOK {
		t.Fatalf("editing: %d %s", code, body)
	}
	if code, body := call(t, srv, "POST", fmt.Sprintf("/rooms/lobby/messages/%d/reactions", edited), ann, `{"emoji": "👍"}`, nil); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("reacting: %d %s", code, body)
	}
	m = sendTo(t, srv, ann, "lobby", "plain again")
	p = ps.next("Bob's level all, after an edit and a reaction")
	wantPush(t, p, "bob", "Ann in Lobby", "plain again", "lobby", m)
	if p.urgency == "high" {
		t.Errorf("a plain message's Urgency = high, want lower")
	}

	// The push service is busy once (503), then takes it: sent again,
	// delivered once.
	ps.answer("bob", http.StatusServiceUnavailable)
	m = sendTo(t, srv, ann, "lobby", "after a busy spell")
	wantPush(t, ps.next("Bob's retried push"), "bob", "Ann in Lobby", "after a busy spell", "lobby", m)

	// A direct message pushes at "mentions", titled by its sender only.
	if code, _ := call(t, srv, "PUT", "/rooms/lobby/notify", bob, `{"level": "mentions"}`, nil); code != http.StatusOK {
		t.Fatalf("Bob's level mentions: %d", code)
	}
	dm := createRoom(t, srv, ann, `{"kind": "direct", "members": ["Bob"]}`, http.StatusCreated)
	m = sendTo(t, srv, ann, dm.Slug, "just between us")
	wantPush(t, ps.next("a direct message"), "bob", "Ann", "just between us", dm.Slug, m)

	// The push service says Bob's subscription is gone (410): deleted.
	ps.answer("bob", http.StatusGone)
	sendTo(t, srv, ann, dm.Slug, "are you still subscribed?")
	for i := 0; subscriptions(t, path, ps.endpoint("bob")) != 0; i++ {
		if i == 500 {
			t.Fatal("Bob's subscription is still stored after the push service answered 410")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := subscriptions(t, path, ps.endpoint("cid")); n != 1 {
		t.Fatalf("Cid's subscription: %d stored, want 1", n)
	}
	ps.mu.Lock()
	attempts := ps.attempts["bob"]
	ps.mu.Unlock()
	// A mention, two plain messages, the 503 and its retry, the direct
	// message, the 410.
	if attempts != 7 {
		t.Errorf("Bob's device was reached %d times, want 7", attempts)
	}
	select {
	case p := <-ps.received:
		t.Fatalf("an extra push: %+v", p)
	default:
	}
}

func TestNoPushWithinAMinuteOfTheLastSocket(t *testing.T) {
	ps := newPushService(t, "https://chat.example.org/contact")
	srv, _ := pushServer(t, ps, chat.DefaultPushGrace)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	cid := signInAs(t, srv, "Cid", "password of Cid", firefox)
	subscribe(t, srv, ps, bob, "bob")
	subscribe(t, srv, ps, cid, "cid")
	annSocket := openSocket(t, srv, ann)
	frame(t, annSocket, "hello")
	bobSocket := openSocket(t, srv, bob)
	frame(t, bobSocket, "hello")
	bobSocket.Close()
	waitPresence(t, annSocket, "Ann 1 | 1 online: Ann")

	// Bob left seconds ago; Cid has not been here since the server
	// started. Pushes go out one at a time, in order: Cid's of the second
	// message means Bob's of the first is not coming.
	sendTo(t, srv, ann, "lobby", "@Bob @Cid meeting moved")
	p := ps.next("Cid mentioned")
	if p.device != "cid" {
		t.Fatalf("push to %s, want Cid: Bob closed his tab under a minute ago", p.device)
	}
	m := sendTo(t, srv, ann, "lobby", "@Cid and again")
	wantPush(t, ps.next("Cid again"), "cid", "Ann in Lobby", "@Cid and again", "lobby", m)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if n := ps.attempts["bob"]; n != 0 {
		t.Fatalf("Bob's device was pushed to %d times within a minute of his last socket", n)
	}
}

func TestNotifyAndPushRoutesRefuseWhoMayNotCallThem(t *testing.T) {
	ps := newPushService(t, "mailto:ops@example.org")
	srv, path := pushServer(t, ps, time.Nanosecond)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	private := createRoom(t, srv, ann, `{"name": "Plans", "kind": "private"}`, http.StatusCreated)
	open := createRoom(t, srv, ann, `{"name": "Garden", "kind": "open"}`, http.StatusCreated)
	evil := map[string]string{"Origin": "https://evil.example"}
	sub := ps.device("ann")

	for _, c := range []struct {
		name, method, path, session, body string
		header                            map[string]string
		want                              int
	}{
		{"a guest's level", "PUT", "/rooms/lobby/notify", "", `{"level": "all"}`, nil, http.StatusUnauthorized},
		{"a level from another site", "PUT", "/rooms/lobby/notify", bob, `{"level": "all"}`, evil, http.StatusForbidden},
		{"a level in a room not one's own", "PUT", "/rooms/" + private.Slug + "/notify", bob, `{"level": "all"}`, nil, http.StatusNotFound},
		{"a level in an open room one is not in", "PUT", "/rooms/" + open.Slug + "/notify", bob, `{"level": "all"}`, nil, http.StatusNotFound},
		{"no such level", "PUT", "/rooms/lobby/notify", bob, `{"level": "loud"}`, nil, http.StatusBadRequest},
		{"a guest's subscription", "POST", "/push/subscriptions", "", sub, nil, http.StatusUnauthorized},
		{"a subscription from another site", "POST", "/push/subscriptions", bob, sub, evil, http.StatusForbidden},
		{"a guest's unsubscribe", "DELETE", "/push/subscriptions", "", `{"endpoint": "x"}`, nil, http.StatusUnauthorized},
		{"an unsubscribe from another site", "DELETE", "/push/subscriptions", bob, `{"endpoint": "x"}`, evil, http.StatusForbidden},
		{"plain http", "POST", "/push/subscriptions", bob, strings.Replace(sub, "https://", "http://", 1), nil, http.StatusBadRequest},
		{"an IP address", "POST", "/push/subscriptions", bob, strings.Replace(sub, "127.0.0.1", "10.0.0.7", 1), nil, http.StatusBadRequest},
		{"a long endpoint", "POST", "/push/subscriptions", bob, strings.Replace(sub, "/push/ann", "/push/"+strings.Repeat("a", 1024), 1), nil, http.StatusBadRequest},
		{"a key that is no point", "POST", "/push/subscriptions", bob, `{"endpoint": "https://push.example/x", "keys": {"p256dh": "` + base64.RawURLEncoding.EncodeToString(make([]byte, 65)) + `", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}`, nil, http.StatusBadRequest},
		{"a short auth", "POST", "/push/subscriptions", bob, strings.Replace(sub, `"auth": "`, `"auth": "AA`, 1), nil, http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := call(t, srv, c.method, c.path, c.session, c.body, c.header)
			if code != c.want || !strings.Contains(body, `"error"`) {
				t.Fatalf("%s %s: %d %s, want %d and an error", c.method, c.path, code, body, c.want)
			}
		})
	}

	// Ann's subscription: Bob cannot remove it, Ann can.
	if code, body := call(t, srv, "POST", "/push/subscriptions", ann, sub, nil); code != http.StatusCreated {
		t.Fatalf("Ann subscribing: %d %s", code, body)
	}
	if code, body := call(t, srv, "POST", "/push/subscriptions", ann, sub, nil); code != http.StatusCreated || subscriptions(t, path, ps.endpoint("ann")) != 1 {
		t.Fatalf("Ann subscribing again: %d %s, want 201 and still one subscription", code, body)
	}
	del := fmt.Sprintf(`{"endpoint": %q}`, ps.endpoint("ann"))
	if code, body := call(t, srv, "DELETE", "/push/subscriptions", bob, del, nil); code != http.StatusNotFound {
		t.Fatalf("Bob removing Ann's subscription: %d %s, want 404", code, body)
	}
	if n := subscriptions(t, path, ps.endpoint("ann")); n != 1 {
		t.Fatalf("Ann's subscription after Bob's try: %d stored, want 1", n)
	}
	if code, body := call(t, srv, "DELETE", "/push/subscriptions", ann, del, nil); code != http.StatusNoContent {
		t.Fatalf("Ann removing her subscription: %d %s, want 204", code, body)
	}
	if n := subscriptions(t, path, ps.endpoint("ann")); n != 0 {
		t.Fatalf("Ann's subscription after she removed it: %d stored, want 0", n)
	}

	// The level shows in Bob's other tabs, the room list and the page;
	// signing out ends the session's subscriptions.
	bobSocket := openSocket(t, srv, bob)
	frame(t, bobSocket, "hello")
	if code, _ := call(t, srv, "PUT", "/rooms/lobby/notify", bob, `{"level": "none"}`, nil); code != http.StatusOK {
		t.Fatalf("Bob's level none: %d", code)
	}
	if f := frame(t, bobSocket, "notify"); f["room"] != float64(db.DefaultRoom) || f["level"] != "none" {
		t.Fatalf("Bob's tab heard %v, want the lobby's level none", f)
	}
	code, body := call(t, srv, "GET", "/rooms", bob, "", nil)
	var rooms []struct {
		Slug   string `json:"slug"`
		Notify string `json:"notify"`
	}
	if err := json.Unmarshal([]byte(body), &rooms); code != http.StatusOK || err != nil || len(rooms) == 0 || rooms[0].Slug != "lobby" || rooms[0].Notify != "none" {
		t.Fatalf("GET /rooms: %d %s, want the lobby first with notify none", code, body)
	}
	if code, _, page := as(t, srv, "GET", "/", bob, nil); code != http.StatusOK || !strings.Contains(page, `data-notify="none"`) {
		t.Fatalf("the page's room list does not carry Bob's level: %d", code)
	}
	subscribe(t, srv, ps, bob, "bob")
	if code, _, _ := as(t, srv, "POST", "/signout", bob, url.Values{}); code != http.StatusSeeOther && code != http.StatusOK && code != http.StatusFound {
		t.Fatalf("signing out: %d", code)
	}
	if n := subscriptions(t, path, ps.endpoint("bob")); n != 0 {
		t.Fatalf("Bob's subscription after signing out: %d stored, want 0", n)
	}
}
