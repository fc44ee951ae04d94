// Package bench is NoChat's load generator and the baseline it is compared
// with: it connects many WebSocket clients to a chat server, has some of
// them send, and accounts for every delivery (lost, duplicated, how late),
// on NoChat's own nochat.v1 or on the tutorial's echo-protocol, which any
// broadcast server speaks. The baseline (baseline.go) is the naive
// in-memory melody broadcast server that NoChat, which stores every message
// before anyone sees it, should match.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Mode is what the clients do once connected.
type Mode string

// The modes.
const (
	// Fanout: S senders send R messages a second each; everyone receives.
	Fanout Mode = "fanout"
	// Burst: every client sends as fast as its window of unanswered
	// messages allows.
	Burst Mode = "burst"
	// Idle: the clients only hold their connections open, so the server's
	// memory per connection can be read.
	Idle Mode = "idle"
)

// The subprotocols the generator speaks.
const (
	ProtoV1   = "nochat.v1"
	ProtoEcho = "echo-protocol"
)

// Config is one run. Zero fields take the defaults noted.
type Config struct {
	URL     string        // WebSocket URL (ws://127.0.0.1:8080/; Centrifugo's: CentrifugoURL)
	Proto   string        // ProtoV1 (default), ProtoEcho or ProtoCentrifugo
	Mode    Mode          // Fanout (default), Burst or Idle
	Clients int           // connections (100)
	Senders int           // clients that send: 5 in fan-out, every client in burst
	Rate    float64       // fan-out: messages a second per sender (10)
	Window  int           // burst: messages a sender may have unanswered (16)
	Size    int           // bytes of message text (64; at least the header)
	Verify  bool          // check over REST afterwards that every sent message is in history
	Single  bool          // nochat.v1: one frame a message, not "messages" frames (?batch=1)
	Connect int           // dials at once (64)
	PID     int           // the server's process id, to read its CPU time and RSS from /proc; 0: none
	Drain   time.Duration // after sending, the longest wait for deliveries (30 s)
	Quiet   time.Duration // stop waiting sooner when nothing arrives for this long (5 s)
	Stall   time.Duration // burst: give up on a window whose oldest message is this old, and twice the latency seen (1 s)
	Retries int           // redials of a failed connection (2)

	// Duration is how long the senders send; in Idle mode, how long the
	// connections are held, 0 meaning until ctx ends (10 s in other modes).
	Duration time.Duration

	// Progress, when set, gets a line a second while the run goes on.
	Progress io.Writer
}

// DefaultURL is where the generator connects unless told otherwise.
const DefaultURL = "ws://127.0.0.1:8080/"

// CentrifugoURL is where it connects to Centrifugo unless told otherwise:
// its default WebSocket endpoint.
const CentrifugoURL = "ws://127.0.0.1:8000/connection/websocket"

