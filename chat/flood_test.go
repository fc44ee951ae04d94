package chat_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
)

// Floods and leaks: many clients coming and going, clients that never read.
// Each loop is bounded to a few seconds. Clients dial from many loopback
// addresses (127.0.0.0/8 is all loopback on Linux), so that a per-address
// connection limit sees a crowd of ordinary users, not one abuser.

// dialFrom opens a WebSocket from the loopback address 127.0.0.(2+n%200)
// (on Linux; elsewhere only 127.0.0.1 is configured).
func dialFrom(r *room, n int, proto, query string) (*websocket.Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 10 * time.Second}
	if runtime.GOOS == "linux" {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n%200))}
		d.NetDialContext = (&net.Dialer{LocalAddr: local}).DialContext
	}
	conn, _, err := d.Dial(r.url+query, nil)
	return conn, err
}

// baseline waits until the goroutine count holds still for a moment (what
// earlier tests started winds down) and returns it.
func baseline() int {
	n, still := runtime.NumGoroutine(), 0
	for deadline := time.Now().Add(5 * time.Second); still < 5 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			still++
		} else {
			n, still = m, 0
		}
	}
	return n
}

// settle waits, up to a bound, until the goroutine count is at most limit,
// and returns the count.
func settle(limit int) int {
	deadline := time.Now().Add(15 * time.Second)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// collected is the runtime's memory statistics after two collections,
// which free what is garbage and shrink the stacks they can.
func collected() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func heapInUse() uint64 { return collected().HeapInuse }

// waitOnline waits, up to a bound, until the hub has n sessions.
func waitOnline(t testing.TB, h *chat.Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for h.Online() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions open, want %d", h.Online(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnectDisconnectFloodLeavesNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections: skipped with -short")
	}
	r := newRoom(t, chat.Options{})
	w := r.watch(t)
	// Warm up everything that starts once (timers, pools, the HTTP client
	// and server machinery) before taking the baseline.
	for i := range 20 {
		if conn, err := dialFrom(r, i, "nochat.v1", ""); err == nil {
			conn.Close()
		}
	}
	waitOnline(t, r.hub, 1)
	baseGoroutines := baseline()
	baseHeap := heapInUse()

	const total, wave = 2000, 250
	var peakHeap uint64
	var mu sync.Mutex
	var failures []string
	for start := 0; start < total; start += wave {
		var wg sync.WaitGroup
		conns := make([]*websocket.Conn, wave)
		for i := range wave {
			n := start + i
			wg.Go(func() {
				proto, query := "nochat.v1", ""
				switch n % 4 {
				case 1:
					proto = "echo-protocol"
				case 2:
					query = fmt.Sprintf("?user=u%d&after=0", n)
				}
				conn, err := dialFrom(r, n, proto, query)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					return
				}
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				if proto == "nochat.v1" {
					if _, b, err := conn.ReadMessage(); err != nil || !strings.Contains(string(b), `"hello"`) {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("client %d: first frame %q, %v", n, b, err))
						mu.Unlock()
					}
				}
				conns[i] = conn
			})
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d of the connections failed, first: %s", len(failures), failures[0])
		}
		waitOnline(t, r.hub, wave+1)
		if h := heapInUse(); h > peakHeap {
			peakHeap = h
		}
		// Someone talks while the crowd is in.
		if _, err := r.hub.Send(context.Background(), "ann", fmt.Sprint("wave ", start/wave)); err != nil {
			t.Fatal(err)
		}
		// Leave, half politely with a close frame, half by cutting the
		// connection.
		for i, conn := range conns {
			if i%2 == 0 {
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
			}
			conn.Close()
		}
		waitOnline(t, r.hub, 1)
	}

	// The watcher saw every wave's message, in order: the room worked
	// throughout.
	for i := range total / wave {
		if m := w.next(t); m.Message != fmt.Sprint("wave ", i) {
			t.Fatalf("watcher got %q, want wave %d", m.Message, i)
		}
	}
	// What 2,000 sessions used is given back. A margin covers goroutines
	// that come and go on their own (timers, idle HTTP connections).
	const margin = 10
	if n := settle(baseGoroutines + margin); n > baseGoroutines+margin {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after 2,000 clients came and went, %d before\n%s", n, baseGoroutines, buf)
	}
	heap := heapInUse()
	t.Logf("heap in use: %d KiB before, %d KiB at the peak of a wave, %d KiB after", baseHeap>>10, peakHeap>>10, heap>>10)
	// A wave of 250 takes about 10 MiB; 2,000 sessions each keeping 2 KiB
	// would pass 4 MiB.
	if heap > baseHeap+4<<20 {
		t.Fatalf("heap in use %d KiB after the clients left, %d KiB before: more than 4 MiB kept", heap>>10, baseHeap>>10)
	}
	if st := r.hub.Stats(); st.Online != 1 {
		t.Fatalf("stats %+v: want only the watcher online", st)
	}
}

