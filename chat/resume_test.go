package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// sendLoad sends messages over the hub's REST path from several goroutines
// until stop is closed, and returns how many it sent.
func sendLoad(t *testing.T, hub *chat.Hub, senders int, size int, stop <-chan struct{}) func() int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for g := range senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("s%d-%d %s", g, i, strings.Repeat("x", size))
				if _, err := hub.Send(context.Background(), "load", text); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sent++
				mu.Unlock()
			}
		})
	}
	return func() int { wg.Wait(); return sent }
}

// readMessages reads message frames, checking each id follows the last one
// (ids have no holes here: nothing is deleted), until n were read or, with
// n < 0, until the client has id upTo.
func readMessages(t *testing.T, c *wsClient, last *int64, n int, upTo int64) {
	t.Helper()
	for read := 0; n < 0 || read < n; read++ {
		if n < 0 && *last >= upTo {
			return
		}
		f, raw := c.next()
		if f.Type != "message" {
			t.Fatalf("got %s, want a message", raw)
		}
		var m msgData
		json.Unmarshal(f.Data, &m)
		if m.ID != *last+1 {
			t.Fatalf("got message %d after %d: a gap or a duplicate", m.ID, *last)
		}
		*last = m.ID
	}
}

func TestResumeUnderConcurrentSendingHasNoGapOrDuplicate(t *testing.T) {
	r := newRoom(t, chat.Options{ReplayLimit: 1 << 30})
	stop := make(chan struct{})
	wait := sendLoad(t, r.hub, 4, 20, stop)

	var last int64
	c := r.dial(t, "nochat.v1", "?after=0")
	for round := range 30 {
		readMessages(t, c, &last, 1+rand.IntN(40), 0)
		c.conn.Close()
		if round%3 == 0 {
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // miss a few more
		}
		c = r.dial(t, "nochat.v1", fmt.Sprintf("?after=%d", last))
	}
	close(stop)
	wait()
	latest, err := r.store.LatestID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	readMessages(t, c, &last, -1, latest)
	if last < 100 {
		t.Fatalf("only %d messages flowed; the test did not exercise resume under load", last)
	}
}

func TestResumeTooFarBackAsksForResync(t *testing.T) {
	r := newRoom(t, chat.Options{ReplayLimit: 10})
	for i := range 20 {
		r.hub.Send(context.Background(), "ann", fmt.Sprint("m", i))
	}
	c := r.dial(t, "nochat.v1", "?after=2")
	if e := c.expect("error"); e.Code != "resync" {
		t.Fatalf("got %+v, want a resync error", e)
	}
	// Then live messages flow as usual.
	r.hub.Send(context.Background(), "ann", "live")
	if m := c.expect("message"); m.Message != "live" {
		t.Fatalf("got %q, want the live message", m.Message)
	}
	// Within the limit, the missed messages are replayed.
	c2 := r.dial(t, "nochat.v1", "?after=15")
	last := int64(15)
	readMessages(t, c2, &last, -1, 21)
}

func TestResentCIDIsStoredAndBroadcastOnce(t *testing.T) {
	r := newRoom(t, chat.Options{})
	sender := r.dial(t, "nochat.v1", "")
	other := r.dial(t, "nochat.v1", "")
	sender.say("only once", "6f1c-cid")
	ack1 := sender.expect("ack")
	first := sender.expect("message")

	// The client lost the ack (say, the connection dropped) and re-sends
	// from a new connection.
	sender.conn.Close()
	again := r.dial(t, "nochat.v1", fmt.Sprintf("?after=%d", first.ID))
	again.say("only once", "6f1c-cid")
	ack2 := again.expect("ack")
	if ack1.ID != first.ID || ack2.ID != first.ID {
		t.Fatalf("acks carry ids %d and %d, want the original %d", ack1.ID, ack2.ID, first.ID)
	}
	other.expect("message")
	r.hub.Send(context.Background(), "ann", "next")
	if m := other.expect("message"); m.Message != "next" {
		t.Fatalf("other client got %q after the re-send, want the next message (no duplicate)", m.Message)
	}
	if msgs, _ := r.store.Latest(context.Background(), 10); len(msgs) != 2 {
		t.Fatalf("%d messages stored, want 2", len(msgs))
	}
}

