package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// pushKey is GET /push/key of s.
func pushKey(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get(s.url + "/push/key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Key string `json:"key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /push/key: %d, %v", resp.StatusCode, err)
	}
	return body.Key
}

func TestPushKeyIsMadeOnceAndKept(t *testing.T) {
	env := map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}
	s := start(t, env)
	first := pushKey(t, s)
	raw, err := base64.RawURLEncoding.DecodeString(first)
	if err != nil || len(raw) != 65 || raw[0] != 4 {
		t.Fatalf("the push key %q is not an uncompressed P-256 point in base64url", first)
	}
	s.shutdown(t)
	// Browsers' subscriptions are tied to the key: a restart keeps it.
	s = start(t, env)
	if again := pushKey(t, s); again != first {
		t.Fatalf("after a restart the push key is %q, want %q", again, first)
	}
}

func TestPushSubjectMustBeMailtoOrHTTPS(t *testing.T) {
	cfg, err := parseFlags([]string{"nochat"}, func(k string) string {
		return map[string]string{"NOCHAT_PUSH_SUBJECT": "https://chat.example.org/about"}[k]
	}, nil)
	if err != nil || cfg.pushSubject != "https://chat.example.org/about" {
		t.Fatalf("NOCHAT_PUSH_SUBJECT: %q, %v", cfg.pushSubject, err)
	}
	if cfg, err = parseFlags([]string{"nochat"}, func(string) string { return "" }, nil); err != nil || !strings.HasPrefix(cfg.pushSubject, "mailto:admin@") {
		t.Fatalf("the default subject: %q, %v", cfg.pushSubject, err)
	}
	cfg.pushSubject = "admin@example.org"
	cfg.dbPath = filepath.Join(t.TempDir(), "nochat.db")
	cfg.addr = "127.0.0.1:0"
	if err := serveConfig(t.Context(), cfg, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "mailto:") {
		t.Fatalf("serving with the subject admin@example.org: %v, want a refusal naming mailto:", err)
	}
}
