package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Every refusal the HTTP side records names where it happened: the error
// log is keyed by kind and place, and an entry without a place lumps
// unrelated refusals of one kind together. The dashboard shows the place.
func TestHTTPRefusalsRecordAPlace(t *testing.T) {
	a := newApp(t)
	admin := a.browser(t)
	admin.login()
	b := a.browser(t)
	// A wrong password, then the per-address login limit (five tries).
	for range 6 {
		b.do("POST", "/admin/login", url.Values{"password": {"wrong"}}, nil)
	}
	// A host name this server does not answer to.
	req, _ := http.NewRequest("GET", a.srv.URL+"/", nil)
	req.Host = "attacker.example"
	if r := roundTrip(t, a.srv.Client(), req); r.status != http.StatusMisdirectedRequest {
		t.Fatalf("forged Host: %d, want 421", r.status)
	}
	// A body larger than any route takes. It is refused by its declared
	// length, unread, on a connection then closed: the client asks first
	// (Expect: 100-continue, as curl does for large bodies), or its write
	// of the body could meet the closed connection before it reads the 413.
	req, _ = http.NewRequest("POST", a.srv.URL+"/discussion", strings.NewReader(strings.Repeat("x", 100<<10)))
	req.Header.Set("Expect", "100-continue")
	asks := a.srv.Client().Transport.(*http.Transport).Clone()
	asks.ExpectContinueTimeout = 10 * time.Second
	if r := roundTrip(t, &http.Client{Transport: asks}, req); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: %d, want 413", r.status)
	}

	want := map[string]string{ // kind: place
		"bad input":    "admin login",
		"rate limited": "admin login",
		"bad origin":   "HTTP host check",
		"too large":    "HTTP request body",
	}
	errs := a.hub.Snapshot(100).Errors
	got := map[string]string{}
	for _, e := range errs {
		if e.Place == "" {
			t.Errorf("entry %q (%q) has no place", e.Kind, e.Detail)
		}
		got[e.Kind] = e.Place
	}
	for kind, place := range want {
		if got[kind] != place {
			t.Errorf("%s: place %q, want %q", kind, got[kind], place)
		}
	}

	page := admin.do("GET", "/admin/live", nil, nil).body
	for _, place := range want {
		if !strings.Contains(page, "<td class=\"place\">"+place+"</td>") {
			t.Errorf("the dashboard does not show the place %q", place)
		}
	}
}
