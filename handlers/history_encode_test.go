package handlers

import (
	"bytes"
	"net/http/httptest"
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
