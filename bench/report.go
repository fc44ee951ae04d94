package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"
)

// Result is what a run measured. Its JSON form is what -json writes.
type Result struct {
	Run             string    `json:"run"` // the run id in every message text
	Date            time.Time `json:"date"`
	URL             string    `json:"url"`
	Proto           string    `json:"proto"`
	Mode            Mode      `json:"mode"`
	Clients         int       `json:"clients"`
	Senders         int       `json:"senders"`
	Rate            float64   `json:"rate,omitempty"`   // fan-out: per sender
	Window          int       `json:"window,omitempty"` // burst
	Size            int       `json:"size"`             // bytes of message text
	DurationSeconds float64   `json:"duration_s"`

	Connected         int            `json:"connected"`
	Failed            int            `json:"failed"`
	Retries           int64          `json:"retries"`
	ConnectSeconds    float64        `json:"connect_s"`
	ConnectErrors     map[string]int `json:"connect_errors,omitempty"`
	NotReady          int            `json:"not_ready,omitempty"` // never received a warm-up message
	Participants      int            `json:"participants"`        // connected when sending began
	Disconnected      int            `json:"disconnected"`        // dropped by the server during the run
	DisconnectReasons map[string]int `json:"disconnect_reasons,omitempty"`

	SendersActive       int              `json:"senders_active"`
	Sent                int64            `json:"sent"`
	SendSeconds         float64          `json:"send_s"`
	DrainSeconds        float64          `json:"drain_s"`   // waiting for deliveries after sending
	DrainEnd            string           `json:"drain_end"` // complete, quiet (nothing arrived for a while), limit or interrupted
	SentPerSecond       float64          `json:"sent_per_s"`
	Expected            int64            `json:"expected"`  // sent × participants
	Delivered           int64            `json:"delivered"` // distinct (message, client) deliveries
	Lost                int64            `json:"lost"`
	LostAtDisconnected  int64            `json:"lost_at_disconnected"` // part of Lost: owed to clients the server dropped
	Duplicated          int64            `json:"duplicated"`
	DeliveriesPerSecond float64          `json:"deliveries_per_s"` // from the first send to the last delivery
	Latency             Latency          `json:"latency_ms"`
	Foreign             int64            `json:"foreign"` // frames that were not this run's messages
	Acks                int64            `json:"acks"`    // nochat.v1 acks
	ServerErrors        map[string]int64 `json:"server_errors,omitempty"`
	Stalls              int64            `json:"stalls,omitempty"` // burst: windows given up on

	Server              ServerStats   `json:"server"`
	GeneratorCPUSeconds float64       `json:"generator_cpu_s,omitempty"` // this process, while sending and draining
	Verify              *VerifyResult `json:"verify,omitempty"`
}

// Latency is send-to-receive time over every delivery, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// ServerStats is what /proc says about the server during the measured part
// of the run (sending and draining; in idle mode, holding).
type ServerStats struct {
	PID           int     `json:"pid,omitempty"`
	Measured      bool    `json:"measured"`
	CPUSeconds    float64 `json:"cpu_s"`                      // user + system
	RSSBeforeMiB  float64 `json:"rss_before_mib"`             // before the first connection
	RSSMiB        float64 `json:"rss_mib"`                    // at the end
	RSSPerConnKiB float64 `json:"rss_per_conn_kib,omitempty"` // idle: growth from before connecting to all connected, per connection
	// Idle: RSS once all connected, and the growth from before connecting
	// to the end of holding, per connection. A server's keepalive starts
	// after tens of seconds (NoChat pings every 25 s), and what it costs
	// shows only in a run held that long.
	RSSConnectedMiB   float64 `json:"rss_connected_mib,omitempty"`
	RSSHeldPerConnKiB float64 `json:"rss_held_per_conn_kib,omitempty"`

	before, connected procSample
}

func (s *ServerStats) measure(a, b procSample) {
	if !a.ok || !b.ok || !s.before.ok {
		return
	}
	s.Measured = true
	s.CPUSeconds = (b.cpu - a.cpu).Seconds()
	s.RSSBeforeMiB = mib(s.before.rss)
	s.RSSMiB = mib(b.rss)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// VerifyResult is the check of history over REST.
type VerifyResult struct {
	Sent                int64    `json:"sent"`
	Found               int64    `json:"found"`
	Missing             int64    `json:"missing"`
	DuplicatedInHistory int64    `json:"duplicated_in_history"`
	MissingExamples     []string `json:"missing_examples,omitempty"`
}

func newResult(cfg Config, run string) *Result {
	r := &Result{
		Run:             run,
		Date:            time.Now().UTC().Truncate(time.Second),
		URL:             cfg.URL,
		Proto:           cfg.Proto,
		Mode:            cfg.Mode,
		Clients:         cfg.Clients,
		Senders:         cfg.Senders,
		Size:            cfg.Size,
		DurationSeconds: cfg.Duration.Seconds(),
		ServerErrors:    make(map[string]int64),
		Server:          ServerStats{PID: cfg.PID},
	}
	switch cfg.Mode {
	case Fanout:
		r.Rate = cfg.Rate
	case Burst:
		r.Window = cfg.Window
	case Idle:
		r.Senders = 0
	}
	return r
}

func latencyOf(h *histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{
		Count: h.n.Load(),
		P50:   ms(h.quantile(0.50)),
		P90:   ms(h.quantile(0.90)),
		P99:   ms(h.quantile(0.99)),
		Max:   ms(time.Duration(h.max.Load())),
		Mean:  ms(h.mean()),
	}
}

// dialError says why a connection failed, in words that group well: the
// same cause for a thousand clients is one line with a count.
func dialError(err error, resp *http.Response) error {
	if resp != nil {
		body := make([]byte, 200)
		n, _ := io.ReadFull(resp.Body, body)
		reason := strings.TrimSpace(strings.SplitN(string(body[:n]), "\n", 2)[0])
		if reason == "" {
			reason = http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, reason)
	}
	return errors.New(netReason(err))
}

// readReason says why a connection ended.
func readReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Text != "" {
			return fmt.Sprintf("close %d %s", ce.Code, ce.Text)
		}
		return fmt.Sprintf("close %d", ce.Code)
	}
	if err == nil {
		return "unknown"
	}
	return netReason(err)
}

