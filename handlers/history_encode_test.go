package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"nochat/chat"
	"nochat/db"
)

// writeSizes records the size of each write a handler makes.
type writeSizes struct {
	*httptest.ResponseRecorder
	sizes []int
}

func (w *writeSizes) Write(b []byte) (int, error) {
	w.sizes = append(w.sizes, len(b))
	return w.ResponseRecorder.Write(b)
}

// A page of history is written a message at a time, in the bytes that
// encoding the whole page gives: a page of 500 long messages was one
// buffer of 15 MB, held for as long as its client took to read it.
func TestAPageOfHistoryIsWrittenAMessageAtATime(t *testing.T) {
	id := func(n int64) *int64 { return &n }
	var page []db.Message
	for i := range 50 {
		page = append(page, db.Message{ID: int64(i + 1), User: "ann", UserID: id(7), Message: strings.Repeat(">", 1990) + " <b>&", Timestamp: 1700000000000})
	}
	page = append(page, db.Message{ID: 51, User: "bob", Message: "hi @ann", Mentions: []db.Mention{{Start: 3, Length: 4, UserID: 7}}})
	w := &writeSizes{ResponseRecorder: httptest.NewRecorder()}
	encodeMessages(w, 200, page)
	want := httptest.NewRecorder()
	encode(want, 200, chat.WithHTML(append([]db.Message(nil), page...)))
	if !bytes.Equal(w.Body.Bytes(), want.Body.Bytes()) || w.Header().Get("Content-Type") != "application/json" || w.Code != 200 {
		t.Fatalf("the page differs from encoding it whole:\n%.300s\nwant\n%.300s", w.Body.Bytes(), want.Body.Bytes())
	}
	if most := slices.Max(w.sizes); most > want.Body.Len()/10 {
		t.Fatalf("a write of %d bytes, of %d in all: want a message at a time", most, want.Body.Len())
	}
	empty := httptest.NewRecorder()
	encodeMessages(empty, 200, nil)
	if empty.Body.String() != "[]\n" {
		t.Fatalf("no messages: %q, want []", empty.Body.String())
	}
}

// partsReader is the store, recording the parts a history answer reads,
// and doing between the first part and the next what the test asks.
type partsReader struct {
	*db.Store
	parts   []int
	between func()
	failAt  int // the part that fails to read, counted from 1; 0: none
}

func (p *partsReader) RangeIn(ctx context.Context, room, from, to int64, limit int) ([]db.Message, error) {
	p.parts = append(p.parts, limit)
	if len(p.parts) == p.failAt {
		return nil, errors.New("disk I/O error")
	}
	msgs, err := p.Store.RangeIn(ctx, room, from, to, limit)
	if p.between != nil {
		p.between()
		p.between = nil
	}
	return msgs, err
}

// A page of history is read a part at a time, never more than
// historyPart messages held at once, and is the page as it stood when
// asked for: what the one read of the whole page gave, byte for byte,
// with a message stored while it is written left out.
func TestAPageOfHistoryIsReadInParts(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	other, _, err := store.CreateRoom(ctx, db.Room{Slug: "other", Name: "Other", Kind: db.KindOpen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var drafts []db.Draft
	for i := range 130 {
		drafts = append(drafts, db.Draft{User: "ann", Message: fmt.Sprintf("line %d, **bold** & <b>", i)})
		drafts = append(drafts, db.Draft{User: "bob", Message: "in another room", Room: other.ID})
	}
	stored, err := store.Insert(ctx, drafts)
	if err != nil {
		t.Fatal(err)
	}
	whole := func(msgs []db.Message, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		encodeMessages(w, 200, msgs)
		return w.Body.Bytes()
	}
	before := stored[200].Message.ID
	for _, c := range []struct {
		name   string
		before int64
		n      int
		want   func() []byte
		parts  []int
	}{
		{"the newest 120", 0, 120, func() []byte { return whole(store.LatestIn(ctx, db.DefaultRoom, 120)) }, []int{51, 51, 18}},
		{"60 before a message", before, 60, func() []byte { return whole(store.BeforeIn(ctx, db.DefaultRoom, before, 60)) }, []int{51, 9}},
		{"500 of what there is", 0, 500, func() []byte { return whole(store.LatestIn(ctx, db.DefaultRoom, 500)) }, []int{51, 51, 51}},
		{"the chat page's page and one more, read at once", 0, 51, func() []byte { return whole(store.LatestIn(ctx, db.DefaultRoom, 51)) }, nil},
		{"a part's worth before a message", before, 7, func() []byte { return whole(store.BeforeIn(ctx, db.DefaultRoom, before, 7)) }, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.want()
			p := &partsReader{Store: store, between: func() {
				if _, err := store.Insert(ctx, []db.Draft{{User: "dan", Message: "stored while the answer is written"}}); err != nil {
					t.Fatal(err)
				}
			}}
			w := httptest.NewRecorder()
			writeHistory(w, httptest.NewRequest("GET", "/discussion", nil), slog.New(slog.DiscardHandler), p, db.DefaultRoom, c.before, c.n)
			if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), want) {
				t.Fatalf("%d\n%.400s\nwant the page read whole:\n%.400s", w.Code, w.Body.Bytes(), want)
			}
			if !slices.Equal(p.parts, c.parts) {
				t.Fatalf("read in parts of %v, want %v", p.parts, c.parts)
			}
		})
	}
}

// A part that fails to read once the answer has begun cuts the answer off,
// its JSON left open, rather than ending it as if the page were whole.
func TestAHistoryAnswerThatFailsPartWayIsCutOff(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	drafts := make([]db.Draft, 120)
	for i := range drafts {
		drafts[i] = db.Draft{User: "ann", Message: fmt.Sprint("line ", i)}
	}
	if _, err := store.Insert(ctx, drafts); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler: the server cuts the connection", p)
			}
		}()
		writeHistory(w, httptest.NewRequest("GET", "/discussion/latest/120", nil), slog.New(slog.DiscardHandler), &partsReader{Store: store, failAt: 2}, db.DefaultRoom, 0, 120)
	}()
	if body := w.Body.String(); !strings.HasPrefix(body, "[") || strings.HasSuffix(strings.TrimSpace(body), "]") || strings.Count(body, `"id"`) != historyPart {
		t.Fatalf("the answer cut off after its first part: %d messages, ends %q", strings.Count(body, `"id"`), body[max(0, len(body)-20):])
	}
}
