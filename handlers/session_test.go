package handlers_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestDashboardShowsSessionsShortAndActsOnTheWholeID: a session id is 128
// bits; the dashboard shows its start, and its Disconnect button names the
// whole id.
func TestDashboardShowsSessionsShortAndActsOnTheWholeID(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	b.login()
	conn, id := a.openSession(t)
	if len(id) != 32 {
		t.Fatalf("session id %q: want 32 hex digits", id)
	}
	waitFor(t, "the connection on the dashboard", func() bool {
		return strings.Contains(b.do("GET", "/admin/live", nil, nil).body, id)
	})
	page := html.UnescapeString(b.do("GET", "/admin/live", nil, nil).body)
	if want := `<code title="` + id + `">` + id[:8] + `</code>`; !strings.Contains(page, want) {
		t.Fatalf("the dashboard does not show the session as %s", want)
	}
	if want := `action="/admin/sessions/` + id + `/disconnect"`; !strings.Contains(page, want) {
		t.Fatalf("the dashboard's Disconnect lacks %s", want)
	}
	if r := b.do("POST", "/admin/sessions/"+id[:8]+"/disconnect", url.Values{}, nil); r.status != http.StatusNotFound {
		t.Fatalf("disconnecting by the short id: %d, want 404", r.status)
	}
	if r := b.do("POST", "/admin/sessions/"+id+"/disconnect", url.Values{}, http.Header{"HX-Request": {"true"}}); r.status != http.StatusOK {
		t.Fatalf("disconnecting by the whole id: %d, want 200", r.status)
	}
	for {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Fatalf("disconnected with %v, want close 1008", err)
			}
			break
		}
	}
}
