package chat_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
)

// BenchmarkRoomDelivery shows that a message costs in proportion to its
// room, not to the server: the same message to a room of 10 connections,
// alone on the server and then beside 999 other rooms of 10 connections and
// one room of 1,000 (11,000 connections). broadcast-µs/msg is the
// broadcaster's time to hand the message out (its Observer's Broadcast
// figure), which should stay about the same; ns/op adds the commit.
//
//	go test ./chat -run '^$' -bench RoomDelivery -benchtime 2000x
//
// The connections are in-memory pipes (net.Pipe) served by a real
// http.Server and read by raw WebSocket readers, so that 11,000 of them fit
// this process's file descriptors.
func BenchmarkRoomDelivery(b *testing.B) {
	for _, others := range []int{0, 1000} {
		name := "alone"
		if others > 0 {
			name = "beside-999x10-and-1x1000"
		}
		b.Run(name, func(b *testing.B) { benchRoomDelivery(b, others) })
	}
}

// broadcastTimer is an Observer that adds up the broadcaster's time.
type broadcastTimer struct {
	took     atomic.Int64 // nanoseconds
	messages atomic.Int64
}

func (o *broadcastTimer) Committed(int, time.Duration, time.Duration, error) {}
func (o *broadcastTimer) Error(string)                                       {}
func (o *broadcastTimer) Broadcast(n int, took time.Duration) {
	o.took.Add(int64(took))
	o.messages.Add(int64(n))
}

func benchRoomDelivery(b *testing.B, others int) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(b.TempDir(), "nochat.db"), db.Options{Durability: db.Normal})
	if err != nil {
		b.Fatal(err)
	}
	account := func(i int) int64 {
		a, err := store.CreateAccount(ctx, db.Account{Name: "p" + strconv.Itoa(i), NameKey: "p" + strconv.Itoa(i), PasswordHash: "-", Role: db.RoleMember, Created: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		return a.ID
	}
	room := func(i int, member int64) db.Room {
		r, _, err := store.CreateRoom(ctx, db.Room{Slug: "r" + strconv.Itoa(i), Name: "r" + strconv.Itoa(i), Kind: db.KindPrivate}, []int64{member})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	// Each room's connections are one account's: every tab of an account
	// sees its rooms.
	type group struct {
		user  int64
		conns int
	}
	var groups []group
	target := account(0)
	targetRoom := room(0, target)
	groups = append(groups, group{target, 10})
	if others > 0 {
		for i := 1; i < others; i++ {
			u := account(i)
			room(i, u)
			groups = append(groups, group{u, 10})
		}
		big := account(others)
		room(others, big)
		groups = append(groups, group{big, 1000})
	}

	timer := &broadcastTimer{}
	hub, err := chat.New(store, chat.Options{MaxConns: -1, MaxConnsPerIP: -1, MsgRate: -1, Observer: timer})
	if err != nil {
		b.Fatal(err)
	}
	ln := newPipeListener()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.URL.Query().Get("as"), 10, 64)
		hub.ServeWSAs(w, r, chat.Identity{UserID: id, Name: "p", Role: db.RoleMember})
	})}
	go srv.Serve(ln)

	var got atomic.Int64 // message frames at the target room's connections
	var wg sync.WaitGroup
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		srv.Close()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		hub.Close(sctx)
		store.Close()
	}()
	for gi, g := range groups {
		for range g.conns {
			c := ln.dial()
			upgradeRaw(b, c, "/?as="+strconv.FormatInt(g.user, 10), "nochat.v1")
			conns = append(conns, c)
			counter := &got
			if gi != 0 {
				counter = nil // the other rooms' readers only drain
			}
			wg.Go(func() { countFrames(c, counter, `{"type":"message"`) })
		}
	}
	waitOnline(b, hub, len(conns))
	time.Sleep(500 * time.Millisecond) // presence, once, before timing

	id := chat.Identity{UserID: target, Name: "p0", Role: db.RoleMember}
	text := strings.Repeat("x", 64)
	timer.took.Store(0)
	timer.messages.Store(0)
	b.ResetTimer()
	for i := range b.N {
		if _, err := hub.SendTo(ctx, id, targetRoom, "", text, ""); err != nil {
			b.Fatal(err)
		}
		want := int64(i+1) * 10
		deadline := time.Now().Add(10 * time.Second)
		for got.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("message %d reached %d of 10 connections", i, got.Load()-int64(i)*10)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	b.StopTimer()
	if n := timer.messages.Load(); n > 0 {
		b.ReportMetric(float64(timer.took.Load())/float64(n)/1e3, "broadcast-µs/msg")
	}
	b.ReportMetric(float64(len(conns)), "connections")
}

// pipeListener is a net.Listener of in-memory connections: dial returns
// the client's end of a net.Pipe and Accept the server's.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
