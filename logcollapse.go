package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Repeated log lines are collapsed: a storm of refusals is a count in the
// log, not a write storm on the SD card (one client once wrote 98,434 lines,
// 14 MB, a minute of refused logins).
const (
	// logRepeatWindow is the interval in which a line is written once; its
	// repeats are counted and summed up in one line at its end.
	logRepeatWindow = 10 * time.Second
	// logRepeatKeys bounds the distinct lines remembered in one window.
	// Lines are told apart by their message and key attributes, texts from
	// the code, so a server has a few dozen; past the bound new lines are
	// only counted.
	logRepeatKeys = 1024
)

// logKeyAttr is the attribute that, with the level and the message, makes
// two log lines "the same line": the error log's place. Other attributes
// (the detail, the client) vary from one repeat to the next; the summary
// line shows the latest.
const logKeyAttr = "place"

// collapseHandler is a slog.Handler that writes the first of each line
// (level, message and key attributes) in a window through to the handler it
// wraps, counts the repeats, and at the end of the window writes one summary
// line for each line that repeated: its message with "repeated N more times
// in the last 10s", and the latest repeat's attributes.
type collapseHandler struct {
	inner  slog.Handler
	c      *collapser
	prefix string // groups and key attributes from WithGroup and WithAttrs
}

// collapser is the state every handler derived from one collapseHandler
// shares.
type collapser struct {
	window  time.Duration
	maxKeys int
	now     func() time.Time // time.Now; tests step a clock of their own

	mu      sync.Mutex
	end     time.Time // when the current window ends
	seen    map[string]*repeats
	dropped int          // lines over maxKeys in this window
	first   slog.Handler // where the dropped count is written
	timer   *time.Timer  // writes the summaries of a window that ended
	closed  bool
}

// repeats is a line's count in the current window.
type repeats struct {
	n      int          // repeats after the first
	latest slog.Record  // the latest repeat, for the summary
	inner  slog.Handler // the handler it would have gone to
}

// newCollapseHandler wraps inner. now is the clock (time.Now outside tests).
func newCollapseHandler(inner slog.Handler, window time.Duration, maxKeys int, now func() time.Time) *collapseHandler {
	return &collapseHandler{inner: inner, c: &collapser{
		window:  window,
		maxKeys: maxKeys,
		now:     now,
		seen:    make(map[string]*repeats),
		first:   inner,
	}}
}

// Enabled reports whether the wrapped handler takes records of level.
func (h *collapseHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// WithAttrs returns a handler that adds attrs, sharing the repeat counts.
func (h *collapseHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeKeyAttr(&b, a)
	}
	return &collapseHandler{inner: h.inner.WithAttrs(attrs), c: h.c, prefix: b.String()}
}

// WithGroup returns a handler that nests later attributes in a group,
// sharing the repeat counts.
func (h *collapseHandler) WithGroup(name string) slog.Handler {
	return &collapseHandler{inner: h.inner.WithGroup(name), c: h.c, prefix: h.prefix + name + "."}
}

// Handle writes r through, or counts it as a repeat.
func (h *collapseHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		// Debug lines are asked for on purpose (-log-level debug), to see
		// each thing as it happens: they pass through, every one.
		return h.inner.Handle(ctx, r)
	}
	var b strings.Builder
	for _, part := range []string{r.Level.String(), h.prefix, r.Message} {
		b.WriteString(part)
		b.WriteByte('\x00')
	}
	r.Attrs(func(a slog.Attr) bool { writeKeyAttr(&b, a); return true })
	key := b.String()

	c := h.c
	c.mu.Lock()
	ended := c.rollLocked()
	pass := false
	if rep, ok := c.seen[key]; ok {
		rep.n++
		rep.latest = r.Clone()
		rep.inner = h.inner
		c.scheduleLocked()
	} else if len(c.seen) < c.maxKeys {
		c.seen[key] = &repeats{}
		pass = true
	} else {
		c.dropped++
		c.scheduleLocked()
	}
	c.mu.Unlock()

	c.write(ctx, ended)
	if pass {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

// writeKeyAttr adds a to a line's key if it is a key attribute
// (logKeyAttr); other attributes do not tell lines apart.
func writeKeyAttr(b *strings.Builder, a slog.Attr) {
	if a.Key != logKeyAttr {
		return
	}
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(a.Value.String())
	b.WriteByte('\x00')
}

// summary is a line to write at the end of a window.
type summary struct {
	inner slog.Handler
	r     slog.Record
}

// rollLocked starts a new window if the current one has ended, and returns
// the summaries of the one that ended.
func (c *collapser) rollLocked() []summary {
	now := c.now()
	if now.Before(c.end) {
		return nil
	}
	out := c.takeLocked(now)
	c.end = now.Add(c.window)
	return out
}

// takeLocked returns the window's summaries and forgets its lines.
func (c *collapser) takeLocked(now time.Time) []summary {
	var out []summary
	for _, rep := range c.seen {
		if rep.n == 0 {
			continue
		}
		r := slog.NewRecord(now, rep.latest.Level, fmt.Sprintf("%s: repeated %d more times in the last %s", rep.latest.Message, rep.n, c.window), 0)
		rep.latest.Attrs(func(a slog.Attr) bool { r.AddAttrs(a); return true })
		out = append(out, summary{rep.inner, r})
	}
	if c.dropped > 0 {
		r := slog.NewRecord(now, slog.LevelWarn, fmt.Sprintf("%d more log lines not written: over %d different lines in the last %s", c.dropped, c.maxKeys, c.window), 0)
		out = append(out, summary{c.first, r})
	}
	clear(c.seen)
	c.dropped = 0
	return out
}

// scheduleLocked makes sure the current window's summaries are written when
// it ends, even if no line comes after it.
func (c *collapser) scheduleLocked() {
	if c.timer != nil || c.closed {
		return
	}
	c.timer = time.AfterFunc(c.end.Sub(c.now()), func() {
		// This goroutine only formats counts and hands records to the
		// wrapped handler (slog's own, which recovers a panicking
		// LogValuer): it cannot panic.
		c.mu.Lock()
		c.timer = nil
		ended := c.rollLocked()
		c.mu.Unlock()
		c.write(context.Background(), ended)
	})
}

// write hands summaries to their handlers.
func (c *collapser) write(ctx context.Context, lines []summary) {
	for _, s := range lines {
		s.inner.Handle(ctx, s.r)
	}
}

// flush writes the summaries of the window so far and stops the timer: for
// shutdown, so that the last counts are not lost.
func (h *collapseHandler) flush() {
	c := h.c
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.closed = true
	lines := c.takeLocked(c.now())
	c.mu.Unlock()
	c.write(context.Background(), lines)
}
