package db_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"nochat/db"
)

// matchIDs are the ids of matches, in their order.
func matchIDs(ms []db.Match) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func search(t *testing.T, s *db.Store, q db.SearchQuery) []db.Match {
	t.Helper()
	if q.Rooms == nil {
		q.Rooms = []int64{db.DefaultRoom}
	}
	ms, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return ms
}

func TestSearchFindsWordsNewestFirst(t *testing.T) {
	s := newTestStore(t)
	msgs := insert(t, s, "The printer is jammed", "Café au lait?", "printing the benchy", "nothing here", "PRINTER fixed")
	if got, want := matchIDs(search(t, s, db.SearchQuery{Text: "printer"})), []int64{msgs[4].ID, msgs[0].ID}; !slices.Equal(got, want) {
		t.Fatalf("printer: %v, want %v", got, want)
	}
	// A word is a prefix: "print" finds printer and printing.
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "print"})); len(got) != 3 {
		t.Fatalf("print: %v, want 3 matches", got)
	}
	// Diacritics and case are folded.
	if got := search(t, s, db.SearchQuery{Text: "CAFE"}); len(got) != 1 || got[0].ID != msgs[1].ID {
		t.Fatalf("CAFE: %v", matchIDs(got))
	}
	// Every word must be there.
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "printer fixed"})); !slices.Equal(got, []int64{msgs[4].ID}) {
		t.Fatalf("printer fixed: %v", got)
	}
	m := search(t, s, db.SearchQuery{Text: "jam"})[0]
	if m.Message.Message != "The printer is jammed" || m.User != "ann" || m.Room != db.DefaultRoom || m.Timestamp == 0 {
		t.Fatalf("match = %+v", m)
	}
	if got, want := m.Snippet, "The printer is <mark>jammed</mark>"; got != want {
		t.Fatalf("snippet = %q, want %q", got, want)
	}
	// Paging: below an id, and a limit.
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "print", BeforeID: msgs[2].ID, Limit: 5})); !slices.Equal(got, []int64{msgs[0].ID}) {
		t.Fatalf("print before %d: %v", msgs[2].ID, got)
	}
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "print", Limit: 1})); !slices.Equal(got, []int64{msgs[4].ID}) {
		t.Fatalf("print limit 1: %v", got)
	}
}

func TestSearchSnippetIsEscaped(t *testing.T) {
	s := newTestStore(t)
	insert(t, s, `<script>alert("x")</script> & more`, "a \uE001 stray \uE000 marker \uE000 \uE001\uE001")
	got := search(t, s, db.SearchQuery{Text: "script"})
	if len(got) != 1 || strings.Contains(got[0].Snippet, "<script") || !strings.Contains(got[0].Snippet, "&lt;<mark>script</mark>&gt;") {
		t.Fatalf("snippet = %+v", got)
	}
	got = search(t, s, db.SearchQuery{Text: "stray"})
	if len(got) != 1 || strings.Count(got[0].Snippet, "<mark>") != strings.Count(got[0].Snippet, "</mark>") {
		t.Fatalf("snippet with typed markers = %q: want balanced marks", got[0].Snippet)
	}
}

func TestSearchKeepsToRoomsSenderAndDates(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s := newTestStoreWith(t, db.Options{Now: clk.now})
	secret, _, err := s.CreateRoom(ctx, db.Room{Slug: "secret", Name: "Secret", Kind: db.KindPrivate}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Insert(ctx, []db.Draft{{User: "ann", Message: "launch plans"}, {User: "bob", Message: "launch code", Room: secret.ID}})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(48 * time.Hour)
	later := insert(t, s, "launch day")
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "launch"})); !slices.Equal(got, []int64{later[0].ID, st[0].Message.ID}) {
		t.Fatalf("lobby only: %v", got)
	}
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "launch", Rooms: []int64{secret.ID}})); !slices.Equal(got, []int64{st[1].Message.ID}) {
		t.Fatalf("secret only: %v", got)
	}
	if got, err := s.Search(ctx, db.SearchQuery{Text: "launch", Rooms: []int64{}}); err != nil || len(got) != 0 {
		t.Fatalf("no rooms: %v, %v", got, err)
	}
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "launch", From: "BOB", Rooms: []int64{1, secret.ID}})); !slices.Equal(got, []int64{st[1].Message.ID}) {
		t.Fatalf("from bob: %v", got)
	}
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "launch", Before: day})); !slices.Equal(got, []int64{st[0].Message.ID}) {
		t.Fatalf("before: %v", got)
	}
	if got := matchIDs(search(t, s, db.SearchQuery{Text: "launch", After: day})); !slices.Equal(got, []int64{later[0].ID}) {
		t.Fatalf("after: %v", got)
	}
}