func TestSlowReaderGetsEverythingInOrderWithoutBlockingOthers(t *testing.T) {
	r := newRoom(t, chat.Options{SessionBuffer: 16, SlowTimeout: 20 * time.Second})
	slow := r.dial(t, "nochat.v1", "")
	echoSlow := r.dial(t, "echo-protocol", "")
	fast := r.dial(t, "nochat.v1", "")

	const total = 3000 // ~4.5 MB: more than the socket buffers hold
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := g; i < total; i += 8 {
					r.hub.Send(context.Background(), "load", fmt.Sprintf("%05d %s", i, strings.Repeat("y", 1500)))
				}
			})
		}
		wg.Wait()
	}()

	// The fast client keeps receiving while the slow ones do not read.
	var fastLast int64
	readMessages(t, fast, &fastLast, total, 0)
	<-done

	time.Sleep(500 * time.Millisecond) // the slow clients were paused; now they read
	var slowLast int64
	readMessages(t, slow, &slowLast, total, 0)
	for range total {
		if got := echoSlow.expectText(); !strings.HasSuffix(got, "yyy") {
			t.Fatalf("echo client got %q", got)
		}
	}
	if st := r.hub.Stats(); st.FellBehind == 0 || st.SlowDropped != 0 {
		t.Fatalf("stats %+v: want sessions to have fallen behind and caught up, none dropped", st)
	}
	// Still connected and live.
	r.hub.Send(context.Background(), "ann", "after catching up")
	if m := slow.expect("message"); m.Message != "after catching up" {
		t.Fatalf("slow client got %q", m.Message)
	}
	if got := echoSlow.expectText(); got != "after catching up" {
		t.Fatalf("slow echo client got %q", got)
	}
}

func TestClientThatNeverReadsIsDisconnected(t *testing.T) {
	r := newRoom(t, chat.Options{SessionBuffer: 16, SlowTimeout: time.Second})
	stuck := r.dial(t, "nochat.v1", "")
	fast := r.dial(t, "nochat.v1", "")
	const total = 4000
	for g := range 8 {
		go func() {
			for i := g; i < total; i += 8 {
				r.hub.Send(context.Background(), "load", fmt.Sprintf("%05d %s", i, strings.Repeat("z", 1500)))
			}
		}()
	}
	var last int64
	readMessages(t, fast, &last, total, 0)

	waitOnline(t, r.hub, 1) // only the reading one
	if st := r.hub.Stats(); st.SlowDropped != 1 {
		t.Fatalf("stats %+v: want one slow client dropped", st)
	}
	// The stuck client, reading at last, finds its connection closed.
	stuck.conn.SetReadDeadline(time.Now().Add(readWait))
	for {
		if _, _, err := stuck.conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.ClosePolicyViolation && ce.Code != websocket.CloseAbnormalClosure {
				t.Fatalf("closed with %d, want 1008 or a cut connection", ce.Code)
			}
			break
		}
	}
}

func TestPresenceCountsJoinsAndLeaves(t *testing.T) {
	r := newRoom(t, chat.Options{})
	ann := r.dial(t, "nochat.v1", "?user=ann")
	waitPresence(t, ann, 1, "ann")
	bob := r.dial(t, "nochat.v1", "?user=Bob")
	r.dial(t, "echo-protocol", "")
	waitPresence(t, ann, 3, "ann,Bob,guest")
	bob.conn.Close()
	waitPresence(t, ann, 2, "ann,guest")
}

// waitPresence reads until a presence frame with the given count and names.
func waitPresence(t *testing.T, c *wsClient, online int, users string) {
	t.Helper()
	var last string
	for range 20 {
		c.conn.SetReadDeadline(time.Now().Add(readWait))
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for presence %d %s (last %s): %v", online, users, last, err)
		}
		var f frame
		json.Unmarshal(b, &f)
		if f.Type != "presence" {
			continue
		}
		var p msgData
		json.Unmarshal(f.Data, &p)
		last = string(b)
		if p.Online == online && strings.Join(p.Users, ",") == users {
			return
		}
	}
	t.Fatalf("never saw presence %d %s; last %s", online, users, last)
}

