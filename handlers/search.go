package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"nochat/chat"
	"nochat/db"
)

// Search (issue 14): GET /search?q=&room=&from=&before=&after=&limit=
//
// q is what the person typed in the search box: free words, each found as
// a word prefix, and the filters in:room-slug, from:name, before:DATE and
// after:DATE (YYYY-MM-DD, UTC; after: is the days after that date). With
// no word, the filters alone list the messages they keep, newest first. The
// parameters room, from, before and after say the same and win over q's
// filters; before and after also take a message id, for the next page.
// Only the rooms the person may see are searched, decided by the room
// rules (chat's AccessTo and Rooms), never by the query.

// maxSearchLen is the longest q, in characters: a search box's line.
const maxSearchLen = 256

// Searches per person (or guest address): a burst for typing, then two a
// second; each costs a few milliseconds of the Pi's two cores.
const (
	searchEvery = 500 * time.Millisecond
	searchBurst = 20
)

// searchTimeout bounds one search's work. Results come newest first and
// stop at the limit, so most searches take milliseconds at a million
// messages; a very common word with a filter that keeps none of its
// matches reads them all (half a second at a million, BENCHMARKS.md).
const searchTimeout = 3 * time.Second

var (
	errSearchSlow    = errors.New("the search took too long: add a word, or search one room")
	errSearchEmpty   = errors.New("type a word to search for, or a filter: from:name, in:room, before:date, after:date")
	errSearchLong    = errors.New("the search is too long: at most 256 characters")
	errSearchLimited = errors.New("too many searches at once: wait a moment and try again")
)

// searchHub is what a search needs of the rooms: which ones the person
// sees.
type searchHub interface {
	Rooms(ctx context.Context, id chat.Identity) ([]chat.RoomView, error)
	RoomBySlug(slug string) (db.Room, bool)
	Room(id int64) (db.Room, bool)
	AccessTo(ctx context.Context, id chat.Identity, r db.Room) (chat.Access, error)
	GuestsMayRead() bool
}

type searcher interface {
	Search(ctx context.Context, q db.SearchQuery) ([]db.Match, error)
}

// searchMatch is one result as GET /search answers it: the message, its
// room's slug, the snippet (escaped HTML, the words found in <mark>) and
// the permalink that opens it in its room.
type searchMatch struct {
	db.Match
	Slug string `json:"slug"`
	URL  string `json:"url"`
}

// searchTerms is a search box's line, parsed.
type searchTerms struct {
	words         []string
	room, from    string
	before, after string
}

// parseSearch splits a search box's line into its words and filters. A
// filter's key is any case; its value may be quoted, for a name with
// spaces (from:"Grandma Jo"); an empty filter ("in:") is a word.
func parseSearch(q string) searchTerms {
	var t searchTerms
	for _, f := range searchFields(q) {
		key, value, ok := strings.Cut(f, ":")
		if unquoted, quoted := strings.CutPrefix(value, `"`); quoted && filterKey(key) {
			value = strings.TrimSuffix(unquoted, `"`)
		}
		if ok && value != "" {
			switch strings.ToLower(key) {
			case "in":
				t.room = strings.TrimPrefix(value, "#")
				continue
			case "from":
				t.from = strings.TrimPrefix(value, "@")
				continue
			case "before":
				t.before = value
				continue
			case "after":
				t.after = value
				continue
			}
		}
		t.words = append(t.words, f)
	}
	return t
}

// searchFields splits a search box's line at its spaces, except within a
// filter's quoted value: `from:"Dad Bob" beans` is `from:"Dad Bob"` and
// `beans`. A quote left open runs to the line's end.
func searchFields(q string) []string {
	var out []string
	for {
		q = strings.TrimLeftFunc(q, unicode.IsSpace)
		if q == "" {
			return out
		}
		end := strings.IndexFunc(q, unicode.IsSpace)
		if end < 0 {
			end = len(q)
		}
		if key, value, ok := strings.Cut(q[:end], ":"); ok && strings.HasPrefix(value, `"`) && filterKey(key) {
			open := len(key) + 2 // past `key:"`
			if close := strings.IndexByte(q[open:], '"'); close >= 0 {
				end = open + close + 1
			} else {
				end = len(q)
			}
		}
		out, q = append(out, q[:end]), q[end:]
	}
}

// filterKey reports whether key names a filter, in any case.
func filterKey(key string) bool {
	switch strings.ToLower(key) {
	case "in", "from", "before", "after":
		return true
	}
	return false
}

