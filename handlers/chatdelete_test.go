package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Deleting from the chat page: offered to an admin only, refused to
// everyone else, and to another site's page.

func TestChatPageDeleteIsForAdminsOnly(t *testing.T) {
	a := newApp(t)
	a.send(t, "spam", "keep")
	spam := decodeMessages(t, a.do(t, "GET", "/discussion/latest/2", ""))[0]
	path := fmt.Sprintf("/admin/messages/%d/delete", spam.ID)
	jsonSameOrigin := http.Header{"Accept": {"application/json"}, "Origin": {a.srv.URL}, "Sec-Fetch-Site": {"same-origin"}}
	stillThere := func() {
		t.Helper()
		if _, err := a.store.Get(t.Context(), spam.ID); err != nil {
			t.Fatalf("the message is gone: %v", err)
		}
	}

	guest := a.browser(t)
	if r := guest.do("GET", "/", nil, nil); strings.Contains(r.body, "data-admin") || strings.Contains(r.body, "delete-dialog") {
		t.Fatal("a guest's chat page offers to delete")
	}
	if r := guest.do("POST", path, url.Values{}, jsonSameOrigin); r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"error"`) {
		t.Fatalf("a guest deleting: %d %s, want 401 with an error", r.status, r.body)
	}
	stillThere()
	forged := a.browser(t)
	u, _ := url.Parse(a.srv.URL + "/")
	forged.client.Jar.SetCookies(u, []*http.Cookie{{Name: "nochat_admin", Value: "4102444800.AAAA", Path: "/"}})
	if r := forged.do("GET", "/", nil, nil); strings.Contains(r.body, "data-admin") {
		t.Fatal("a forged cookie gets the admin's chat page")
	}
	if r := forged.do("POST", path, url.Values{}, jsonSameOrigin); r.status != http.StatusUnauthorized {
		t.Fatalf("a forged cookie deleting: %d, want 401", r.status)
	}
	stillThere()

	admin := a.browser(t)
	admin.login()
	if r := admin.do("GET", "/", nil, nil); !strings.Contains(r.body, "data-admin") || !strings.Contains(r.body, `id="delete-dialog"`) {
		t.Fatal("the admin's chat page does not offer to delete")
	}
	crossSite := http.Header{"Accept": {"application/json"}, "Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}
	if r := admin.do("POST", path, url.Values{}, crossSite); r.status != http.StatusForbidden {
		t.Fatalf("a cross-site delete with the admin's cookie: %d, want 403", r.status)
	}
	stillThere()
	if r := admin.do("POST", path, nil, jsonSameOrigin); r.status != http.StatusOK || !strings.Contains(r.body, `"status":"OK"`) {
		t.Fatalf("the admin deleting from the chat page: %d %s, want 200 OK", r.status, r.body)
	}
	if _, err := a.store.Get(t.Context(), spam.ID); err == nil {
		t.Fatal("the message is still stored")
	}
}
