package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The dashboard's message list over HTTP: pages by id, a bounded filter,
// actions that keep the admin's place.

var rowID = regexp.MustCompile(`<tr data-id="(\d+)"`)

// rows is the ids of the message rows in a dashboard answer, top to bottom.
func rows(body string) []string {
	var ids []string
	for _, m := range rowID.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestAdminMessageListPagesAndFilters(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	b.login()
	a.send(t, "old spam: cheap pills")
	for i := 1; i <= 25; i++ {
		a.send(t, fmt.Sprintf("m%02d", i))
	}
	msgs := decodeMessages(t, a.do(t, "GET", "/discussion/latest/26", ""))
	id := func(i int) string { return fmt.Sprint(msgs[i].ID) } // 0 is the spam, i is m<i>

	first := b.do("GET", "/admin/live", nil, nil)
	if got := rows(first.body); len(got) != 20 || got[0] != id(25) || got[19] != id(6) {
		t.Fatalf("first page rows %v, want the newest 20, %s down to %s", got, id(25), id(6))
	}
	if want := `href="/admin?before=` + id(6) + `" rel="next"`; !strings.Contains(first.body, want) {
		t.Fatalf("first page lacks the link to older messages %s", want)
	}
	if want := `hx-get="/admin/live"`; !strings.Contains(first.body, want) {
		t.Fatalf("first page refreshes from elsewhere than %s", want)
	}

	older := b.do("GET", "/admin?before="+id(6), nil, nil)
	if got, want := strings.Join(rows(older.body), ","), strings.Join([]string{id(5), id(4), id(3), id(2), id(1), id(0)}, ","); got != want {
		t.Fatalf("older page rows %s, want %s", got, want)
	}
	if strings.Contains(older.body, `rel="next"`) {
		t.Fatal("the oldest page links to an older one")
	}
	// Its refresh and its actions keep the page.
	for _, want := range []string{`hx-get="/admin/live?before=` + id(6) + `"`, `/admin/messages/` + id(0) + `/delete?before=` + id(6)} {
		if !strings.Contains(older.body, want) {
			t.Fatalf("older page lacks %s", want)
		}
	}
	newer := b.do("GET", "/admin?after="+id(0), nil, nil)
	if got := rows(newer.body); len(got) != 20 || got[0] != id(20) || got[19] != id(1) {
		t.Fatalf("page above the spam: %v, want %s down to %s", got, id(20), id(1))
	}

	filtered := b.do("GET", "/admin?q=PILLS", nil, nil)
	if got := strings.Join(rows(filtered.body), ","); got != id(0) {
		t.Fatalf("filter rows %s, want only %s", got, id(0))
	}
	if !strings.Contains(filtered.body, `value="PILLS"`) || !strings.Contains(filtered.body, `maxlength="100"`) {
		t.Fatal("the filter box does not show the filter, or has no length limit")
	}
	// Its every-second refresh does not search again: the page keeps its
	// list (hx-preserve); the newest page's refresh does read it.
	if r := b.do("GET", "/admin/live?q=PILLS", nil, nil); len(rows(r.body)) != 0 || !strings.Contains(r.body, `<section id="messages-panel" class="panel" hx-preserve="true"></section>`) {
		t.Fatalf("the refresh of a filtered page: %d rows, or no kept list", len(rows(r.body)))
	}
	if got := rows(b.do("GET", "/admin?q="+url.QueryEscape(strings.Repeat("é", 100)), nil, nil).body); len(got) != 0 {
		t.Fatalf("a 100-character filter that matches nothing shows %v", got)
	}

	// A plain form post deletes, then goes back to the same filtered page.
	r := b.do("POST", "/admin/messages/"+id(0)+"/delete?q=PILLS", url.Values{}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin?q=PILLS" {
		t.Fatalf("delete from a filtered page: %d to %q, want 303 to /admin?q=PILLS", r.status, r.header.Get("Location"))
	}

	for _, tt := range []struct{ name, query string }{
		{"refuses a filter over 100 characters", "q=" + strings.Repeat("x", 101)},
		{"refuses a bad id", "before=abc"},
		{"refuses a negative id", "after=-3"},
		{"refuses both bounds", "before=9&after=3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/admin?", "/admin/live?"} {
				r := b.do("GET", path+tt.query, nil, nil)
				if r.status != http.StatusBadRequest || !strings.Contains(r.body, `"error"`) {
					t.Fatalf("GET %s%s: %d %s, want 400 with an error", path, tt.query, r.status, r.body)
				}
			}
		})
	}
}
