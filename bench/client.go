package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// client is one WebSocket connection of the run. Its reader goroutine owns
// the receiving state; its sender goroutine (if it sends) owns the sending
// state; the atomics are what the two, and the progress line, share.
type client struct {
	r      *runner
	idx    int // index among the requested clients; a sender if idx < r.senders
	conn   *websocket.Conn
	wmu    sync.Mutex // writes: the sender's, the warm-up's, Centrifugo's pongs from the reader
	sender bool

	// Set by the runner between phases.
	participant bool // connected when sending began: owed every message
	dropped     bool // the server ended the connection before the run did

	// Shared.
	sent        atomic.Int64 // messages written to the socket
	echoed      atomic.Int64 // 1 + the highest own sequence number received back
	delivered   atomic.Int64 // distinct measured messages received
	lastLatency atomic.Int64 // nanoseconds, of the last delivery
	warm        atomic.Bool  // a warm-up message arrived: this client is in the room
	wake        chan struct{}
	done        chan struct{} // closed when the reader returns

	// Owned by the reader goroutine; read by the runner after done.
	seen         [][]uint64 // per sender, a bit per sequence number
	dups         int64
	foreign      int64 // text frames that are not this run's messages
	acks         int64
	serverErrors map[string]int64 // nochat.v1 error frames by code
	lastDelivery time.Duration    // since the run's start
	readErr      error

	// Owned by the sender goroutine.
	seq    int64
	floor  int64           // burst: sequence numbers below this are given up on
	sentAt []time.Duration // burst: send times of the window's messages, by seq % window
	stalls int64
	buf    []byte
}

func newClient(r *runner, idx int, conn *websocket.Conn) *client {
	return &client{
		r:      r,
		idx:    idx,
		conn:   conn,
		sender: idx < r.senders,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		seen:   make([][]uint64, r.senders),
	}
}