// What a person types is never an FTS5 syntax error, and never FTS5 syntax.
func TestSearchHostileInput(t *testing.T) {
	s := newTestStore(t)
	insert(t, s, "alpha beta gamma", `say "hi" now`, "NEAR the OR gate", "col:umn")
	for _, q := range []string{
		`"`, `""`, `"alpha`, `alpha"`, `a"b"c`, `*`, `alpha*`, `^alpha`, `alpha^`, `NEAR(alpha beta)`, `NEAR`, `alpha OR beta`,
		`alpha AND`, `NOT alpha`, `(alpha`, `alpha)`, `message:alpha`, `{message}:alpha`, `-alpha`, `+alpha`, `alpha:`, `:`,
		`'`, `\`, `%`, `_`, "\x00", "al\x00pha", `rank:1`, `messages_fts:alpha`, `"" OR ""`, "\uE000", `🎉`, `é`, strings.Repeat("a ", 200),
	} {
		if _, err := s.Search(context.Background(), db.SearchQuery{Text: q, Rooms: []int64{1}}); err != nil {
			t.Errorf("Search(%q): %v", q, err)
		}
	}
	// Operators are words: OR does not widen the search.
	if got := search(t, s, db.SearchQuery{Text: "alpha OR zzz"}); len(got) != 0 {
		t.Fatalf("alpha OR zzz found %d, want none (OR is a word)", len(got))
	}
	if got := search(t, s, db.SearchQuery{Text: `"hi"`}); len(got) != 1 {
		t.Fatalf(`"hi" found %d, want 1`, len(got))
	}
	// No word left: the newest messages, as a search without words lists.
	for _, q := range []string{"", "   ", "***", `"" ^`} {
		if got := search(t, s, db.SearchQuery{Text: q}); len(got) != 4 || got[0].Message.Message != "col:umn" {
			t.Errorf("Search(%q) = %v, want the 4 messages newest first", q, matchIDs(got))
		}
	}
}

// A search without words lists the messages its filters keep, newest
// first: an account's by id whatever name they went under, a guest's by
// name, one room's, between dates and ids; each with its opening words,
// escaped, as the snippet.
func TestSearchWithoutWordsListsWhatTheFiltersKeep(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s := newTestStoreWith(t, db.Options{Now: clk.now})
	ann, err := s.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "x", Role: db.RoleMember, Created: clk.now()})
	if err != nil {
		t.Fatal(err)
	}
	garden, _, err := s.CreateRoom(ctx, db.Room{Slug: "garden", Name: "Garden", Kind: db.KindOpen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("word ", 20) + "<b>"
	st, err := s.Insert(ctx, []db.Draft{
		{User: "annie", UserID: ann.ID, Message: "sent before a rename"},
		{User: "bob", Message: "a guest's line"},
		{User: "Ann", UserID: ann.ID, Message: "<b>tomatoes</b> & beans", Room: garden.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(48 * time.Hour)
	later, err := s.Insert(ctx, []db.Draft{{User: "Ann", UserID: ann.ID, Message: long}})
	if err != nil {
		t.Fatal(err)
	}
	id := func(i int) int64 { return st[i].Message.ID }
	both := []int64{db.DefaultRoom, garden.ID}
	for _, c := range []struct {
		name string
		q    db.SearchQuery
		want []int64
	}{
		{"from:ann", db.SearchQuery{From: "ann", Rooms: both}, []int64{later[0].Message.ID, id(2), id(0)}},
		{"from:ann in:garden", db.SearchQuery{From: "ANN", Rooms: []int64{garden.ID}}, []int64{id(2)}},
		{"from:bob", db.SearchQuery{From: "Bob", Rooms: both}, []int64{id(1)}},
		{"from:nobody", db.SearchQuery{From: "nobody", Rooms: both}, nil},
		{"in:lobby", db.SearchQuery{Rooms: []int64{db.DefaultRoom}}, []int64{later[0].Message.ID, id(1), id(0)}},
		{"before a day", db.SearchQuery{Rooms: both, Before: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}, []int64{id(2), id(1), id(0)}},
		{"after a day", db.SearchQuery{From: "ann", Rooms: both, After: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}, []int64{later[0].Message.ID}},
		{"next page", db.SearchQuery{From: "ann", Rooms: both, BeforeID: id(2), Limit: 5}, []int64{id(0)}},
		{"limit", db.SearchQuery{Rooms: both, Limit: 2}, []int64{later[0].Message.ID, id(2)}},
		{"no rooms", db.SearchQuery{From: "ann", Rooms: []int64{}}, nil},
	} {
		got, err := s.Search(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(matchIDs(got), c.want) {
			t.Errorf("%s: %v, want %v", c.name, matchIDs(got), c.want)
		}
	}
	got := search(t, s, db.SearchQuery{From: "ann", Rooms: both})
	if got[0].User != "Ann" || got[2].User != "Ann" {
		t.Errorf("listed under %q and %q, want the account's name", got[0].User, got[2].User)
	}
	if want := strings.Repeat("word ", 11) + "word…"; got[0].Snippet != want {
		t.Errorf("a long message's snippet = %q, want %q", got[0].Snippet, want)
	}
	if want := "&lt;b&gt;tomatoes&lt;/b&gt; &amp; beans"; got[1].Snippet != want {
		t.Errorf("snippet = %q, want %q", got[1].Snippet, want)
	}
}

// The index follows the messages table through inserts, edits, deletions
// and retention: after each random round, every word finds exactly the
// messages a scan of the table finds, and FTS5's own check agrees.
func TestSearchIndexFollowsMessages(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	raw, err := sqlOpen(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	words := []string{"apple", "banana", "cherry", "date", "elder", "fig", "grape"}
	rng := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		n := 1 + rng.IntN(4)
		w := make([]string, n)
		for i := range w {
			w[i] = words[rng.IntN(len(words))]
		}
		return strings.Join(w, " ")
	}
	for round := range 30 {
		switch op := rng.IntN(4); op {
		case 0, 1: // inserts
			batch := make([]string, 1+rng.IntN(20))
			for i := range batch {
				batch[i] = text()
			}
			insert(t, s, batch...)
		case 2: // edits and deletions, as the coming edit and delete events do
			if _, err := raw.Exec("UPDATE messages SET message = ? WHERE id IN (SELECT id FROM messages ORDER BY random() LIMIT 3)", text()); err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec("DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY random() LIMIT 2)"); err != nil {
				t.Fatal(err)
			}
		case 3: // retention
			if _, _, err := s.Prune(ctx, time.Time{}, 20+rng.IntN(40), 7); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SearchIndexCheck(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, w := range words {
			var want []int64
			rows, err := raw.Query("SELECT id FROM messages WHERE ' ' || message || ' ' LIKE ? ORDER BY id DESC", "% "+w+" %")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				rows.Scan(&id)
				want = append(want, id)
			}
			rows.Close()
			got := matchIDs(search(t, s, db.SearchQuery{Text: w, Limit: db.MaxSearchLimit}))
			if len(want) > db.MaxSearchLimit {
				want = want[:db.MaxSearchLimit]
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("round %d: %q found %v, the table holds %v", round, w, got, want)
			}
		}
	}
}

// A database from before the search index gets it built when opened, with
// progress in the log, and finds the messages it held.
func TestSearchMigrationBuildsIndex(t *testing.T) {
	ctx := context.Background()
	raw, path := schemaBefore(t, "0012_search.sql")
	// More than one back-fill batch, with a hole in the ids.
	if _, err := raw.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000)
		INSERT INTO messages (id, user, message, timestamp) SELECT i, 'ann', 'message number ' || i || CASE WHEN i % 1000 = 0 THEN ' thousand' ELSE '' END, i FROM n WHERE i NOT BETWEEN 50 AND 60000`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	var logs bytes.Buffer
	s, err := db.Open(ctx, path, db.Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := search(t, s, db.SearchQuery{Text: "thousand", Limit: 100}); len(got) != 60 || got[0].ID != 120000 {
		t.Fatalf("thousand found %d (first %v), want 60 from 120000", len(got), matchIDs(got))
	}
	if got := search(t, s, db.SearchQuery{Text: "49"}); len(got) != 1 {
		t.Fatalf("49 found %d, want 1", len(got))
	}
	if err := s.SearchIndexCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "search index built") || !strings.Contains(logs.String(), "indexed=50000") {
		t.Fatalf("log = %s\nwant progress and the end", logs.String())
	}
	// Opened again, nothing is left to do.
	s.Close()
	logs.Reset()
	s, err = db.Open(ctx, path, db.Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Fatalf("second open logged %s", logs.String())
	}
}

// The index merges its segments sixteen at a time (migration 0023), and
// stays whole and complete through the merges: each commit below adds a
// segment, and 70 are more than FTS5 leaves unmerged.
func TestSearchIndexMergesSixteenAtATime(t *testing.T) {
	s := newTestStore(t)
	const n = 70
	for i := range n {
		insert(t, s, fmt.Sprintf("spool %d of filament", i))
	}
	raw, err := sql.Open("sqlite", "file:"+s.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Merging starts at sixteen segments a level, bit by bit, and a whole
	// level is merged at once only at 32 (migration 0025): at FTS5's
	// default of 16 for that, every merge was a whole level in one commit.
	for k, want := range map[string]int{"automerge": 16, "crisismerge": 32} {
		var got int
		if err := raw.QueryRow("SELECT v FROM messages_fts_config WHERE k = ?", k).Scan(&got); err != nil || got != want {
			t.Errorf("the index's %s: %d (%v), want %d", k, got, err, want)
		}
	}
	if err := s.SearchIndexCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := search(t, s, db.SearchQuery{Text: "filament", Limit: db.MaxSearchLimit}); len(got) != n {
		t.Fatalf("filament: %d matches, want %d", len(got), n)
	}
}

// A batch's messages reach the search index as one segment, however many
// statements stored them (127 messages take seven, one for each power of
// two), and an edit or a deletion of a message stored earlier in the same
// batch finds it in the index. FTS5 writes a segment at every statement
// that opens a savepoint: with an index written row by row, by a trigger,
// this batch made seven, each to write and later to merge.
func TestSearchIndexTakesABatchAsOneSegment(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann := account(t, s, "ann")
	drafts := make([]db.Draft, 127)
	for i := range drafts {
		drafts[i] = db.Draft{User: "ann", UserID: ann, Message: fmt.Sprintf("spool%d of filament", i)}
	}
	first := store(t, s, drafts...)[0].Message.ID

	raw, err := sql.Open("sqlite", "file:"+s.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var segments int
	if err := raw.QueryRow("SELECT count(DISTINCT segid) FROM messages_fts_idx").Scan(&segments); err != nil {
		t.Fatal(err)
	}
	if segments != 1 {
		t.Errorf("a batch of 127 messages made %d segments of the search index, want 1", segments)
	}

	// One batch: a message and its edit, another message and its deletion,
	// and the deletion of the first batch's first message. A change takes
	// the log's next id, as a message does.
	next := first + int64(len(drafts))
	out := store(t, s,
		db.Draft{User: "ann", UserID: ann, Message: "nozzle clogged"},
		db.Draft{UserID: ann, Change: db.Edit, Target: next, Message: "nozzle cleaned"},
		db.Draft{User: "ann", UserID: ann, Message: "bed levelled"},
		db.Draft{UserID: ann, Change: db.Delete, Target: next + 2},
		db.Draft{UserID: ann, Change: db.Delete, Target: first},
	)
	if out[0].Message.ID != next || out[2].Message.ID != next+2 || out[1].Refused != nil || out[3].Refused != nil || out[4].Refused != nil {
		t.Fatalf("the batch: %+v; want messages at ids %d and %d, an edit and two deletions done", out, next, next+2)
	}
	if err := s.SearchIndexCheck(ctx); err != nil {
		t.Fatal(err)
	}
	for word, want := range map[string]int{"clogged": 0, "cleaned": 1, "levelled": 0, "spool0": 0, "spool63": 1, "spool126": 1} {
		if got := search(t, s, db.SearchQuery{Text: word, Limit: db.MaxSearchLimit}); len(got) != want {
			t.Errorf("%s: %d matches, want %d", word, len(got), want)
		}
	}
}

// A result carries its file; one sent without text is listed by the file's
// name, not as an empty line.
func TestSearchResultsCarryTheirFiles(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann := account(t, s, "ann")
	st := store(t, s,
		db.Draft{User: "ann", UserID: ann, Message: "", File: picture("<harbour>.jpg", 100)},
		db.Draft{User: "ann", UserID: ann, Message: "the harbour at dawn", File: picture("dawn.jpg", 100)},
	)
	got, err := s.Search(ctx, db.SearchQuery{From: "ann", Rooms: []int64{db.DefaultRoom}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != st[1].Message.ID || got[0].File == nil || got[0].File.Name != "dawn.jpg" || got[0].Snippet != "the harbour at dawn" ||
		got[1].File == nil || got[1].Snippet != "&lt;harbour&gt;.jpg" {
		t.Fatalf("from:ann = %+v, want the captioned picture, then the bare one listed by its name, escaped", got)
	}
	if got, err := s.Search(ctx, db.SearchQuery{Text: "harbour", Rooms: []int64{db.DefaultRoom}}); err != nil || len(got) != 1 || got[0].File == nil {
		t.Fatalf("harbour = %+v, %v; want the captioned picture with its file", got, err)
	}
}
