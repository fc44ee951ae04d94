package chat_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

type room struct {
	hub   *chat.Hub
	store *db.Store
	srv   *httptest.Server
	url   string
	tls   *tls.Config // dial's, for a room served over TLS; nil for none
}

// newRoom runs a hub over a real database file behind a real HTTP server.
func newRoom(t testing.TB, opts chat.Options) *room {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return serveRoom(t, store, opts)
}

// serveRoom is newRoom over a store the test opened (and perhaps filled);
// the store is closed with the room.
func serveRoom(t testing.TB, store *db.Store, opts chat.Options) *room {
	t.Helper()
	return serveRoomOn(t, store, opts, nil)
}

// serveRoomOn is serveRoom with the server's listener wrapped by wrap
// (nil: as it is).
func serveRoomOn(t testing.TB, store *db.Store, opts chat.Options, wrap func(net.Listener) net.Listener) *room {
	t.Helper()
	if opts.Log == nil && os.Getenv("NOCHAT_TEST_LOG") != "" {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	hub, err := chat.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(hub.ServeWS))
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Close(ctx)
		store.Close()
	})
	return &room{hub: hub, store: store, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/"}
}

// newTLSRoom is newRoom served over TLS, with a certificate of its own
// that dial trusts.
func newTLSRoom(t *testing.T, opts chat.Options) *room {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	r := serveRoomOn(t, store, opts, func(l net.Listener) net.Listener { return tls.NewListener(l, cfg) })
	r.url, r.tls = "wss"+strings.TrimPrefix(r.url, "ws"), &tls.Config{InsecureSkipVerify: true}
	return r
}

type frame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type msgData struct {
	ID        int64    `json:"id"`
	User      string   `json:"user"`
	Message   string   `json:"message"`
	Timestamp int64    `json:"timestamp"`
	CID       string   `json:"cid"`
	Code      string   `json:"code"`
	Session   string   `json:"session"`
	LatestID  int64    `json:"latest_id"`
	Online    int      `json:"online"`
	Users     []string `json:"users"`
}

type wsClient struct {
	t     *testing.T
	conn  *websocket.Conn
	proto string
	hello msgData // the hello a nochat.v1 client read first
}

func (r *room) dial(t *testing.T, proto, query string) *wsClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: readWait, TLSClientConfig: r.tls}
	conn, resp, err := d.Dial(r.url+query, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", proto, err, resp)
	}
	if got := conn.Subprotocol(); got != proto {
		t.Fatalf("subprotocol = %q, want %q", got, proto)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{t: t, conn: conn, proto: proto}
	if proto == "nochat.v1" {
		c.hello = c.expect("hello")
	}
	return c
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	var err error
	if s, ok := v.(string); ok {
		err = c.conn.WriteMessage(websocket.TextMessage, []byte(s))
	} else {
		err = c.conn.WriteJSON(v)
	}
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) say(text, cid string) {
	c.t.Helper()
	c.send(map[string]any{"type": "send", "data": map[string]any{"message": text, "cid": cid}})
}

// readWait bounds the wait for one frame: a test that waits longer has
// found a lost message. It is generous so that a loaded machine (the race
// detector, other jobs) is not mistaken for one.
const readWait = 20 * time.Second

// next reads the next frame, skipping presence and typing frames, which
// come and go with other clients.
// frames reads c's frames on a goroutine of its own, into the channel it
// returns, closed when the connection ends. Reading answers pings.
func (c *wsClient) frames() <-chan string {
	out := make(chan string, 100)
	go func() {
		for {
			_, b, err := c.conn.ReadMessage()
			if err != nil {
				close(out)
				return
			}
			out <- string(b)
		}
	}()
	return out
}

func (c *wsClient) next() (frame, string) {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(readWait))
		typ, b, err := c.conn.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if typ != websocket.TextMessage {
			c.t.Fatalf("got a frame of type %d, want text", typ)
		}
		if c.proto == "echo-protocol" {
			return frame{}, string(b)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Fatalf("frame %q: %v", b, err)
		}
		if f.Type != "presence" && f.Type != "typing" {
			return f, string(b)
		}
	}
}

