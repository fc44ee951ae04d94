package chat

import (
	"context"

	"nochat/db"
)

// FlushErrors writes the error log's changes now, as the flusher does once
// a second, so a test need not wait for its tick.
func FlushErrors(h *Hub) error { return h.errors.flush(context.Background()) }

// ErrorEntries is how many entries the error log holds in memory.
func ErrorEntries(h *Hub) int {
	h.errors.mu.Lock()
	defer h.errors.mu.Unlock()
	return len(h.errors.entries)
}

// ErrorLogSize is the most entries the error log keeps.
const ErrorLogSize = errorLogSize

// BreakErrorSaving makes the error log's next save call f instead of the
// store, as a fault the flusher must survive.
func BreakErrorSaving(h *Hub, f func()) {
	h.errors.mu.Lock()
	defer h.errors.mu.Unlock()
	save := h.errors.save
	h.errors.save = func(ctx context.Context, es []db.ErrorEntry, keep int) error {
		f()
		return save(ctx, es, keep)
	}
}
