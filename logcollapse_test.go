package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// One client flooding refused logins, rate-limited WebSocket sends and
// rate-limited REST sends used to write a log line for each: ~98,000 lines
// a minute. Collapsed, the log holds a bounded number of lines, and the
// summary lines at shutdown account for every refusal.
func TestRefusalFloodsWriteABoundedLog(t *testing.T) {
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_ADMIN_PASSWORD": "the right one"}, "-log-level", "info")

	const logins = 300
	for i := range logins {
		if _, status := adminLogin(t, s.url, fmt.Sprint("guess", i)); status < 400 {
			t.Fatalf("guess %d answered %d", i, status)
		}
	}
	const rest = 300
	for i := range rest {
		postStatus(t, s.url+"/discussion/"+url.PathEscape(fmt.Sprint("rest ", i)))
	}
	const frames = 1000
	c := dialV1(t, s.url, "flood")
	for i := range frames {
		c.say(fmt.Sprint("fast ", i), fmt.Sprint("c", i))
	}
	refused := 0
	for answered := 0; answered < frames; {
		switch f := c.next(); f.Type {
		case "ack":
			answered++
		case "error":
			answered++
			if f.Data.Code == "rate_limited" {
				refused++
			}
		}
	}
	c.conn.Close()
	s.shutdown(t)

	lines := strings.Split(strings.TrimSpace(s.logs.String()), "\n")
	t.Logf("%d log lines for %d refused logins, %d REST and %d WebSocket sends (%d rate-limited)", len(lines), logins, rest, frames, refused)
	if len(lines) > 60 {
		t.Errorf("%d log lines for %d refused logins, %d REST and %d WebSocket sends, want at most 60; the first:\n%s",
			len(lines), logins, rest, frames, strings.Join(lines[:min(20, len(lines))], "\n"))
	}
	// The one line that passed and the summaries account for each refusal.
	repeated := regexp.MustCompile(`repeated (\d+) more times`)
	seen := 0
	for _, l := range lines {
		if !strings.Contains(l, `place="WebSocket frame: rate_limited"`) {
			continue
		}
		seen++
		if m := repeated.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			seen += n - 1
		}
	}
	if seen != refused || refused == 0 {
		t.Errorf("the log accounts for %d rate-limited frames, the client saw %d refused", seen, refused)
	}
}

// collapseLog is a collapseHandler over a text handler into a buffer, on a
// clock the test steps. The window is an hour, so its real timer never
// fires while the test runs: the summaries come from the test's own steps.
type collapseLog struct {
	h   *collapseHandler
	log *slog.Logger
	out *syncBuffer
	now time.Time
}

func newCollapseLog(maxKeys int) *collapseLog {
	l := &collapseLog{out: &syncBuffer{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	text := slog.NewTextHandler(l.out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	l.h = newCollapseHandler(text, time.Hour, maxKeys, func() time.Time { return l.now })
	l.log = slog.New(l.h)
	return l
}

func (l *collapseLog) lines() []string {
	s := strings.TrimSpace(l.out.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestCollapseHandler(t *testing.T) {
	t.Run("writes the first line, then one summary a window", func(t *testing.T) {
		l := newCollapseLog(100)
		for i := range 1000 {
			l.log.Info("rate limited", "place", "frame", "subject", fmt.Sprint("client ", i))
		}
		l.now = l.now.Add(time.Hour) // the window ends
		l.log.Info("rate limited", "place", "frame", "subject", "client 1000")
		want := []string{
			`level=INFO msg="rate limited" place=frame subject="client 0"`,
			`level=INFO msg="rate limited: repeated 999 more times in the last 1h0m0s" place=frame subject="client 999"`,
			`level=INFO msg="rate limited" place=frame subject="client 1000"`,
		}
		if got := l.lines(); !slices.Equal(got, want) {
			t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("tells lines apart by level, message and place", func(t *testing.T) {
		l := newCollapseLog(100)
		for range 3 {
			l.log.Info("refused", "place", "a", "detail", "x")
			l.log.Info("refused", "place", "b", "detail", "y")
			l.log.Warn("refused", "place", "a")
			l.log.Info("other")
			l.log.With("place", "c").Info("refused")
		}
		if got := len(l.lines()); got != 5 {
			t.Fatalf("%d lines before the window ends, want the 5 different ones:\n%s", got, l.out)
		}
		l.h.flush()
		got := l.lines()[5:]
		slices.Sort(got)
		want := []string{
			`level=INFO msg="other: repeated 2 more times in the last 1h0m0s"`,
			`level=INFO msg="refused: repeated 2 more times in the last 1h0m0s" place=a detail=x`,
			`level=INFO msg="refused: repeated 2 more times in the last 1h0m0s" place=b detail=y`,
			`level=INFO msg="refused: repeated 2 more times in the last 1h0m0s" place=c`,
			`level=WARN msg="refused: repeated 2 more times in the last 1h0m0s" place=a`,
		}
		if !slices.Equal(got, want) {
			t.Fatalf("summaries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("remembers a bounded number of lines", func(t *testing.T) {
		l := newCollapseLog(10)
		for i := range 10_000 {
			l.log.Info(fmt.Sprint("line ", i))
		}
		if got := len(l.lines()); got != 10 {
			t.Fatalf("%d lines written, want the first 10", got)
		}
		if n := len(l.h.c.seen); n > 10 {
			t.Fatalf("%d lines remembered, want at most 10", n)
		}
		l.h.flush()
		got := l.lines()
		if want := `level=WARN msg="9990 more log lines not written: over 10 different lines in the last 1h0m0s"`; got[len(got)-1] != want {
			t.Fatalf("last line %q, want %q", got[len(got)-1], want)
		}
	})
	t.Run("a quiet window writes nothing more", func(t *testing.T) {
		l := newCollapseLog(10)
		l.log.Info("once")
		l.now = l.now.Add(time.Hour)
		l.log.Info("once")
		l.h.flush()
		if got := l.lines(); len(got) != 2 {
			t.Fatalf("log %q, want the line twice and no summary", got)
		}
	})
}