// readLoop reads every frame until the connection ends, into one buffer
// reused for the whole connection: receiving costs no allocation per
// message beyond gorilla's small reader.
func (c *client) readLoop() {
	defer close(c.done)
	buf := make([]byte, 0, 512)
	for {
		typ, rd, err := c.conn.NextReader()
		if err != nil {
			c.readErr = err
			return
		}
		if buf, err = readAll(rd, buf[:0]); err != nil {
			c.readErr = err
			return
		}
		if typ != websocket.TextMessage {
			c.foreign++
			continue
		}
		switch c.r.cfg.Proto {
		case ProtoV1:
			c.handleV1(buf)
		case ProtoCentrifugo:
			c.handleCentrifugo(buf)
		default:
			c.handleText(buf)
		}
	}
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

var (
	v1MessagePrefix  = []byte(`{"type":"message",`)
	v1MessagesPrefix = []byte(`{"type":"messages",`)
	v1MessageField   = []byte(`"message":"`)
)

// handleV1 reads a nochat.v1 frame. Message frames, nearly all of them, are
// read without decoding the JSON: the bench text needs no escaping, so it
// stands verbatim after "message":" (which cannot occur unescaped inside
// another string). Other frames are rare and decoded properly.
func (c *client) handleV1(b []byte) {
	if bytes.HasPrefix(b, v1MessagesPrefix) {
		// Several messages (?batch=1): each one's text, in order.
		for {
			i := bytes.Index(b, v1MessageField)
			if i < 0 {
				return
			}
			b = b[i+len(v1MessageField):]
			c.handleText(b)
		}
	}
	if bytes.HasPrefix(b, v1MessagePrefix) {
		if i := bytes.Index(b, v1MessageField); i >= 0 {
			c.handleText(b[i+len(v1MessageField):])
			return
		}
	}
	var f struct {
		Type string `json:"type"`
		Data struct {
			Message string `json:"message"`
			Code    string `json:"code"`
			CID     string `json:"cid"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		c.foreign++
		return
	}
	switch f.Type {
	case "message":
		c.handleText([]byte(f.Data.Message))
	case "ack":
		if !strings.Contains(f.Data.CID, "-warmup-") {
			c.acks++
		}
	case "error":
		if c.serverErrors == nil {
			c.serverErrors = make(map[string]int64)
		}
		c.serverErrors[f.Data.Code]++
	}
	// hello, presence, typing, deleted: nothing to count.
}

func (c *client) handleText(b []byte) {
	kind, sender, seq, sentNS := c.r.codec.parse(b)
	switch kind {
	case warmupText:
		c.warm.Store(true)
		return
	case foreignText:
		c.foreign++
		return
	}
	if sender < 0 || sender >= len(c.seen) || seq < 0 || seq >= maxSeq {
		c.foreign++
		return
	}
	set := c.seen[sender]
	word := int(seq / 64)
	if word >= len(set) {
		set = append(set, make([]uint64, word+1-len(set)+len(set)/2)...)
		c.seen[sender] = set
	}
	bit := uint64(1) << (seq % 64)
	if set[word]&bit != 0 {
		c.dups++
		return
	}
	set[word] |= bit
	now := time.Since(c.r.start)
	c.lastDelivery = now
	latency := now - time.Duration(sentNS)
	c.r.latency.record(latency)
	c.lastLatency.Store(int64(latency))
	c.delivered.Add(1)
	if sender == c.idx && seq+1 > c.echoed.Load() {
		c.echoed.Store(seq + 1)
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// maxSeq bounds the sequence numbers a reader keeps a bit for, so a
// corrupted or hostile text cannot make it allocate without bound.
const maxSeq = 1 << 32

// send writes the next measured message.
func (c *client) send() error {
	now := time.Since(c.r.start)
	if c.sentAt != nil {
		c.sentAt[c.seq%int64(len(c.sentAt))] = now
	}
	c.buf = c.r.frame(c.buf[:0], c.idx, c.seq, int64(now))
	if err := c.write(c.buf); err != nil {
		return err
	}
	c.seq++
	c.sent.Store(c.seq)
	return nil
}

// write writes one text frame, within writeTimeout.
func (c *client) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// writeTimeout bounds one write, so a server that stops reading does not
// hold a sender past the end of the run.
const writeTimeout = 10 * time.Second

// sendFanout sends at a fixed rate from offset after start until stop is
// closed. The schedule is kept even when a send is late, so a slow moment
// is followed by catching up, but never by more than a second's worth.
func (c *client) sendFanout(rate float64, offset time.Duration, stop <-chan struct{}) {
	interval := time.Duration(float64(time.Second) / rate)
	next := c.r.sendStart + offset
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Since(c.r.start)
		if wait := next - now; wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-stop:
				return
			}
		} else {
			select {
			case <-stop:
				return
			default:
			}
			if -wait > time.Second {
				next = now
			}
		}
		if err := c.send(); err != nil {
			return
		}
		next += interval
	}
}

// sendBurst sends as fast as the window allows: at most window messages not
// yet received back by this same client. The server keeps each sender's
// messages in order, so receiving message n back answers every earlier one
// too (delivered, or lost for good).
//
// A server that drops messages can drop a sender's whole window, and the
// sender would wait forever; so the window is given up on (a stall) when
// its oldest message is older than stall and than twice the latency of the
// last message this client received from anyone. A slow server delays every
// message alike, so it is waited for; a dropped message is overtaken by
// others arriving in good time.
func (c *client) sendBurst(window int, stall time.Duration, stop <-chan struct{}) {
	c.sentAt = make([]time.Duration, window)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for {
			answered := max(c.echoed.Load(), c.floor)
			if c.seq-answered < int64(window) {
				break
			}
			age := time.Since(c.r.start) - c.sentAt[answered%int64(window)]
			limit := max(stall, 2*time.Duration(c.lastLatency.Load()))
			if age >= limit {
				c.stalls++
				c.floor = c.seq
				break
			}
			timer.Reset(limit - age)
			select {
			case <-c.wake:
			case <-timer.C:
			case <-stop:
				return
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		if err := c.send(); err != nil {
			return
		}
	}
}

// frame appends the frame of a measured message in the run's protocol.
func (r *runner) frame(dst []byte, sender int, seq, sentNS int64) []byte {
	switch r.cfg.Proto {
	case ProtoEcho:
		return r.codec.appendText(dst, sender, seq, sentNS)
	case ProtoCentrifugo:
		return appendCentrifugoPublish(dst, seq+3, func(d []byte) []byte { return r.codec.appendText(d, sender, seq, sentNS) })
	}
	dst = append(dst, `{"type":"send","data":{"message":"`...)
	dst = r.codec.appendText(dst, sender, seq, sentNS)
	dst = append(dst, `","cid":"`...)
	dst = append(dst, r.codec.run...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(sender), 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, `"}}`...)
}

// warmupFrame is the frame of warm-up round k in the run's protocol.
func (r *runner) warmupFrame(k int) []byte {
	text := r.codec.warmupText(k)
	switch r.cfg.Proto {
	case ProtoEcho:
		return []byte(text)
	case ProtoCentrifugo:
		return appendCentrifugoPublish(nil, centrifugoWarmupID+int64(k), func(d []byte) []byte { return append(d, text...) })
	}
	b, _ := json.Marshal(map[string]any{"type": "send", "data": map[string]string{
		"message": text, "cid": r.codec.run + "-warmup-" + strconv.Itoa(k),
	}})
	return b
}
