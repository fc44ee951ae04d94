package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"nochat/chat"
	"nochat/db"
)

// maxPage is the most messages one history request returns.
const maxPage = 500

// historyReader reads a room's history a part at a time (db.Store).
type historyReader interface {
	BeforeIn(ctx context.Context, room, id int64, limit int) ([]db.Message, error)
	LatestID(ctx context.Context) (int64, error)
	PageStartIn(ctx context.Context, room, before int64, n int) (int64, error)
	RangeIn(ctx context.Context, room, from, to int64, limit int) ([]db.Message, error)
}

// historyPart is how many messages a history answer reads and holds at
// once: a page of 500 long messages held whole by each of 128 requests
// that never read their answers (one address's limit) was 170 MiB. It is
// what the chat page asks for, a page and one more (which tells it there
// is more), so that the page's own requests are one read each.
const historyPart = pageSize + 1

// parseCount reads a page size: a whole number from 1 to maxPage.
func parseCount(name, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPage {
		return 0, fmt.Errorf("%s must be a whole number from 1 to %d", name, maxPage)
	}
	return n, nil
}

// singleQuery returns a query parameter given at most once.
func singleQuery(r *http.Request, name string) (string, bool, error) {
	vs := r.URL.Query()[name]
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", false, fmt.Errorf("%s is given %d times: give it once", name, len(vs))
}

// encodeMessages answers a page of history: each message with its HTML,
// an empty history as []. The bytes are encode's for the slice, but each
// message is rendered and written in turn, so a page of 500 long messages
// holds one message's HTML and JSON at a time, not all of it (15 MB for a
// page of quote marks, which six clients that never read kept).
func encodeMessages(w http.ResponseWriter, status int, ms []db.Message) {
	mw := newMessageWriter(w, status)
	mw.write(ms)
	mw.close()
}

// messageWriter writes a JSON array of messages, a message at a time.
type messageWriter struct {
	w     http.ResponseWriter
	buf   bytes.Buffer
	enc   *json.Encoder
	empty bool
}

// newMessageWriter answers status and opens the array.
func newMessageWriter(w http.ResponseWriter, status int) *messageWriter {
	jsonHeader(w.Header())
	w.WriteHeader(status)
	mw := &messageWriter{w: w, empty: true}
	mw.enc = json.NewEncoder(&mw.buf)
	mw.buf.WriteByte('[')
	return mw
}

// write writes ms, each with its HTML; false once the client has gone.
func (mw *messageWriter) write(ms []db.Message) bool {
	for i := range ms {
		if !mw.empty {
			mw.buf.WriteByte(',')
		}
		mw.empty = false
		m := ms[i]
		m.HTML = chat.MessageHTML(m.Message, m.Mentions)
		mw.enc.Encode(m)                  // plain strings and numbers: always encodes
		mw.buf.Truncate(mw.buf.Len() - 1) // Encode's newline
		if _, err := mw.w.Write(mw.buf.Bytes()); err != nil {
			return false
		}
		mw.buf.Reset()
	}
	return true
}

// close ends the array.
func (mw *messageWriter) close() {
	mw.buf.WriteString("]\n")
	mw.w.Write(mw.buf.Bytes())
}

// writeHistory answers a room's newest n messages with ids below before
// (0: its newest), oldest first, reading and holding historyPart of them
// at a time. The page's first message is found first; a message stored
// while the answer is written is not in it, and one deleted meanwhile may
// or may not be. Should a later part fail to read, the answer is cut off
// (its JSON left unclosed), never ended as if whole.
func writeHistory(w http.ResponseWriter, r *http.Request, log *slog.Logger, store historyReader, room, before int64, n int) {
	ctx := r.Context()
	if n <= historyPart {
		// A part's worth: one read, as it always was.
		if before == 0 {
			before = math.MaxInt64
		}
		msgs, err := store.BeforeIn(ctx, room, before, n)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		encodeMessages(w, http.StatusOK, msgs)
		return
	}
	var err error
	if before == 0 {
		// The newest: those stored by now.
		if before, err = store.LatestID(ctx); err == nil {
			before++
		}
	}
	var start int64
	if err == nil {
		start, err = store.PageStartIn(ctx, room, before, n)
	}
	var part []db.Message
	if err == nil {
		part, err = store.RangeIn(ctx, room, start, before, min(n, historyPart))
	}
	if err != nil {
		writeError(w, r, log, http.StatusInternalServerError, err)
		return
	}
	mw := newMessageWriter(w, http.StatusOK)
	for {
		if !mw.write(part) {
			return // the client went
		}
		n -= len(part)
		if n <= 0 || len(part) < historyPart {
			break
		}
		from := part[len(part)-1].ID + 1
		if part, err = store.RangeIn(ctx, room, from, before, min(n, historyPart)); err != nil {
			if ctx.Err() == nil { // not just the client gone
				log.Warn("history answer cut off", "room", room, "err", err)
			}
			panic(http.ErrAbortHandler)
		}
	}
	mw.close()
}

// message is one message as REST answers it, with its HTML.
func message(m db.Message) db.Message { return chat.WithHTML([]db.Message{m})[0] }

// handleLatest serves the tutorial's GET /discussion/latest/{n}: the newest
// n messages, oldest first.
func handleLatest(log *slog.Logger, store historyReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := parseCount("n", r.PathValue("n"))
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		writeHistory(w, r, log, store, db.DefaultRoom, 0, n)
	})
}