func (c *wsClient) expect(typ string) msgData {
	c.t.Helper()
	f, raw := c.next()
	if f.Type != typ {
		c.t.Fatalf("got %s, want a %s frame", raw, typ)
	}
	var d msgData
	json.Unmarshal(f.Data, &d)
	return d
}

func (c *wsClient) expectText() string {
	c.t.Helper()
	_, s := c.next()
	return s
}

func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(readWait))
		_, b, err := c.conn.ReadMessage()
		if err == nil {
			if c.proto == "nochat.v1" && (strings.Contains(string(b), `"presence"`) || strings.Contains(string(b), `"typing"`)) {
				continue
			}
			c.t.Fatalf("got %q, want close %d", b, code)
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			c.t.Fatalf("read error %v, want close %d", err, code)
		}
		return
	}
}

func TestBroadcastReachesEveryClientOfBothProtocols(t *testing.T) {
	r := newRoom(t, chat.Options{})
	ann := r.dial(t, "nochat.v1", "?user=ann")
	bob := r.dial(t, "nochat.v1", "")
	echo := r.dial(t, "echo-protocol", "")

	ann.say("hello from ann", "cid-1")
	ack := ann.expect("ack") // the sender hears first
	m := ann.expect("message")
	if m.User != "ann" || m.Message != "hello from ann" || m.ID == 0 || m.Timestamp == 0 {
		t.Fatalf("sender got %+v", m)
	}
	if ack.CID != "cid-1" || ack.ID != m.ID {
		t.Fatalf("ack = %+v, want cid-1 and id %d", ack, m.ID)
	}
	if got := bob.expect("message"); got.ID != m.ID || got.Message != m.Message || got.User != m.User || got.Timestamp != m.Timestamp {
		t.Fatalf("bob got %+v, want %+v", got, m)
	}
	if got := echo.expectText(); got != "hello from ann" {
		t.Fatalf("echo client got %q", got)
	}

	// The tutorial's client sends plain text and gets it back verbatim.
	echo.send("plain text from the tutorial")
	if got := echo.expectText(); got != "plain text from the tutorial" {
		t.Fatalf("echo sender got %q", got)
	}
	for _, c := range []*wsClient{ann, bob} {
		if got := c.expect("message"); got.Message != "plain text from the tutorial" || got.User != "guest" {
			t.Fatalf("v1 client got %+v", got)
		}
	}
}

func TestAckComesAfterCommit(t *testing.T) {
	r := newRoom(t, chat.Options{})
	c := r.dial(t, "nochat.v1", "")
	c.say("durable", "x")
	ack := c.expect("ack")
	got, err := r.store.Get(context.Background(), ack.ID)
	if err != nil {
		t.Fatalf("acked id %d is not stored: %v", ack.ID, err)
	}
	if got.Message != "durable" {
		t.Fatalf("stored %q", got.Message)
	}
}

func TestUpgradeWithoutKnownSubprotocolIsRefused(t *testing.T) {
	r := newRoom(t, chat.Options{})
	for _, offered := range [][]string{nil, {"chat"}, {"echo", "v2"}} {
		d := websocket.Dialer{Subprotocols: offered}
		_, resp, err := d.Dial(r.url, nil)
		if err == nil {
			t.Fatalf("offering %v: upgrade accepted", offered)
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("offering %v: response %v, want 400", offered, resp)
		}
		body, _ := io.ReadAll(resp.Body)
		if line := strings.TrimSpace(string(body)); !strings.Contains(line, "nochat.v1") || strings.Contains(line, "\n") {
			t.Fatalf("offering %v: body %q, want one line naming the subprotocols", offered, body)
		}
	}
}

