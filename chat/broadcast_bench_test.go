package chat_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nochat/chat"
)

// BenchmarkBroadcast shows what a message costs the server per recipient:
// its allocations, which the hot path is meant to keep at zero (a message is
// encoded once per subprotocol, and each recipient gets the same bytes).
// The recipients are raw TCP connections that upgrade by hand and then only
// count frames into a fixed buffer, so what allocates is the server alone.
// A message is sent as REST sends do (Hub.Send, which returns once the
// message is stored and handed out), so each op also holds one commit.
//
//	go test ./chat -run '^$' -bench Broadcast -benchtime 200x
//
// allocs/op, the whole message, should not grow with the clients; the
// allocs/delivery figure divides it among them.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			r := newRoom(b, chat.Options{MaxConnsPerIP: -1})
			addr := r.srv.Listener.Addr().String()
			var got atomic.Int64
			var wg sync.WaitGroup
			conns := make([]net.Conn, n)
			for i := range conns {
				conns[i] = rawEcho(b, addr)
				wg.Go(func() { countTextFrames(conns[i], &got) })
			}
			defer func() {
				for _, c := range conns {
					c.Close()
				}
				wg.Wait()
			}()
			waitOnline(b, r.hub, n)

			ctx := context.Background()
			text := strings.Repeat("x", 64)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := r.hub.Send(ctx, "ann", text); err != nil {
					b.Fatal(err)
				}
				// The next message waits for this one to reach everyone, so
				// allocations are counted for complete deliveries only.
				want := int64(i+1) * int64(n)
				deadline := time.Now().Add(10 * time.Second)
				for got.Load() < want {
					if time.Now().After(deadline) {
						b.Fatalf("message %d reached %d of %d clients", i, got.Load()-int64(i)*int64(n), n)
					}
					runtime.Gosched()
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/deliveries, "B/delivery")
		})
	}
}

// rawEcho opens an echo-protocol WebSocket by hand.
func rawEcho(b *testing.B, addr string) net.Conn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	upgradeRaw(b, c, "/", "echo-protocol")
	return c
}

// upgradeRaw upgrades c to a WebSocket at path, by hand.
func upgradeRaw(b *testing.B, c net.Conn, path, proto string) {
	b.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Protocol: %s\r\n\r\n", path, proto)
	// Read the 101 byte by byte, so that no frame is left in a buffer.
	var head []byte
	one := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(one); err != nil {
			b.Fatalf("handshake: %v after %q", err, head)
		}
		head = append(head, one[0])
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 101 ") {
		b.Fatalf("handshake: %q", head)
	}
}

// countTextFrames reads server frames (unmasked) until the connection ends,
// counting the text ones.
func countTextFrames(c net.Conn, n *atomic.Int64) { countFrames(c, n, "") }

// countFrames reads server frames until the connection ends, counting
// into n (if not nil) the text frames whose payload starts with prefix.
func countFrames(c net.Conn, n *atomic.Int64, prefix string) {
	br := bufio.NewReaderSize(c, 16<<10)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		text := hdr[0]&0x0f == 1
		size := int64(hdr[1] & 0x7f)
		switch size {
		case 126:
			if _, err := io.ReadFull(br, hdr[:2]); err != nil {
				return
			}
			size = int64(hdr[0])<<8 | int64(hdr[1])
		case 127:
			if _, err := io.ReadFull(br, hdr[:8]); err != nil {
				return
			}
			size = 0
			for _, x := range hdr[:8] {
				size = size<<8 | int64(x)
			}
		}
		if n != nil && text && size >= int64(len(prefix)) {
			head, err := br.Peek(len(prefix))
			if err != nil {
				return
			}
			if string(head) == prefix {
				n.Add(1)
			}
		}
		if _, err := br.Discard(int(size)); err != nil {
			return
		}
	}
}