// netReason drops the addresses from a network error, which differ for
// every connection.
func netReason(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			return op.Op + ": " + sys.Err.Error()
		}
		return op.Op + ": " + op.Err.Error()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "connection closed without a close frame"
	}
	return err.Error()
}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the result as a table for people.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}

	fmt.Fprintf(tw, "nochat bench: %s, %s, %s (run %s)\n", r.Mode, r.Proto, r.URL, r.Run)
	row("clients", "%d connected, %d failed, %d dropped by the server (connecting took %.1f s, %d retries)",
		r.Connected, r.Failed, r.Disconnected, r.ConnectSeconds, r.Retries)
	for _, k := range sortedKeys(r.ConnectErrors) {
		row("", "connect failed: %s ×%d", k, r.ConnectErrors[k])
	}
	for _, k := range sortedKeys(r.DisconnectReasons) {
		row("", "dropped: %s ×%d", k, r.DisconnectReasons[k])
	}
	if r.NotReady > 0 {
		row("", "warning: %d clients never received a warm-up message", r.NotReady)
	}
	switch r.Mode {
	case Fanout:
		row("load", "%d senders × %g msg/s for %s, %d-byte messages", r.SendersActive, r.Rate, dur(r.DurationSeconds), r.Size)
	case Burst:
		row("load", "%d senders, window %d, for %s, %d-byte messages", r.SendersActive, r.Window, dur(r.DurationSeconds), r.Size)
	case Idle:
		if r.DurationSeconds > 0 {
			row("load", "none: connections held for %s", dur(r.DurationSeconds))
		} else {
			row("load", "none: connections held until interrupted")
		}
	}
	if r.Mode != Idle {
		row("sent", "%d messages (%.1f/s over %.1f s)", r.Sent, r.SentPerSecond, r.SendSeconds)
		row("deliveries", "%d of %d expected (%d clients × %d messages)", r.Delivered, r.Expected, r.Participants, r.Sent)
		lost := fmt.Sprintf("%d (%s)", r.Lost, pct(r.Lost, r.Expected))
		if r.LostAtDisconnected > 0 {
			lost += fmt.Sprintf(", of which %d owed to dropped clients", r.LostAtDisconnected)
		}
		switch r.DrainEnd {
		case drainQuiet:
			lost += fmt.Sprintf("; stopped waiting after %.1f s when nothing more arrived", r.DrainSeconds)
		case drainLimit:
			lost += fmt.Sprintf("; stopped waiting at the -drain limit, %.1f s, with deliveries still arriving", r.DrainSeconds)
		case drainInterrupted:
			lost += "; interrupted before everything could arrive"
		}
		row("lost", "%s", lost)
		row("duplicated", "%d", r.Duplicated)
		row("deliveries/s", "%.0f", r.DeliveriesPerSecond)
		l := r.Latency
		row("latency", "p50 %s  p90 %s  p99 %s  max %s  (mean %s, send to receive)", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean))
		if r.Proto == ProtoV1 {
			acks := fmt.Sprintf("%d of %d sent", r.Acks, r.Sent)
			if r.Acks < r.Sent {
				acks += fmt.Sprintf(" (%d never acknowledged)", r.Sent-r.Acks)
			}
			row("acks", "%s", acks)
		}
		if r.Stalls > 0 {
			row("stalls", "%d (a sender's whole window went unanswered for a while)", r.Stalls)
		}
	}
	for _, k := range sortedKeys(r.ServerErrors) {
		row("server error", "%s ×%d", k, r.ServerErrors[k])
	}
	if r.Foreign > 0 {
		row("other frames", "%d (not this run's messages)", r.Foreign)
	}
	if s := r.Server; s.Measured {
		if r.Mode == Idle {
			row("server", "pid %d: RSS %.1f MiB before connecting, %.1f MiB all connected, %.1f MiB at the end; CPU %.2f s while holding",
				s.PID, s.RSSBeforeMiB, s.RSSConnectedMiB, s.RSSMiB, s.CPUSeconds)
			row("per conn", "%.1f KiB of RSS once connected, %.1f KiB at the end (held %s: keepalive pings start after tens of seconds)",
				s.RSSPerConnKiB, s.RSSHeldPerConnKiB, dur(r.DurationSeconds))
		} else {
			row("server", "pid %d: CPU %.2f s (sending and draining), RSS %.1f MiB (%.1f MiB before connecting)",
				s.PID, s.CPUSeconds, s.RSSMiB, s.RSSBeforeMiB)
		}
	} else if s.PID != 0 {
		row("server", "pid %d: could not read /proc", s.PID)
	}
	if r.GeneratorCPUSeconds > 0 {
		row("generator", "CPU %.2f s (this process, sending and draining: on a shared machine, not the server's)", r.GeneratorCPUSeconds)
	}
	if v := r.Verify; v != nil {
		row("history", "%d of %d sent messages found, %d missing, %d stored twice", v.Found, v.Sent, v.Missing, v.DuplicatedInHistory)
		for _, m := range v.MissingExamples {
			row("", "missing: %q", m)
		}
	}
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func pct(n, of int64) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

func ms(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

func dur(s float64) string { return time.Duration(s * float64(time.Second)).String() }
