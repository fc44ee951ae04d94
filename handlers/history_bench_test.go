package handlers_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the driver the bulk loader uses directly

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
	"nochat/static"
)

// The history benchmarks of the performance issue: GET /discussion/latest/50
// and the chat page (GET /, which renders the newest 50) at 10k, 100k and 1M
// stored messages, and start-up to the first page served with a database
// that big. Requests go straight to the handler (no network), so what is
// measured is NoChat's work: the query, JSON or templ, the response.
//
//	go test ./handlers -run '^$' -bench 'History|Startup' -benchtime 2s
//
// Each database is built once, with a raw bulk insert, and cached in the
// system's temporary directory (nochat-bench-history-N-vS.db, S the schema
// version), so reruns start at once. Building 1M takes several seconds.

var historySizes = []struct {
	name string
	n    int
}{{"10k", 10_000}, {"100k", 100_000}, {"1M", 1_000_000}}

// historyDB returns the path of a cached database holding n messages.
func historyDB(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("nochat-bench-history-%d-v%d.db", n, db.LatestSchemaVersion()))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	start := time.Now()
	// Built under a name of its own and renamed when complete, so an
	// interrupted build or a second benchmark process never leaves a
	// half-filled database under the cached name.
	tmp := fmt.Sprintf("%s.%d.building", path, os.Getpid())
	cleanup := func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
	}
	cleanup()
	defer cleanup()

	// NoChat's own Open makes the schema, exactly as a server would.
	store, err := db.Open(context.Background(), tmp, db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=journal_mode(wal)&_pragma=synchronous(off)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	if err := bulkInsert(raw, n); err != nil {
		b.Fatal(err)
	}
	if err := raw.Close(); err != nil { // checkpoints the WAL into the file
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %s in %v", path, time.Since(start).Round(time.Millisecond))
	return path
}

// bulkInsert stores n messages like a busy room's: a few dozen people,
// lines of varied length, one every second or so, a cid on most (browser
// sends) and none on the rest (echo-protocol and REST sends).
func bulkInsert(raw *sql.DB, n int) error {
	users := []string{"ann", "bob", "chidi", "dagny", "eun-ji", "farah", "gus", "hana", "ivo", "juno", "kofi", "lena"}
	lines := []string{
		"morning all",
		"did anyone see the new release notes? the changelog is long this time",
		"brb",
		"I think the sensor on the greenhouse Pi died again, it has been reporting 0 °C since Tuesday",
		"lol",
		"<b>not bold</b> & \"quoted\" — text stays text",
		"can someone share the link to the meeting notes from yesterday?",
		"👍",
	}
	tx, err := raw.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.Prepare("INSERT INTO messages (user, message, timestamp, cid) VALUES (?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer ins.Close()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := range n {
		var cid any
		if i%4 != 0 {
			cid = "c" + strconv.Itoa(i)
		}
		text := lines[i%len(lines)] + " #" + strconv.Itoa(i)
		if _, err := ins.Exec(users[i*7%len(users)], text, t0+int64(i)*1100, cid); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// openApp serves the handlers over the database at path.
func openApp(b *testing.B, path string) http.Handler {
	b.Helper()
	store, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return serveStore(b, store)
}

// benchGet serves GET path over and over and reports, besides the mean
// (ns/op), the median and 99th percentile of single requests.
func benchGet(b *testing.B, h http.Handler, path string) {
	b.ReportAllocs()
	times := make([]time.Duration, 0, 4096)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		times = append(times, time.Since(t0))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	reportPercentiles(b, times)
}

func reportPercentiles(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	at := func(q float64) float64 {
		return float64(times[min(len(times)-1, int(q*float64(len(times))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

func BenchmarkHistory(b *testing.B) {
	for _, size := range historySizes {
		path := historyDB(b, size.n)
		b.Run("latest50/messages="+size.name, func(b *testing.B) {
			benchGet(b, openApp(b, path), "/discussion/latest/50")
		})
		b.Run("page/messages="+size.name, func(b *testing.B) {
			benchGet(b, openApp(b, path), "/")
		})
	}
}

// BenchmarkStartup measures start-up to serving: open the database (WAL
// check, migrations), start the hub (writer, broadcaster, newest id), build
// the handlers and answer the first chat page. The file is in the page
// cache after the first round, so this is a warm start; a cold one, just
// after boot, adds the SD card's reads.
func BenchmarkStartup(b *testing.B) {
	for _, size := range historySizes {
		path := historyDB(b, size.n)
		b.Run("messages="+size.name, func(b *testing.B) {
			times := make([]time.Duration, 0, b.N)
			for range b.N {
				t0 := time.Now()
				store, err := db.Open(context.Background(), path, db.Options{})
				if err != nil {
					b.Fatal(err)
				}
				hub, err := chat.New(store, chat.Options{})
				if err != nil {
					b.Fatal(err)
				}
				h := handlers.New(handlers.Deps{Store: store, Hub: hub, Assets: static.New(), AllowHosts: []string{"example.com"}})
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				times = append(times, time.Since(t0))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET /: %d", rec.Code)
				}

				b.StopTimer()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				hub.Close(ctx)
				cancel()
				if err := store.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			reportPercentiles(b, times)
		})
	}
}