func TestConnectionsThatNeverReadAreCutOffWithoutHarmingOthers(t *testing.T) {
	r := newRoom(t, chat.Options{SessionBuffer: 16, SlowTimeout: time.Second})
	baseGoroutines := baseline()

	// One reader, which must get everything, in order, while an abuser opens
	// connections from one address and never reads from any of them.
	reader := r.dial(t, "nochat.v1", "")
	const stuck = 30
	for i := range stuck {
		proto := "nochat.v1"
		if i%3 == 0 {
			proto = "echo-protocol"
		}
		conn, err := dialFrom(r, 0, proto, "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close() // never read
	}
	waitOnline(t, r.hub, stuck+1)

	const total = 3000 // ~4.5 MB each: more than socket buffers hold
	go func() {
		for i := range total {
			r.hub.Send(context.Background(), "load", fmt.Sprintf("%05d %s", i, strings.Repeat("z", 1500)))
		}
	}()
	var last int64
	readMessages(t, reader, &last, total, 0)

	// Every stuck connection is dropped for making no progress; the reader
	// stays. (A connection that never reads and is sent nothing is dropped
	// when it does not answer pings: TestKeepaliveDropsDeadPeersAndKeepsLiveOnes.)
	// The reader goroutine forwards every frame (presence frames come too),
	// and its read error when the connection ends.
	frames := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		for {
			reader.conn.SetReadDeadline(time.Now().Add(readWait))
			_, b, err := reader.conn.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case frames <- b:
			case <-t.Context().Done(): // the test failed and stopped listening
				return
			}
		}
	}()
	waitOnline(t, r.hub, 1)
	select {
	case err := <-readErr:
		t.Fatalf("the reader was disconnected: %v", err)
	default:
	}
	if st := r.hub.Stats(); st.SlowDropped != stuck {
		t.Fatalf("stats %+v: want the %d stuck sessions dropped as slow", st, stuck)
	}
	// The reader still receives, and the stuck sessions left nothing behind.
	m, err := r.hub.Send(context.Background(), "ann", "after the abuser")
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(readWait)
	for received := false; !received; {
		select {
		case b := <-frames:
			received = strings.Contains(string(b), "after the abuser")
		case err := <-readErr:
			t.Fatalf("the reader was disconnected before the message after the abuser: %v", err)
		case <-timeout:
			t.Fatalf("the reader got no message after the abuser within %v", readWait)
		}
	}
	reader.conn.Close()
	for closed := false; !closed; {
		select {
		case <-frames: // a presence frame read before the close
		case <-readErr:
			closed = true
		}
	}
	if m.ID != total+1 {
		t.Fatalf("id %d, want %d", m.ID, total+1)
	}
	waitOnline(t, r.hub, 0)
	if n := settle(baseGoroutines + 10); n > baseGoroutines+10 {
		t.Fatalf("%d goroutines after the stuck clients were dropped, %d before", n, baseGoroutines)
	}
}
