package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// These tests restart NoChat under load, as `systemctl restart nochat` does
// during an upgrade, with clients that behave like the page: they keep each
// send until its ack, re-send unacked ones with the same cid after a
// reconnect, and resume with ?after= the last id they have.

type v1Frame struct {
	Type string `json:"type"`
	Data struct {
		ID      int64  `json:"id"`
		Message string `json:"message"`
		User    string `json:"user"`
		CID     string `json:"cid"`
		Code    string `json:"code"`
	} `json:"data"`
}

// wsURL is the WebSocket address of the server at http URL u.
func wsURL(u string) string { return "ws" + strings.TrimPrefix(u, "http") + "/" }

// v1 is a nochat.v1 test client of a running server.
type v1 struct {
	t    *testing.T
	conn *websocket.Conn
}

// dialV1Conn opens a nochat.v1 WebSocket to the server at base; query
// follows the path ("?user=ann").
func dialV1Conn(base, query string) (*websocket.Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(wsURL(base)+query, nil)
	return conn, err
}

// dialV1 connects user to the server at base and reads its hello.
func dialV1(t *testing.T, base, user string) *v1 {
	t.Helper()
	return dialV1Query(t, base, "?user="+user)
}

// dialV1Query is dialV1 with the socket's query ("?after=1") given whole.
func dialV1Query(t *testing.T, base, query string) *v1 {
	t.Helper()
	conn, err := dialV1Conn(base, query)
	if err != nil {
		t.Fatal(err)
	}
	return helloed(t, conn)
}

// helloed is a test client of conn, a nochat.v1 socket just opened, once
// it read its hello; the socket closes when the test ends.
func helloed(t *testing.T, conn *websocket.Conn) *v1 {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	c := &v1{t: t, conn: conn}
	if f := c.next(); f.Type != "hello" {
		t.Fatalf("first frame %+v, want hello", f)
	}
	return c
}

// next reads the next frame other than presence and typing.
func (c *v1) next() v1Frame {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var f v1Frame
		if err := c.conn.ReadJSON(&f); err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if f.Type != "presence" && f.Type != "typing" {
			return f
		}
	}
}

func (c *v1) say(text, cid string) {
	c.t.Helper()
	if err := c.conn.WriteJSON(map[string]any{"type": "send", "data": map[string]string{"message": text, "cid": cid}}); err != nil {
		c.t.Fatal(err)
	}
}

// sendOK sends a message and expects its ack, then the message itself.
func (c *v1) sendOK(text, cid string) int64 {
	c.t.Helper()
	c.say(text, cid)
	f := c.next()
	if f.Type != "ack" || f.Data.CID != cid {
		c.t.Fatalf("after sending %.40q… got %+v, want its ack", text, f)
	}
	if m := c.next(); m.Type != "message" || m.Data.ID != f.Data.ID || m.Data.Message != text {
		c.t.Fatalf("after the ack got %+v, want message %d", m, f.Data.ID)
	}
	return f.Data.ID
}

// expectMessage expects the next frame to be the given message.
func (c *v1) expectMessage(text string) {
	c.t.Helper()
	if f := c.next(); f.Type != "message" || f.Data.Message != text {
		c.t.Fatalf("got %+v, want the message %.40q… (and no message in between)", f, text)
	}
}

// sender keeps sending, through restarts.
type sender struct {
	name   string
	window int // sends in flight (unacked) at most

	mu      sync.Mutex
	seq     int
	pending []string          // cids sent or queued, not acked yet, oldest first
	text    map[string]string // cid → text
	acked   map[string]int64  // cid → id from its ack
	resent  int               // sends repeated after a reconnect
	dupAcks int               // acks with an id other than the first one for the cid
}

func newSender(name string) *sender {
	return &sender{name: name, window: 16, text: map[string]string{}, acked: map[string]int64{}}
}

// queue adds a new message to send, as typing one does, if the window has
// room, and returns its cid ("" when it had none).
func (s *sender) queue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= s.window {
		return ""
	}
	s.seq++
	cid := fmt.Sprintf("%s-%d", s.name, s.seq)
	s.text[cid] = fmt.Sprintf("%s says %d", s.name, s.seq)
	s.pending = append(s.pending, cid)
	return cid
}

