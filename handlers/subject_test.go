package handlers

import (
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRequestSubjectCutsAtACharacterBoundary(t *testing.T) {
	// 79 bytes of ASCII, then two-byte characters: byte 80 is inside one.
	path := "/" + strings.Repeat("a", 78) + strings.Repeat("é", 20)
	r := httptest.NewRequest("POST", path, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	got := requestSubject(r, false)
	if !utf8.ValidString(got) || strings.ContainsRune(got, utf8.RuneError) {
		t.Fatalf("requestSubject = %q: cut inside a character", got)
	}
	if want := "POST /" + strings.Repeat("a", 78) + "…"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, " from 192.0.2.1") {
		t.Fatalf("requestSubject = %q, want %q… from 192.0.2.1", got, want)
	}
}
