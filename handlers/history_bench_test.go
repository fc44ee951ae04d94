package handlers_test

import (
	"context"
	"database/sql"
	"encoding/json"
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
	return cachedDB(b, fmt.Sprintf("history-%d", n), func(raw *sql.DB) error { return bulkInsert(raw, n, 1) })
}

// cachedDB returns the path of a cached database called name, made by
// NoChat's Open and filled by fill the first time.
func cachedDB(b *testing.B, name string, fill func(*sql.DB) error) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("nochat-bench-%s-v%d.db", name, db.LatestSchemaVersion()))
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
	if err := fill(raw); err != nil {
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
// sends) and none on the rest (echo-protocol and REST sends). With rooms
// above 1, it adds open rooms room-2 to room-N beside the default one and
// deals the messages out among them in turn, so that each room's messages
// are spread over the whole table, as in a server with many busy rooms.
func bulkInsert(raw *sql.DB, n, rooms int) error {
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
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for r := 2; r <= rooms; r++ {
		if _, err := tx.Exec("INSERT INTO rooms (id, slug, name, kind, guests, created) VALUES (?, ?, ?, 'open', 1, ?)",
			r, "room-"+strconv.Itoa(r), "Room "+strconv.Itoa(r), t0); err != nil {
			return err
		}
	}
	ins, err := tx.Prepare("INSERT INTO messages (user, message, timestamp, cid, room_id) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer ins.Close()
	for i := range n {
		var cid any
		if i%4 != 0 {
			cid = "c" + strconv.Itoa(i)
		}
		text := lines[i%len(lines)] + " #" + strconv.Itoa(i)
		if _, err := ins.Exec(users[i*7%len(users)], text, t0+int64(i)*1100, cid, 1+i%rooms); err != nil {
			return err
		}
	}
	// Indexed for search as a server's messages are (Store.Insert does it
	// there, migration 0024), so the file is the size a server's would be.
	if _, err := tx.Exec("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')"); err != nil {
		return err
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

// BenchmarkRoomHistory is a room's history on a server with many rooms:
// 1,000,000 messages dealt out among 1,000 rooms, so that one room's 1,000
// messages lie a thousand ids apart all over the table. A guest reads an
// open room's newest 50 (the chat page's first fetch on switching rooms)
// and the page of 50 before its middle (scrolling back).
//
//	go test ./handlers -run '^$' -bench RoomHistory -benchtime 2000x
func BenchmarkRoomHistory(b *testing.B) {
	path := cachedDB(b, "rooms-1000-1000000", func(raw *sql.DB) error { return bulkInsert(raw, 1_000_000, 1000) })
	store, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	hub, err := chat.New(store, chat.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Close(ctx)
		store.Close()
	})
	auth, err := handlers.NewAuth(context.Background(), store, "bench-only-pass", nil)
	if err != nil {
		b.Fatal(err)
	}
	// The rooms' API comes with accounts (Auth); a guest reads open rooms.
	app := handlers.New(handlers.Deps{Store: store, Hub: hub, Auth: auth, Assets: static.New(), AllowHosts: []string{"example.com"}})
	// Room 500 holds ids 500, 1500, ...: 500500 is the middle of its history.
	// The chat page asks for a page and one more (51), which tells it
	// there is more; a longer page is read in parts.
	for _, tc := range []struct {
		name, path string
		n          int
	}{
		{"latest50", "/rooms/room-500/messages/latest/50", 50},
		{"before50", "/rooms/room-500/messages?before=500500&limit=50", 50},
		{"page51", "/rooms/room-500/messages?limit=51", 51},
		{"before51", "/rooms/room-500/messages?before=500500&limit=51", 51},
		{"latest200", "/rooms/room-500/messages/latest/200", 200},
	} {
		// First, that the answer is the room's page and nothing else.
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		var page []struct{ ID int64 }
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page) != tc.n {
			b.Fatalf("GET %s: %d, %d messages (%v), want %d", tc.path, rec.Code, len(page), err, tc.n)
		}
		for _, m := range page {
			if m.ID%1000 != 500 {
				b.Fatalf("GET %s: message %d is not room 500's", tc.path, m.ID)
			}
		}
		b.Run(tc.name+"/rooms=1000/messages=1M", func(b *testing.B) { benchGet(b, app, tc.path) })
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