// Normalize fills in defaults and checks the configuration. Run calls it;
// a caller parsing flags can call it first to tell usage errors apart.
func (c *Config) Normalize() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.URL == "" {
		c.URL = DefaultURL
		if c.Proto == ProtoCentrifugo {
			c.URL = CentrifugoURL
		}
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("url %q: want ws://host:port/ or wss://host:port/", c.URL)
	}
	if c.Proto == "" {
		c.Proto = ProtoV1
	}
	if c.Proto != ProtoV1 && c.Proto != ProtoEcho && c.Proto != ProtoCentrifugo {
		return fmt.Errorf("proto %q: want %s, %s or %s", c.Proto, ProtoV1, ProtoEcho, ProtoCentrifugo)
	}
	if c.Mode == "" {
		c.Mode = Fanout
	}
	if c.Mode != Fanout && c.Mode != Burst && c.Mode != Idle {
		return fmt.Errorf("mode %q: want fanout, burst or idle", c.Mode)
	}
	def(&c.Clients, 100)
	if c.Clients < 1 {
		return fmt.Errorf("clients %d: want 1 or more", c.Clients)
	}
	if c.Senders == 0 {
		c.Senders = 5
		if c.Mode == Burst {
			c.Senders = c.Clients
		}
	}
	if c.Senders < 0 {
		return fmt.Errorf("senders %d: want 1 or more", c.Senders)
	}
	c.Senders = min(c.Senders, c.Clients)
	if c.Rate == 0 {
		c.Rate = 10
	}
	if c.Rate < 0 {
		return fmt.Errorf("rate %g: want a positive number of messages a second", c.Rate)
	}
	def(&c.Window, 16)
	if c.Window < 1 {
		return fmt.Errorf("window %d: want 1 or more", c.Window)
	}
	def(&c.Size, 64)
	if c.Size < 0 || c.Size > 1<<20 {
		return fmt.Errorf("size %d: want a number of bytes up to 1 MiB", c.Size)
	}
	c.Size = max(c.Size, minTextSize)
	def(&c.Connect, 64)
	if c.Connect < 1 {
		return fmt.Errorf("connect-concurrency %d: want 1 or more", c.Connect)
	}
	if c.Duration < 0 {
		return fmt.Errorf("duration %v: want 0 or more", c.Duration)
	}
	if c.Mode != Idle {
		defDur(&c.Duration, 10*time.Second)
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	c.Retries = max(c.Retries, 0)
	defDur(&c.Drain, 30*time.Second)
	// Long enough that a loaded machine's pause is not taken for loss:
	// a lossy server costs this much waiting at the end of a run.
	defDur(&c.Quiet, 5*time.Second)
	defDur(&c.Stall, time.Second)
	if c.Verify && c.Proto == ProtoCentrifugo {
		return errors.New("verify reads NoChat's history over REST: not with -proto centrifugo")
	}
	if c.Verify && c.Mode == Idle {
		return errors.New("verify: idle mode sends nothing to verify")
	}
	return nil
}

// runner is the state of one run.
type runner struct {
	cfg     Config
	dialURL string // cfg.URL, with ?batch=1 on nochat.v1
	codec   *codec
	senders int
	start   time.Time // the run's clock: texts carry nanoseconds since it
	latency histogram

	sendStart time.Duration // since start; set before the senders run
	phase     atomic.Value  // string, for the progress line

	mu            sync.Mutex
	clients       []*client // connected, by index; nil where the dial failed
	connectErrors map[string]int
	retried       atomic.Int64
}

// Run performs one run and returns what it measured. It returns an error
// only when nothing could be measured (a bad configuration, no connection,
// a REST failure with Verify); losses and missing messages are results.
// Ending ctx ends the run early, and its result covers what happened.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	r := &runner{
		cfg:           cfg,
		codec:         newCodec(cfg.Size),
		senders:       cfg.Senders,
		start:         time.Now(),
		clients:       make([]*client, cfg.Clients),
		connectErrors: make(map[string]int),
		dialURL:       cfg.URL,
	}
	if cfg.Proto == ProtoV1 && !cfg.Single {
		u, _ := url.Parse(cfg.URL) // Normalize parsed it
		q := u.Query()
		q.Set("batch", "1")
		u.RawQuery = q.Encode()
		r.dialURL = u.String()
	}
	if cfg.Mode == Idle {
		r.senders = 0
	}
	res := newResult(cfg, r.codec.run)

	var startID int64
	if cfg.Verify {
		var err error
		if startID, err = latestID(ctx, restBase(cfg.URL)); err != nil {
			return nil, fmt.Errorf("verify: before the run: %w", err)
		}
	}
	res.Server.before = readProc(cfg.PID)

	stopProgress := r.progress()
	defer stopProgress()

	r.phase.Store("connecting")
	t0 := time.Now()
	r.connect(ctx)
	res.ConnectSeconds = time.Since(t0).Seconds()
	clients := r.connected()
	res.Connected = len(clients)
	res.Failed = cfg.Clients - len(clients)
	res.Retries = r.retried.Load()
	res.ConnectErrors = r.connectErrors
	if len(clients) == 0 {
		return res, fmt.Errorf("no client could connect to %s: %s", cfg.URL, firstReason(r.connectErrors))
	}

	if cfg.Mode == Idle {
		r.hold(ctx, res)
	} else {
		r.phase.Store("warming up")
		res.NotReady = r.warmUp(ctx, clients)
		r.measure(ctx, res, clients)
	}

	r.phase.Store("closing")
	res.Disconnected, res.DisconnectReasons = r.closeAll(clients)
	stopProgress()
	r.collect(res, clients)

	if cfg.Verify && res.Sent > 0 {
		v, err := verify(ctx, restBase(cfg.URL), startID, r.codec, r.sentCounts(clients))
		if err != nil {
			return res, fmt.Errorf("verify: %w", err)
		}
		res.Verify = v
	}
	return res, nil
}