func TestLongMessages(t *testing.T) {
	r := newRoom(t, chat.Options{})
	sender := r.dial(t, "nochat.v1", "")
	other := r.dial(t, "nochat.v1", "")

	long := strings.Repeat("é", 1500) // 3,000 bytes: over melody's default 512-byte limit
	sender.say(long, "a")
	if got := other.expect("message"); got.Message != long {
		t.Fatalf("a 1,500-character message arrived as %d characters", len([]rune(got.Message)))
	}
	sender.expect("ack")
	sender.expect("message")

	sender.say(strings.Repeat("x", 5000), "b")
	if e := sender.expect("error"); e.Code != "too_long" || e.CID != "b" {
		t.Fatalf("5,000 characters: got %+v, want too_long for cid b", e)
	}
	// Nobody else saw it, and both connections still work.
	sender.say("still here", "c")
	if got := other.expect("message"); got.Message != "still here" {
		t.Fatalf("other got %q next", got.Message)
	}
	sender.expect("ack")
	if got := sender.expect("message"); got.Message != "still here" {
		t.Fatalf("sender got %q next", got.Message)
	}
}

func TestEchoClientOverLimitIsClosedWith1009(t *testing.T) {
	r := newRoom(t, chat.Options{})
	echo := r.dial(t, "echo-protocol", "")
	other := r.dial(t, "nochat.v1", "")
	echo.send(strings.Repeat("x", 5000))
	echo.expectClose(websocket.CloseMessageTooBig)

	r.hub.Send(context.Background(), "ann", "after the refusal")
	if got := other.expect("message"); got.Message != "after the refusal" {
		t.Fatalf("other client got %q", got.Message)
	}
}

func TestBadFramesAreRefusedAndNothingStored(t *testing.T) {
	r := newRoom(t, chat.Options{})
	c := r.dial(t, "nochat.v1", "")
	tests := []struct {
		name  string
		frame string
		code  string
	}{
		{"malformed JSON", `{"type": "send", `, "bad_request"},
		{"not an object", `[1,2]`, "bad_request"},
		{"unknown type", `{"type":"shout","data":{}}`, "bad_request"},
		{"message of wrong type", `{"type":"send","data":{"message":42}}`, "bad_request"},
		{"missing message", `{"type":"send","data":{"cid":"x"}}`, "bad_request"},
		{"cid too long", `{"type":"send","data":{"message":"hi","cid":"` + strings.Repeat("c", 65) + `"}}`, "bad_request"},
		{"empty message", `{"type":"send","data":{"message":""}}`, "empty"},
		{"whitespace only", `{"type":"send","data":{"message":"  \n\t "}}`, "empty"},
		{"control characters only", `{"type":"send","data":{"message":"\u0000\u0007"}}`, "empty"},
		{"name too long", `{"type":"nick","data":{"user":"` + strings.Repeat("n", 33) + `"}}`, "bad_name"},
		{"nick without user", `{"type":"nick","data":{}}`, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.send(tt.frame)
			if e := c.expect("error"); e.Code != tt.code {
				t.Fatalf("error code %q, want %q", e.Code, tt.code)
			}
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		c.t = t
		c.conn.WriteMessage(websocket.BinaryMessage, []byte("hi"))
		if e := c.expect("error"); e.Code != "binary_unsupported" {
			t.Fatalf("error code %q", e.Code)
		}
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		c.t = t
		c.send("{\"type\":\"send\",\"data\":{\"message\":\"\xff\xfe\"}}")
		if e := c.expect("error"); e.Code != "invalid_utf8" {
			t.Fatalf("error code %q", e.Code)
		}
	})
	c.t = t
	if msgs, _ := r.store.Latest(context.Background(), 10); len(msgs) != 0 {
		t.Fatalf("refused frames stored %d messages: %+v", len(msgs), msgs)
	}
	// The connection still works.
	c.say("fine", "")
	c.expect("ack")
	if got := c.expect("message"); got.Message != "fine" {
		t.Fatalf("got %q", got.Message)
	}
}