func TestTypingIsRelayedToOthers(t *testing.T) {
	r := newRoom(t, chat.Options{})
	ann := r.dial(t, "nochat.v1", "?user=ann")
	bob := r.dial(t, "nochat.v1", "?user=bob")
	ann.send(`{"type":"typing","data":{}}`)
	bob.conn.SetReadDeadline(time.Now().Add(readWait))
	for {
		_, b, err := bob.conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"typing"`) {
			if !strings.Contains(string(b), `"user":"ann"`) {
				t.Fatalf("typing frame %s, want ann", b)
			}
			break
		}
	}
}

func TestKeepaliveDropsDeadPeersAndKeepsLiveOnes(t *testing.T) {
	t.Run("socket", func(t *testing.T) {
		keepsLiveDropsDead(t, newRoom(t, keepaliveOptions))
	})
	// Over TLS the hub cannot write a ping to the socket itself: gorilla
	// writes it, on a goroutine of its own.
	t.Run("TLS", func(t *testing.T) {
		keepsLiveDropsDead(t, newTLSRoom(t, keepaliveOptions))
	})
}

var keepaliveOptions = chat.Options{PingPeriod: 100 * time.Millisecond, PongWait: 600 * time.Millisecond}

// keepsLiveDropsDead opens two sockets on r, one that reads (and so
// answers pings) and one that never does, and checks that the second is
// dropped after the pong wait and the first stays.
func keepsLiveDropsDead(t *testing.T, r *room) {
	alive := r.dial(t, "nochat.v1", "")
	r.dial(t, "nochat.v1", "") // never reads, so never answers a ping: a dead peer

	// Reading answers pings (the WebSocket library does it while reading).
	frames := alive.frames()
	deadline := time.Now().Add(readWait)
	for r.hub.Online() != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := r.hub.Online(); n != 1 {
		t.Fatalf("%d sessions open after the dead peer's pong wait, want 1", n)
	}
	time.Sleep(time.Second) // several pong waits: the live client stays
	r.hub.Send(context.Background(), "ann", "still there")
	for f := range frames {
		if strings.Contains(f, "still there") {
			return
		}
	}
	t.Fatal("the live client was disconnected")
}

// TestEveryAckArrivesUnderABurst sends while the client has fallen behind
// the room's messages (it does not read while others flood the room): its
// acks, owed to it while its buffer is full, must each come once, no error.
func TestEveryAckArrivesUnderABurst(t *testing.T) {
	r := newRoom(t, chat.Options{SessionBuffer: 16, MsgRate: -1, SlowTimeout: 20 * time.Second})
	c := r.dial(t, "nochat.v1", "")
	stop := make(chan struct{})
	wait := sendLoad(t, r.hub, 4, 1500, stop) // others flood the room
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wait()
	}()
	const mine = 300
	for i := range mine / 2 {
		c.say(fmt.Sprint("mine ", i), fmt.Sprint("cid-", i))
	}
	// Not reading, the client falls behind once the socket's buffers are
	// full (a few MB of the flood); the rest of its sends go out then.
	deadline := time.Now().Add(readWait)
	for r.hub.Stats().FellBehind == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the client never fell behind in %v of flooding", r.hub.Stats(), readWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := mine / 2; i < mine; i++ {
		c.say(fmt.Sprint("mine ", i), fmt.Sprint("cid-", i))
	}
	acks := map[string]bool{}
	deadline = time.Now().Add(readWait)
	for frames := 0; len(acks) < mine; frames++ {
		if time.Now().After(deadline) || frames > 1_000_000 {
			t.Fatalf("%d of %d sends acknowledged after %d frames", len(acks), mine, frames)
		}
		f, raw := c.next()
		switch f.Type {
		case "ack":
			var a msgData
			json.Unmarshal(f.Data, &a)
			if acks[a.CID] {
				t.Fatalf("ack for %s twice", a.CID)
			}
			acks[a.CID] = true
		case "error":
			t.Fatalf("got %s", raw)
		}
	}
	close(stop)
	if st := r.hub.Stats(); st.SlowDropped != 0 {
		t.Fatalf("stats %+v: the client was dropped", st)
	}
}

// A client that resumes from far back and hangs up at once leaves a
// catch-up reader behind it. The reader must end with the session: one that
// goes on fetching for a session that is gone would spin on the database
// for ever, and a few hundred such clients would take the CPU.
func TestCatchUpEndsWhenItsClientLeaves(t *testing.T) {
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{Durability: db.Normal})
	if err != nil {
		t.Fatal(err)
	}
	drafts := make([]db.Draft, 600)
	for i := range drafts {
		drafts[i] = db.Draft{User: "ann", Message: fmt.Sprint("m", i)}
	}
	if _, err := store.Insert(context.Background(), drafts); err != nil {
		t.Fatal(err)
	}
	r := serveRoom(t, store, chat.Options{})
	before := runtime.NumGoroutine()
	d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: readWait}
	for i := range 20 {
		conn, _, err := d.Dial(r.url+fmt.Sprintf("?after=%d", i+1), nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close() // gone before reading anything
	}
	waitFor := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(waitFor) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before the clients came and went:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A client that read the newest message over REST and resumes from it
// gets nothing twice. The store's readers have a commit as soon as it is
// made, the broadcaster a moment later, and the socket may join in
// between: it joined the live set at once then, and got the rest of that
// commit again (seen under load: a whole commit of 256 messages), its
// hello saying the server had less than it had read.
func TestResumeFromWhatRESTShowedBeforeTheBroadcaster(t *testing.T) {
	ctx := context.Background()
	r := newRoom(t, chat.Options{})
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	chat.WhileCommitting(r.hub, func() {
		once.Do(func() { close(held); <-release })
	})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		r.hub.Send(ctx, "ann", "one")
	}()
	<-held // committed, not yet the broadcaster's
	// What REST shows.
	latest, err := r.store.LatestID(ctx)
	if err != nil || latest == 0 {
		t.Fatalf("latest id %d, %v", latest, err)
	}
	c := r.dial(t, "nochat.v1", fmt.Sprintf("?after=%d", latest))
	if c.hello.LatestID != latest {
		t.Errorf("hello's latest id %d, want %d: the client read it, and it is stored", c.hello.LatestID, latest)
	}
	close(release)
	<-sent
	// It had "one": it is live from the next, not waiting for it.
	if n := chat.Behind(r.hub); n != 0 {
		t.Errorf("%d connections out of the live set once the message it resumed from was handed out, want 0", n)
	}
	if _, err := r.hub.Send(ctx, "ann", "two"); err != nil {
		t.Fatal(err)
	}
	for {
		f, raw := c.next()
		if f.Type != "message" {
			continue
		}
		if !strings.Contains(raw, `"message":"two"`) {
			t.Fatalf("after resuming from %d, got %s, want the next message only", latest, raw)
		}
		return
	}
}