func (s *sender) ack(cid string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.acked[cid]; ok {
		if prev != id {
			s.dupAcks++
		}
		return
	}
	s.acked[cid] = id
	for i, p := range s.pending {
		if p == cid {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			break
		}
	}
}

func (s *sender) unacked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.pending...)
}

func (s *sender) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func sendFrame(conn *websocket.Conn, cid, text string) error {
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return conn.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": text, "cid": cid}})
}

// run sends until stop is closed and then until every message is acked,
// reconnecting whenever the server goes away; the text of a message queued
// while disconnected waits in pending, like the page's queue.
func (s *sender) run(url string, stop <-chan struct{}) {
	stopping := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for {
		if stopping() && len(s.unacked()) == 0 {
			return
		}
		conn, err := dialV1Conn(url, "?user="+s.name)
		if err != nil {
			if !stopping() {
				s.queue() // typed while the server is away
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		gone := make(chan struct{})
		go func() {
			defer close(gone)
			for {
				var f v1Frame
				if err := conn.ReadJSON(&f); err != nil {
					return
				}
				if f.Type == "ack" {
					s.ack(f.Data.CID, f.Data.ID)
				}
				// An error frame (unavailable while the server stops)
				// leaves the send pending: it goes again after reconnecting.
			}
		}()
		// After a reconnect, everything unacked goes again, same cids.
		ok := true
		for _, cid := range s.unacked() {
			if err := sendFrame(conn, cid, s.text[cid]); err != nil {
				ok = false
				break
			}
			s.mu.Lock()
			s.resent++
			s.mu.Unlock()
		}
		for ok {
			select {
			case <-gone:
				ok = false
				continue
			case <-time.After(2 * time.Millisecond):
			}
			if stopping() {
				if len(s.unacked()) == 0 {
					break
				}
				continue
			}
			if cid := s.queue(); cid != "" {
				ok = sendFrame(conn, cid, s.text[cid]) == nil
			}
		}
		conn.Close()
		<-gone
	}
}

// reader stays on the page: it reads every message and, when the server
// goes away, reconnects with ?after= the last id it has.
type reader struct {
	mu         sync.Mutex
	ids        []int64 // every message id received, in order of arrival
	text       map[int64]string
	goingAways int      // close 1001 received
	problems   []string // out-of-order or repeated ids, resync requests
}

func (r *reader) last() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) == 0 {
		return 0
	}
	return r.ids[len(r.ids)-1]
}

func (r *reader) run(url string, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, err := dialV1Conn(url, fmt.Sprintf("?user=reader&after=%d", r.last()))
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		go func() { <-stop; conn.Close() }()
		for {
			var f v1Frame
			err := conn.ReadJSON(&f)
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway {
				r.mu.Lock()
				r.goingAways++
				r.mu.Unlock()
			}
			if err != nil {
				break
			}
			r.mu.Lock()
			switch {
			case f.Type == "message" && len(r.ids) > 0 && f.Data.ID <= r.ids[len(r.ids)-1]:
				r.problems = append(r.problems, fmt.Sprintf("message %d after %d", f.Data.ID, r.ids[len(r.ids)-1]))
			case f.Type == "message":
				r.ids = append(r.ids, f.Data.ID)
				r.text[f.Data.ID] = f.Data.Message
			case f.Type == "error":
				r.problems = append(r.problems, "error frame: "+f.Data.Code)
			}
			r.mu.Unlock()
		}
		conn.Close()
	}
}