func TestNickNamesLaterMessages(t *testing.T) {
	r := newRoom(t, chat.Options{})
	c := r.dial(t, "nochat.v1", "")
	c.send(`{"type":"nick","data":{"user":"  Zoë   the\tgreat "}}`)
	c.say("hi", "")
	c.expect("ack")
	if got := c.expect("message"); got.User != "Zoë the great" {
		t.Fatalf("user = %q, want the cleaned name", got.User)
	}
	c.send(`{"type":"nick","data":{"user":""}}`)
	c.say("again", "")
	c.expect("ack")
	if got := c.expect("message"); got.User != "guest" {
		t.Fatalf("user = %q after clearing the name, want guest", got.User)
	}
}

func TestRESTSendReachesSockets(t *testing.T) {
	r := newRoom(t, chat.Options{})
	c := r.dial(t, "nochat.v1", "")
	m, err := r.hub.Send(context.Background(), "curl", "from REST")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.expect("message"); got.ID != m.ID || got.Message != "from REST" || got.User != "curl" {
		t.Fatalf("socket got %+v, REST stored %+v", got, m)
	}
	if _, err := r.hub.Send(context.Background(), "curl", "   "); !errors.Is(err, chat.ErrEmpty) {
		t.Fatalf("empty REST send: %v, want ErrEmpty", err)
	}
}

func TestFailedCommitIsSeenByNobody(t *testing.T) {
	r := newRoom(t, chat.Options{})
	sender := r.dial(t, "nochat.v1", "")
	other := r.dial(t, "nochat.v1", "")
	r.store.Close() // every write now fails
	sender.say("lost", "z")
	if e := sender.expect("error"); e.Code != "store_failed" || e.CID != "z" {
		t.Fatalf("sender got %+v, want store_failed for cid z", e)
	}
	other.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	for {
		_, b, err := other.conn.ReadMessage()
		if err != nil {
			break // nothing but presence arrived
		}
		if strings.Contains(string(b), `"message"`) {
			t.Fatalf("another client saw an unstored message: %s", b)
		}
	}
}

func TestCloseDeliversEverythingStoredThenSends1001(t *testing.T) {
	r := newRoom(t, chat.Options{MsgRate: -1})
	sender := r.dial(t, "nochat.v1", "")
	reader := r.dial(t, "nochat.v1", "")
	echo := r.dial(t, "echo-protocol", "")
	// An echo-protocol client gets no hello: its dial returns on the 101, a
	// moment before the hub has it. One that joins only once Close has begun
	// is rightly sent nothing, so wait until all three are in the room.
	waitOnline(t, r.hub, 3)
	for i := range 200 {
		sender.say(fmt.Sprint("m", i), fmt.Sprint("c", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.hub.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Each client receives every stored message, then close 1001.
	stored, err := r.store.Latest(context.Background(), 500)
	if err != nil {
		t.Fatal(err)
	}
	readAll := func(c *wsClient) []string {
		var got []string
		for {
			c.conn.SetReadDeadline(time.Now().Add(readWait))
			_, b, err := c.conn.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				if ce.Code != websocket.CloseGoingAway {
					t.Fatalf("closed with %d, want 1001", ce.Code)
				}
				return got
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.proto == "echo-protocol" {
				got = append(got, string(b))
				continue
			}
			var f frame
			json.Unmarshal(b, &f)
			if f.Type == "message" {
				var m msgData
				json.Unmarshal(f.Data, &m)
				got = append(got, m.Message)
			}
		}
	}
	var want []string
	for _, m := range stored {
		want = append(want, m.Message)
	}
	for _, c := range []*wsClient{reader, echo} {
		if got := readAll(c); !slices.Equal(got, want) {
			t.Fatalf("%s client got %d messages before closing, %d are stored", c.proto, len(got), len(want))
		}
	}
	if _, err := r.hub.Send(context.Background(), "late", "too late"); !errors.Is(err, chat.ErrShutdown) {
		t.Fatalf("send after close: %v, want ErrShutdown", err)
	}
}