// searchBound reads before: or after: — a date (YYYY-MM-DD, UTC) or a
// message id. For after, a date means from the next day on.
func searchBound(name, v string, after bool) (time.Time, int64, error) {
	if v == "" {
		return time.Time{}, 0, nil
	}
	if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
		return time.Time{}, id, nil
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, 0, errors.New(name + " must be a date (YYYY-MM-DD) or a message id")
	}
	if after {
		d = d.AddDate(0, 0, 1)
	}
	return d, 0, nil
}

func limitSearches(d Deps) func(http.Handler) http.Handler {
	limiter := chat.NewKeyedLimiter(rate.Every(searchEvery), searchBurst)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := "ip " + chat.AddressKey(chat.ClientIP(r, d.TrustProxy)) // an IPv6 /64 is one address
			if id := d.Auth.Identity(r); !id.Guest() {
				key = "account " + strconv.FormatInt(id.UserID, 10)
			}
			if !limiter.Allow(key) {
				w.Header().Set("Retry-After", "1")
				writeError(w, r, d.Log, http.StatusTooManyRequests, errSearchLimited)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// handleSearch serves GET /search.
func handleSearch(log *slog.Logger, hub searchHub, store searcher, who identifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		params := map[string]string{}
		for _, name := range []string{"q", "room", "from", "before", "after", "limit"} {
			v, _, err := singleQuery(r, name)
			if err != nil {
				writeError(w, r, log, http.StatusBadRequest, err)
				return
			}
			params[name] = v
		}
		if utf8.RuneCountInString(params["q"]) > maxSearchLen {
			writeError(w, r, log, http.StatusBadRequest, errSearchLong)
			return
		}
		t := parseSearch(params["q"])
		for name, field := range map[string]*string{"room": &t.room, "from": &t.from, "before": &t.before, "after": &t.after} {
			if v := params[name]; v != "" {
				*field = v
			}
		}
		q := db.SearchQuery{Text: strings.Join(t.words, " "), From: t.from}
		if db.MatchExpr(q.Text) == "" && t.room == "" && t.from == "" && t.before == "" && t.after == "" {
			// Without a word, a filter alone lists what it keeps.
			writeError(w, r, log, http.StatusBadRequest, errSearchEmpty)
			return
		}
		var err error
		if q.Before, q.BeforeID, err = searchBound("before", t.before, false); err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		if q.After, q.AfterID, err = searchBound("after", t.after, true); err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		if v := params["limit"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > db.MaxSearchLimit {
				writeError(w, r, log, http.StatusBadRequest, errors.New("limit must be a whole number from 1 to "+strconv.Itoa(db.MaxSearchLimit)))
				return
			}
			q.Limit = n
		}

		id := who.Identity(r)
		slugs := map[int64]string{}
		if t.room != "" {
			// One room: the same answer for a room that does not exist
			// and one the person may not see.
			room, ok := hub.RoomBySlug(t.room)
			var a chat.Access
			if ok {
				if a, err = hub.AccessTo(r.Context(), id, room); err != nil {
					writeError(w, r, log, http.StatusServiceUnavailable, err)
					return
				}
			}
			if !ok || !a.See {
				writeError(w, r, log, http.StatusNotFound, errNoRoom)
				return
			}
			slugs[room.ID] = room.Slug
		} else {
			// Every room the person's list shows: theirs and the open
			// ones (a guest: the guests' rooms).
			rooms, err := hub.Rooms(r.Context(), id)
			if err != nil {
				writeError(w, r, log, http.StatusServiceUnavailable, err)
				return
			}
			for _, v := range rooms {
				slugs[v.ID] = v.Slug
			}
		}
		for room := range slugs {
			q.Rooms = append(q.Rooms, room)
		}
		ctx, cancel := context.WithTimeout(r.Context(), searchTimeout)
		defer cancel()
		found, err := store.Search(ctx, q)
		if ctx.Err() == context.DeadlineExceeded {
			writeError(w, r, log, http.StatusServiceUnavailable, errSearchSlow)
			return
		}
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		out := make([]searchMatch, 0, len(found))
		for _, m := range found {
			slug := slugs[m.Room]
			out = append(out, searchMatch{Match: m, Slug: slug, URL: permalink(slug, m.ID)})
		}
		encode(w, http.StatusOK, out)
	})
}

// permalink is the page address that opens a message in its room.
func permalink(slug string, id int64) string {
	return "/r/" + slug + "/" + strconv.FormatInt(id, 10)
}
