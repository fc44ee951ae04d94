package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nochat/db"
)

// The search benchmarks of issue 14: full-text search over 1,000,000
// messages, and the migration that builds the index for a database that
// big. Run them alone (they build a large database once, then reuse it):
//
//	go test ./db -run '^$' -bench 'Search' -benchtime 200x
//	go test ./db -run '^$' -bench 'SearchMigration' -benchtime 1x
//
// The databases are cached in the system's temporary directory
// (nochat-bench-search-*.db, named for the schema version), so reruns
// start at once; the first run takes a minute or two.

const searchBenchN = 1_000_000

// benchWords is the vocabulary of the benchmark's messages, drawn with a
// Zipf law (the first words the most often), as words are in real text.
var benchWords = strings.Fields(`the to a and is it i you that of in for on this with be have
	not are just was but so what at do can we my if it's all will no yes like get
	there out up one about now then think they time when good know there's would how
	print printer printing filament spool nozzle bed layer benchy prusa petg pla
	meeting tomorrow tonight weekend lunch coffee door key hallway kitchen fridge
	solder arduino raspberry sensor server router wifi network cable laptop monitor
	code bug build deploy release test merge branch review python golang rust
	bike garden tomatoes cat dog kids school dinner pizza cake birthday party
	photo video link game movie music concert ticket train bus car parking rain
	sun snow cold warm late early thanks sorry great nice cool awesome lol ok
	workshop laser cutter plywood acrylic drill saw glue screws bolts paint
	calendar schedule booking invoice budget project plan idea question answer`)

// searchBaseDB returns a cached database at the schema before the search
// index, holding searchBenchN messages in 20 rooms.
func searchBaseDB(b *testing.B) (path string, version int) {
	b.Helper()
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		b.Fatal(err)
	}
	version = slices.IndexFunc(names, func(n string) bool { return strings.HasSuffix(n, "_search.sql") })
	path = filepath.Join(os.TempDir(), fmt.Sprintf("nochat-bench-search-base-%d-v%d.db", searchBenchN, version))
	if _, err := os.Stat(path); err == nil {
		return path, version
	}
	start := time.Now()
	tmp := fmt.Sprintf("%s.%d.building", path, os.Getpid())
	defer removeDB(tmp)
	raw, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=journal_mode(wal)&_pragma=synchronous(off)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	for _, name := range names[:version] {
		body, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		b.Fatal(err)
	}
	if err := fillMessages(raw, searchBenchN); err != nil {
		b.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %s in %v", path, time.Since(start).Round(time.Millisecond))
	return path, version
}

// benchTexts makes the benchmarks' messages: 3 to 20 words each.
type benchTexts struct {
	rng   *rand.Rand
	words *rand.Zipf
	text  strings.Builder
}

func newBenchTexts() *benchTexts { return newBenchTextsOf(len(benchWords)) }

// newBenchTextsOf makes texts from a vocabulary of n words: benchWords,
// then made-up words ("w1234") for a chat's long tail of names, numbers and
// typos, drawn with the same Zipf weights.
func newBenchTextsOf(n int) *benchTexts {
	rng := rand.New(rand.NewPCG(14, 8))
	return &benchTexts{rng: rng, words: rand.NewZipf(rng, 1.1, 2, uint64(n-1))}
}

func (t *benchTexts) next() string {
	t.text.Reset()
	for w := range 3 + t.rng.IntN(18) {
		if w > 0 {
			t.text.WriteByte(' ')
		}
		if i := t.words.Uint64(); i < uint64(len(benchWords)) {
			t.text.WriteString(benchWords[i])
		} else {
			t.text.WriteByte('w')
			t.text.WriteString(strconv.FormatUint(i, 10))
		}
	}
	return t.text.String()
}

// fillMessages inserts n messages of 3 to 20 words, from 50 guests, in 20
// rooms (the lobby the busiest), a minute apart.
func fillMessages(raw *sql.DB, n int) error {
	texts := newBenchTexts()
	rng := texts.rng
	rooms := rand.NewZipf(rng, 1.2, 1, 19)
	tx, err := raw.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const rows = 100
	stmt, err := tx.Prepare("INSERT INTO messages (user, message, timestamp, room_id) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", rows), ", "))
	if err != nil {
		return err
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	args := make([]any, 0, 4*rows)
	for i := range n {
		text := texts.next()
		args = append(args, fmt.Sprintf("guest%d", rng.IntN(50)), text, start+int64(i)*60_000, 1+int64(rooms.Uint64()))
		if len(args) == cap(args) {
			if _, err := stmt.Exec(args...); err != nil {
				return err
			}
			args = args[:0]
		}
	}
	return tx.Commit()
}

func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

func copyDB(b *testing.B, from, to string) {
	b.Helper()
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSearchMigration opens a copy of the 1M-message database from
// before the search index: the migration and the index's back-fill.
func BenchmarkSearchMigration(b *testing.B) {
	base, _ := searchBaseDB(b)
	dir := b.TempDir()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("m%d.db", i))
		copyDB(b, base, path)
		b.StartTimer()
		s, err := db.Open(context.Background(), path, db.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		removeDB(path)
		b.StartTimer()
	}
}