// connect dials every client, a bounded number at a time, retrying each a
// few times, and starts each one's reader as soon as it is connected (so
// the server's pings are answered however long the rest take).
func (r *runner) connect(ctx context.Context) {
	var protos []string
	if r.cfg.Proto != ProtoCentrifugo { // JSON is Centrifugo's protocol without one
		protos = []string{r.cfg.Proto}
	}
	dialer := &websocket.Dialer{
		Subprotocols:     protos,
		HandshakeTimeout: 10 * time.Second,
		// Small buffers and a shared write buffer pool: thousands of
		// connections in one generator on a small machine.
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(r.cfg.Connect, r.cfg.Clients) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= r.cfg.Clients || ctx.Err() != nil {
					return
				}
				conn, err := r.dial(ctx, dialer)
				r.mu.Lock()
				if err != nil {
					r.connectErrors[err.Error()]++
				} else {
					c := newClient(r, i, conn)
					r.clients[i] = c
					go c.readLoop()
				}
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func (r *runner) dial(ctx context.Context, d *websocket.Dialer) (*websocket.Conn, error) {
	for attempt := 0; ; attempt++ {
		conn, resp, err := d.DialContext(ctx, r.dialURL, nil)
		if err == nil && r.cfg.Proto == ProtoCentrifugo {
			if err := centrifugoHandshake(ctx, conn); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		}
		if err == nil {
			if conn.Subprotocol() != r.cfg.Proto {
				conn.Close()
				return nil, fmt.Errorf("server did not accept subprotocol %s", r.cfg.Proto)
			}
			return conn, nil
		}
		retry := resp == nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if !retry || attempt >= r.cfg.Retries || ctx.Err() != nil {
			return nil, dialError(err, resp)
		}
		r.retried.Add(1)
		backoff := time.Duration(100<<attempt)*time.Millisecond + rand.N(100*time.Millisecond)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// connected returns the clients that connected, in index order.
func (r *runner) connected() []*client {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cs []*client
	for _, c := range r.clients {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

func alive(c *client) bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// warmUp makes sure every client is in the room before anything is
// measured: a server may still be adding a connection to its broadcast set
// after the handshake has answered. One client sends a warm-up message
// every 250 ms until every client has received one; a server broadcasts in
// order, so a client that got one gets everything after it. It returns how
// many clients never got one (after 10 s).
func (r *runner) warmUp(ctx context.Context, clients []*client) int {
	deadline := time.Now().Add(10 * time.Second)
	for k := 1; ; k++ {
		var from *client
		for _, c := range clients {
			if alive(c) {
				from = c
				break
			}
		}
		if from == nil {
			return 0
		}
		from.write(r.warmupFrame(k))
		round := time.Now().Add(250 * time.Millisecond)
		for {
			notReady := 0
			for _, c := range clients {
				if alive(c) && !c.warm.Load() {
					notReady++
				}
			}
			if notReady == 0 || ctx.Err() != nil {
				return notReady
			}
			if time.Now().After(deadline) {
				return notReady
			}
			if time.Now().After(round) {
				break
			}
			sleep(ctx, 10*time.Millisecond)
		}
	}
}

// measure runs the senders for the configured duration, then waits for the
// deliveries still on their way.
func (r *runner) measure(ctx context.Context, res *Result, clients []*client) {
	participants := 0
	for _, c := range clients {
		if alive(c) {
			c.participant = true
			participants++
		}
	}
	res.Participants = participants

	cpu0, self0 := readProc(r.cfg.PID), readProc(os.Getpid())
	r.phase.Store("sending")
	r.sendStart = time.Since(r.start)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	for _, c := range clients {
		if !c.sender || !alive(c) {
			continue
		}
		res.SendersActive++
		// Fan-out senders are spread over the interval, not all at once.
		offset := interval * time.Duration(c.idx) / time.Duration(r.senders)
		wg.Go(func() {
			if r.cfg.Mode == Burst {
				c.sendBurst(r.cfg.Window, r.cfg.Stall, stop)
			} else {
				c.sendFanout(r.cfg.Rate, offset, stop)
			}
		})
	}
	select {
	case <-time.After(r.cfg.Duration):
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()
	sendEnd := time.Since(r.start)
	res.SendSeconds = (sendEnd - r.sendStart).Seconds()

	r.phase.Store("draining")
	t0 := time.Now()
	res.DrainEnd = r.drain(ctx, clients)
	res.DrainSeconds = time.Since(t0).Seconds()
	cpu1, self1 := readProc(r.cfg.PID), readProc(os.Getpid())
	res.Server.measure(cpu0, cpu1)
	if self0.ok && self1.ok {
		res.GeneratorCPUSeconds = (self1.cpu - self0.cpu).Seconds()
	}
}

// Why the wait for deliveries after sending ended.
const (
	drainComplete    = "complete"    // every client still connected had every message
	drainQuiet       = "quiet"       // nothing arrived for Quiet
	drainLimit       = "limit"       // Drain passed
	drainInterrupted = "interrupted" // ctx ended
)

// drain waits until every client still connected has every sent message,
// nothing has arrived for Quiet, or Drain has passed, and says which.
func (r *runner) drain(ctx context.Context, clients []*client) string {
	deadline := time.Now().Add(r.cfg.Drain)
	lastChange := time.Now()
	var last int64 = -1
	var sent int64
	for _, c := range clients {
		sent += c.sent.Load()
	}
	for {
		var got, want int64
		for _, c := range clients {
			if alive(c) {
				got += c.delivered.Load()
				want += sent
			}
		}
		switch {
		case got >= want:
			return drainComplete
		case ctx.Err() != nil:
			return drainInterrupted
		case !time.Now().Before(deadline):
			return drainLimit
		case got != last:
			last, lastChange = got, time.Now()
		case time.Since(lastChange) > r.cfg.Quiet:
			return drainQuiet
		}
		sleep(ctx, 10*time.Millisecond)
	}
}

// hold keeps idle connections open for the duration or until ctx ends,
// reading the server's RSS once they are all connected.
func (r *runner) hold(ctx context.Context, res *Result) {
	r.phase.Store("holding")
	sleep(ctx, 2*time.Second) // let the server finish registering them
	res.Server.connected = readProc(r.cfg.PID)
	if r.cfg.Duration > 0 {
		sleep(ctx, r.cfg.Duration)
	} else {
		<-ctx.Done()
	}
	s := &res.Server
	end := readProc(r.cfg.PID)
	s.measure(s.connected, end)
	if s.Measured && s.connected.ok && res.Connected > 0 {
		perConn := func(b int64) float64 { return float64(b) / float64(res.Connected) / 1024 }
		s.RSSConnectedMiB = mib(s.connected.rss)
		s.RSSPerConnKiB = perConn(s.connected.rss - s.before.rss)
		s.RSSHeldPerConnKiB = perConn(end.rss - s.before.rss)
	}
}

// closeAll counts the clients the server disconnected during the run, then
// closes every connection with a close frame (1000), waiting briefly for
// the server's answer before cutting the rest.
func (r *runner) closeAll(clients []*client) (int, map[string]int) {
	reasons := make(map[string]int)
	n := 0
	for _, c := range clients {
		if !alive(c) {
			c.dropped = true
			n++
			reasons[readReason(c.readErr)]++
		}
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bench done")
	deadline := time.Now().Add(2 * time.Second)
	for _, c := range clients {
		c.conn.WriteControl(websocket.CloseMessage, msg, deadline)
	}
	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	for _, c := range clients {
		select {
		case <-c.done:
		case <-wait.C:
		}
	}
	for _, c := range clients {
		c.conn.Close()
		<-c.done
	}
	return n, reasons
}

// collect adds up the clients' counts once their readers have stopped.
func (r *runner) collect(res *Result, clients []*client) {
	var lastDelivery time.Duration
	for _, c := range clients {
		res.Sent += c.sent.Load()
		res.Stalls += c.stalls
	}
	for _, c := range clients {
		d := c.delivered.Load()
		res.Delivered += d
		res.Duplicated += c.dups
		res.Foreign += c.foreign
		res.Acks += c.acks
		for code, n := range c.serverErrors {
			res.ServerErrors[code] += n
		}
		lastDelivery = max(lastDelivery, c.lastDelivery)
	}
	res.Expected = res.Sent * int64(res.Participants)
	res.Lost = max(0, res.Expected-res.Delivered)
	for _, c := range clients {
		if c.participant && c.dropped {
			res.LostAtDisconnected += max(0, res.Sent-c.delivered.Load())
		}
	}
	if res.SendSeconds > 0 {
		res.SentPerSecond = float64(res.Sent) / res.SendSeconds
	}
	if span := (lastDelivery - r.sendStart).Seconds(); res.Delivered > 0 && span > 0 {
		res.DeliveriesPerSecond = float64(res.Delivered) / span
	}
	res.Latency = latencyOf(&r.latency)
}

// sentCounts returns how many messages each sender sent.
func (r *runner) sentCounts(clients []*client) []int64 {
	out := make([]int64, r.senders)
	for _, c := range clients {
		if c.sender {
			out[c.idx] = c.sent.Load()
		}
	}
	return out
}

// progress prints a line a second until the returned function is called.
func (r *runner) progress() func() {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var once sync.Once
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastSent, lastDelivered int64
		for {
			select {
			case <-tick.C:
			case <-done:
				return
			}
			var conns, up, sent, delivered int64
			r.mu.Lock()
			for _, c := range r.clients {
				if c == nil {
					continue
				}
				conns++
				if alive(c) {
					up++
				}
				sent += c.sent.Load()
				delivered += c.delivered.Load()
			}
			r.mu.Unlock()
			line := fmt.Sprintf("%5.0fs %-10s clients %d/%d (%d dropped)", time.Since(r.start).Seconds(), r.phase.Load(), up, r.cfg.Clients, conns-up)
			if r.cfg.Mode != Idle {
				line += fmt.Sprintf("  sent %d (+%d)  delivered %d (+%d)", sent, sent-lastSent, delivered, delivered-lastDelivered)
			}
			if p := readProc(r.cfg.PID); p.ok {
				line += fmt.Sprintf("  server RSS %.1f MiB", float64(p.rss)/(1<<20))
			}
			fmt.Fprintln(r.cfg.Progress, line)
			lastSent, lastDelivered = sent, delivered
		}
	}()
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// restBase is the HTTP origin of a WebSocket URL: ws://h:p/x → http://h:p.
func restBase(wsURL string) string {
	u, err := url.Parse(wsURL)
	if err != nil {
		return ""
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}

func firstReason(m map[string]int) string {
	best, n := "", 0
	for k, v := range m {
		if v > n || (v == n && strings.Compare(k, best) < 0) {
			best, n = k, v
		}
	}
	return best
}
