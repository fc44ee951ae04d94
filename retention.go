package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"nochat/chat"
)

// retention is how much history NoChat keeps: -retain-days and
// -retain-messages. The zero value keeps everything.
type retention struct {
	days     int // delete messages older than this many days; 0: no age limit
	messages int // keep only the newest this many; 0: no count limit
}

func (r retention) keepsAll() bool { return r.days == 0 && r.messages == 0 }

// parseRetention reads the two retention flags' values.
func parseRetention(days, messages string) (retention, error) {
	var r retention
	var err error
	if r.days, err = strconv.Atoi(days); err != nil || r.days < 0 {
		return r, fmt.Errorf("-retain-days %q: want a whole number of days, 0 (keep everything) or more", days)
	}
	if r.messages, err = strconv.Atoi(messages); err != nil || r.messages < 0 {
		return r, fmt.Errorf("-retain-messages %q: want a whole number of messages, 0 (keep everything) or more", messages)
	}
	return r, nil
}

// pruner deletes what retention no longer keeps: the hub, which deletes in
// small transactions (db.Store.Prune) and then has its replay window forget
// what went, so that no resuming client is handed a deleted message.
type pruner interface {
	Prune(ctx context.Context, olderThan time.Time, keepNewest int) (int64, error)
}

// startRetention enforces r in the background: once now, then every
// interval, each pass deleting in small transactions so that chat messages
// are never held up for long. A pass with nothing to delete only reads: an
// idle Pi does not write to its SD card. The count of what was removed is
// db.Store.Pruned(). A pass that panics is recorded in errs and the next
// pass runs as usual. The returned stop ends the runner (as ctx ending does)
// and waits for it.
func startRetention(ctx context.Context, log *slog.Logger, p pruner, errs panicRecorder, r retention, interval time.Duration) (stop func()) {
	if r.keepsAll() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			prune(ctx, log, p, errs, r)
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// panicRecorder is where a retention pass that panicked is reported: the
// hub's error log.
type panicRecorder interface {
	RecordErrorAt(kind, place, detail, subject string)
}

// prune is one retention pass.
func prune(ctx context.Context, log *slog.Logger, p pruner, errs panicRecorder, r retention) {
	defer func() {
		// Unrecovered, a panic here would end the process.
		if v := recover(); v != nil {
			errs.RecordErrorAt(chat.KindPanic, "retention", fmt.Sprint(v), "the retention pass")
			log.Error("panic", "place", "retention", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	var olderThan time.Time
	if r.days > 0 {
		olderThan = time.Now().AddDate(0, 0, -r.days)
	}
	n, err := p.Prune(ctx, olderThan, r.messages)
	switch {
	case err != nil && ctx.Err() == nil: // not just stopping
		log.Warn("retention", "err", err, "removed", n)
	case n > 0:
		log.Info("retention removed old messages", "removed", n, "retain_days", r.days, "retain_messages", r.messages)
	default:
		log.Debug("retention pass: nothing to remove")
	}
}