// waitUntil polls cond every 10 ms for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartUnderLoadLosesAndDuplicatesNothing(t *testing.T) {
	env := map[string]string{
		"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"),
		// The senders send as fast as acks allow: no per-connection limit.
		"NOCHAT_MSG_RATE": "0",
	}
	s := start(t, env)
	url := s.url
	addr := strings.TrimPrefix(url, "http://")

	stopReader, stopSenders := make(chan struct{}), make(chan struct{})
	rd := &reader{text: map[int64]string{}}
	var readerDone, sendersDone sync.WaitGroup
	readerDone.Go(func() { rd.run(url, stopReader) })
	senders := []*sender{newSender("ann"), newSender("bob"), newSender("cat"), newSender("dan")}
	for _, snd := range senders {
		sendersDone.Go(func() { snd.run(url, stopSenders) })
	}
	acked := func() int {
		n := 0
		for _, snd := range senders {
			n += snd.ackedCount()
		}
		return n
	}
	inFlight := func() int {
		n := 0
		for _, snd := range senders {
			n += len(snd.unacked())
		}
		return n
	}

	const restarts = 2
	for i := range restarts {
		target := acked() + 150
		waitUntil(t, 30*time.Second, fmt.Sprintf("%d acked messages", target), func() bool { return acked() >= target })

		// SIGTERM mid-load: run's context ends, as signal.NotifyContext
		// makes it on SIGTERM.
		flying := inFlight()
		began := time.Now()
		s.shutdown(t)
		took := time.Since(began)
		t.Logf("restart %d: shut down in %v with %d messages acked and %d in flight", i+1, took.Round(time.Millisecond), acked(), flying)
		time.Sleep(200 * time.Millisecond) // down a moment: senders queue messages
		s = start(t, env, "-addr", addr)
	}
	target := acked() + 150
	waitUntil(t, 30*time.Second, fmt.Sprintf("%d acked messages after the restarts", target), func() bool { return acked() >= target })

	// Stop typing; every queued message gets through; the reader catches up.
	close(stopSenders)
	sendersDone.Wait()
	var latest []db.Message
	if err := json.Unmarshal([]byte(s.get(t, "/discussion/latest/1")), &latest); err != nil || len(latest) != 1 {
		t.Fatalf("latest message: %v %v", latest, err)
	}
	waitUntil(t, 30*time.Second, fmt.Sprintf("the reader to reach message %d", latest[0].ID), func() bool { return rd.last() >= latest[0].ID })
	close(stopReader)
	readerDone.Wait()
	s.shutdown(t)

	store, err := db.Open(context.Background(), env["NOCHAT_DB"], db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stored, err := store.After(context.Background(), 0, math.MaxInt32)
	if err != nil {
		t.Fatal(err)
	}

	rd.mu.Lock()
	defer rd.mu.Unlock()
	for _, p := range rd.problems {
		t.Errorf("reader: %s", p)
	}
	if got, want := rd.goingAways, restarts; got != want {
		t.Errorf("reader was told 'going away' (1001) %d times, want %d", got, want)
	}
	// Every stored message reached the reader, once, in id order.
	if got, want := len(rd.ids), len(stored); got != want {
		t.Errorf("reader got %d messages, %d are stored", got, want)
	}
	storedText := map[string]int64{}
	for i, m := range stored {
		if i < len(rd.ids) && rd.ids[i] != m.ID {
			t.Fatalf("reader's message %d is id %d, stored is %d", i, rd.ids[i], m.ID)
		}
		if prev, ok := storedText[m.Message]; ok {
			t.Errorf("%q is stored twice, as %d and %d", m.Message, prev, m.ID)
		}
		storedText[m.Message] = m.ID
	}
	// Every acked message is stored once, under its acked id, and reached
	// the reader with its text.
	total, resent := 0, 0
	for _, snd := range senders {
		snd.mu.Lock()
		if snd.dupAcks > 0 {
			t.Errorf("%s: %d re-sends were acked with a different id", snd.name, snd.dupAcks)
		}
		for cid, id := range snd.acked {
			text := snd.text[cid]
			if storedText[text] != id {
				t.Errorf("%s: %q acked as %d, stored as %d", snd.name, text, id, storedText[text])
			}
			if rd.text[id] != text {
				t.Errorf("%s: %q (id %d) reached the reader as %q", snd.name, text, id, rd.text[id])
			}
		}
		total += len(snd.acked)
		resent += snd.resent
		snd.mu.Unlock()
	}
	if total != len(stored) {
		t.Errorf("%d messages acked, %d stored", total, len(stored))
	}
	t.Logf("%d messages from %d senders through %d restarts (%d sends repeated after reconnecting): each stored once, acked, delivered once in order",
		total, len(senders), restarts, resent)
}