// handleHistory serves GET /discussion?before={id}&limit={n}: the page of
// history just above a client's oldest message, oldest first. Without
// before, the newest messages.
func handleHistory(log *slog.Logger, store historyReader, room int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := pageSize
		if v, ok, err := singleQuery(r, "limit"); err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		} else if ok {
			if limit, err = parseCount("limit", v); err != nil {
				writeError(w, r, log, http.StatusBadRequest, err)
				return
			}
		}
		v, hasBefore, err := singleQuery(r, "before")
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		var before int64
		if hasBefore {
			if before, err = strconv.ParseInt(v, 10, 64); err != nil || before < 1 {
				writeError(w, r, log, http.StatusBadRequest, errors.New("before must be a message id (a whole number, 1 or more)"))
				return
			}
		}
		writeHistory(w, r, log, store, room, before, limit)
	})
}

type statusBody struct {
	Status string `json:"status"`
}

// handleSendPath serves the tutorial's POST /discussion/{message}: the text
// is the (URL-decoded) path segment, the name an optional ?user=.
func handleSendPath(log *slog.Logger, hub sender, who identifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, err := singleQuery(r, "user")
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		key, err := idempotencyKey(r)
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		st, err := hub.SendAs(r.Context(), who.Identity(r), user, r.PathValue("message"), key)
		if err != nil {
			writeSendError(w, r, log, err)
			return
		}
		markReplay(w, st)
		encode(w, http.StatusOK, statusBody{Status: "OK"})
	})
}

type sendBody struct {
	User    string  `json:"user"`
	Message *string `json:"message"`
}

// handleSendJSON serves POST /discussion with {"user", "message"}: 201 and
// the stored message.
func handleSendJSON(log *slog.Logger, hub sender, who identifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := idempotencyKey(r)
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		var body sendBody
		if err := readJSON(w, r, &body, `{"user": string, "message": string}`); err != nil {
			writeBodyError(w, r, log, err)
			return
		}
		if body.Message == nil {
			writeError(w, r, log, http.StatusBadRequest, errors.New("message is missing"))
			return
		}
		st, err := hub.SendAs(r.Context(), who.Identity(r), body.User, *body.Message, key)
		if err != nil {
			writeSendError(w, r, log, err)
			return
		}
		markReplay(w, st)
		encode(w, http.StatusCreated, message(st.Message))
	})
}

// readJSON decodes one JSON object of at most maxBodyBytes into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any, shape string) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &statusError{http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", tooBig.Limit)}
		}
		return fmt.Errorf("read body: %v", err)
	}
	// Checked before decoding, as the WebSocket path does: encoding/json
	// quietly turns invalid bytes (and a lone surrogate's \u escape) into
	// U+FFFD, which would store a message the sender did not write.
	if !chat.ValidJSONText(raw) {
		return errors.New("body is not valid UTF-8 (or escapes half a surrogate pair)")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body must be JSON %s: %v", shape, err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return errors.New("body must be one JSON object")
	}
	return nil
}

// statusError is an error with the status to answer it with.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// writeBodyError answers a body readJSON refused: 400, or its own status.
func writeBodyError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var se *statusError
	if errors.As(err, &se) {
		writeError(w, r, log, se.status, se.err)
		return
	}
	writeError(w, r, log, http.StatusBadRequest, err)
}

// idempotencyKeyHeader names a REST send, as a cid names a nochat.v1 send:
// a retry with the same key (same user, within the de-duplication window)
// gets the message stored the first time instead of a second one.
const idempotencyKeyHeader = "Idempotency-Key"

var (
	errBadKey    = errors.New(idempotencyKeyHeader + " must be 1 to 64 printable ASCII characters, without spaces (a random UUID, say)")
	errManyKeys  = errors.New(idempotencyKeyHeader + " is given more than once: give it once")
	errKeyReused = errors.New(idempotencyKeyHeader + " was used for another message: give each new message a new key")
)

// idempotencyKey reads a send's Idempotency-Key: "" when there is none.
func idempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values(idempotencyKeyHeader)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", errManyKeys
	case vs[0] == "" || !chat.ValidCID(vs[0]):
		return "", errBadKey
	}
	return vs[0], nil
}

// markReplay tells a client whose send was a retry that nothing new was
// stored: the answer is the first send's.
func markReplay(w http.ResponseWriter, st db.Stored) {
	if st.Duplicate {
		w.Header().Set("Idempotent-Replayed", "true")
	}
}

// writeSendError answers a send the hub did not store.
func writeSendError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if errors.Is(err, chat.ErrCIDReused) {
		// 422, as the IETF Idempotency-Key draft asks for a key reused
		// with another request.
		writeError(w, r, log, http.StatusUnprocessableEntity, errKeyReused)
		return
	}
	writeError(w, r, log, sendStatus(err), err)
}

type pinger interface {
	Ping(ctx context.Context) error
}

// handleHealth answers 200 "ok" when the database answers a query, and
// 503 on a cluster's node that waits for an upgrade (a load balancer then
// sends its people to the others).
func handleHealth(log *slog.Logger, store pinger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := store.Ping(r.Context()); err != nil {
			log.Error("health check", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			if errors.Is(err, db.ErrLaterVersion) {
				fmt.Fprintln(w, "this node is older than the cluster: upgrade it")
				return
			}
			fmt.Fprintln(w, "database unavailable")
			return
		}
		fmt.Fprintln(w, "ok")
	})
}