// searchDB returns a cached, migrated database of searchBenchN messages.
func searchDB(b *testing.B) string {
	base, _ := searchBaseDB(b)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("nochat-bench-search-%d-v%d.db", searchBenchN, db.LatestSchemaVersion()))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := fmt.Sprintf("%s.%d.building", path, os.Getpid())
	defer removeDB(tmp)
	copyDB(b, base, tmp)
	s, err := db.Open(context.Background(), tmp, db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkSearch searches 1M messages as a person does: the first page
// (20) of a search over the ten rooms they see. It reports the median.
func BenchmarkSearch(b *testing.B) {
	s, err := db.Open(context.Background(), searchDB(b), db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	mine := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	benchSearches(b, s, append(wordSearches(mine),
		searchCase{"two-words", db.SearchQuery{Text: "coffee tomorrow", Rooms: mine}},
		searchCase{"from", db.SearchQuery{Text: "printer", From: "guest7", Rooms: mine}},
		searchCase{"quiet-room", db.SearchQuery{Text: "benchy", Rooms: []int64{20}}},
		// The worst case: a word in most messages, and a filter that
		// keeps none of them, so every match is read and refused.
		searchCase{"worst", db.SearchQuery{Text: "the", From: "nobody", Rooms: mine}},
		// Filters without a word list what they keep: one sender, one
		// room, and the worst, a sender with no message, every message
		// of the ten rooms read and refused.
		searchCase{"list-from", db.SearchQuery{From: "guest7", Rooms: mine}},
		searchCase{"list-room", db.SearchQuery{Rooms: []int64{20}}},
		searchCase{"list-worst", db.SearchQuery{From: "nobody", Rooms: mine}},
	))
}

type searchCase struct {
	name string
	q    db.SearchQuery
}

// wordSearches are the searches of words alone, over rooms: a common word,
// a word, two rare ones, a prefix, and a word in no message.
func wordSearches(rooms []int64) []searchCase {
	return []searchCase{
		{"common", db.SearchQuery{Text: "the", Rooms: rooms}},
		{"word", db.SearchQuery{Text: "printer", Rooms: rooms}},
		{"rare", db.SearchQuery{Text: "plywood acrylic", Rooms: rooms}},
		{"prefix", db.SearchQuery{Text: "pri", Rooms: rooms}},
		{"none", db.SearchQuery{Text: "zebra", Rooms: rooms}},
	}
}

// benchSearches runs each search as a sub-benchmark and reports its median.
func benchSearches(b *testing.B, s *db.Store, cases []searchCase) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var times []time.Duration
			found := 0
			for b.Loop() {
				t0 := time.Now()
				ms, err := s.Search(context.Background(), c.q)
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
				found = len(ms)
			}
			slices.Sort(times)
			b.ReportMetric(msOf(times[len(times)/2]), "ms-median")
			b.ReportMetric(float64(found), "matches")
		})
	}
}

// BenchmarkSearchLive searches an index built as a busy chat builds it:
// 200,000 messages through the Writer, 50 senders at once (commits of
// about 40), each commit adding its segment to the index for FTS5 to merge
// (migration 0023), where the 1M-message database above is indexed in
// large batches.
//
//	go test ./db -run '^$' -bench 'SearchLive' -benchtime 200x
func BenchmarkSearchLive(b *testing.B) {
	s := benchStore(b)
	w := db.NewWriter(s, 0, func(c db.Commit[chan error]) {
		for _, it := range c.Items {
			it.Tag <- c.Err
		}
	})
	const n, senders = 200_000, 50
	gen := newBenchTexts()
	texts := make(chan string, senders)
	go func() {
		for range n {
			texts <- gen.next()
		}
		close(texts)
	}()
	sendFrom(b, w, senders, func() (db.Draft, bool) {
		text, ok := <-texts
		return db.Draft{User: "ann", Message: text}, ok
	})
	w.Close()
	benchSearches(b, s, wordSearches([]int64{db.DefaultRoom}))
}

// BenchmarkCommitTail stores messages one a commit, as a quiet chat does,
// and reports the slowest commits: FTS5 merges the search index's segments
// inside commits, and a merge done a whole level at once stalls the commit
// that tips the level over (migration 0025). The words come from a
// vocabulary of 50,000, as a chat's do over time, not only the common ones
// (an index of few words merges quickly). At Durability Normal, so that the
// commits' own work shows rather than the disk's fsync; the stalls grow with
// the index, so run it long:
//
//	go test ./db -run '^$' -bench CommitTail -benchtime 300000x
func BenchmarkCommitTail(b *testing.B) {
	s := benchStoreWith(b, db.Options{Durability: db.Normal})
	texts := newBenchTextsOf(50_000)
	ctx := context.Background()
	times := make([]time.Duration, 0, b.N)
	for b.Loop() {
		d := db.Draft{User: "ann", Message: texts.next()}
		t0 := time.Now()
		if _, err := s.Insert(ctx, []db.Draft{d}); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	b.ReportMetric(msOf(times[len(times)/2]), "ms-median")
	b.ReportMetric(msOf(times[len(times)*999/1000]), "ms-p99.9")
	b.ReportMetric(msOf(times[len(times)-1]), "ms-max")
}

// msOf is d in milliseconds, to the microsecond, as the benchmarks report it.
func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
