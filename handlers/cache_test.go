package handlers

import (
	"strings"
	"testing"

	"nochat/db"
)

// What one person reads is kept by no cache between them and NoChat: a
// proxy set to cache what it may served one person's rooms to another, as
// their JSON answers said nothing of caching and a cookie (not a key of a
// shared cache) told them apart. The page, with its history, is private.
func TestPrivateAnswersAreNotCached(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	for _, c := range []struct{ path, want string }{
		{"/rooms", "no-store"},
		{"/rooms/lobby", "no-store"},
		{"/rooms/lobby/messages", "no-store"},
		{"/rooms/lobby/messages/latest/5", "no-store"},
		{"/discussion", "no-store"},
		{"/search?q=hello", "no-store"},
		{"/rooms/nowhere", "no-store"}, // a refusal too
		{"/", "private"},
	} {
		code, header, body := get(t, srv, c.path, ann, nil)
		if cc := header.Get("Cache-Control"); !strings.Contains(cc, c.want) {
			t.Errorf("GET %s: %d, Cache-Control %q, want %s (%.100s)", c.path, code, cc, c.want, body)
		}
	}
}
