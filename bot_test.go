package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// runBotCmd runs `nochat bot ARGS -db path` as the binary would, and
// returns its output and error.
func runBotCmd(t *testing.T, path string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append(append([]string{"nochat", "bot"}, args...), "-db", path), func(string) string { return "" }, &out, &errOut)
	return out.String() + errOut.String(), err
}

// The shell makes a bot while the server runs; the bot's token works on
// the server at once; `nochat bot revoke` from the shell (another
// database handle, as another process) closes its live socket and stops
// its token; list and rotate say what they did, and bad names and rooms
// are refused.
func TestBotShellAgainstARunningServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	s := start(t, map[string]string{"NOCHAT_DB": path})

	out, err := runBotCmd(t, path, "create", "Heron", "-rooms", "lobby", "-avatar", "🐦")
	if err != nil {
		t.Fatalf("bot create: %v\n%s", err, out)
	}
	token := ""
	for _, line := range strings.Fields(out) {
		if strings.HasPrefix(line, "nochat_bot_") {
			token = line
		}
	}
	if token == "" {
		t.Fatalf("bot create printed no token:\n%s", out)
	}
	for _, bad := range [][]string{
		{"create", "Heron"},                      // taken
		{"create", "heron"},                      // taken, as names compare
		{"create", "Crane", "-rooms", "nowhere"}, // no such room
		{"create", "Crane", "-avatar", "CR"},     // not an emoji
		{"create", ""},                           // no name
		{"create", "guest"},                      // the guests' name
		{"revoke", "Nobody"},
		{"frobnicate"},
	} {
		if out, err := runBotCmd(t, path, bad...); err == nil {
			t.Errorf("bot %v: no error\n%s", bad, out)
		}
	}

	dial := func(token string) (*websocket.Conn, *http.Response, error) {
		return (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(s.url, "http")+"/", http.Header{"Authorization": {"Bearer " + token}})
	}
	c, _, err := dial(token)
	if err != nil {
		t.Fatalf("the bot's socket: %v", err)
	}
	defer c.Close()

	out, err = runBotCmd(t, path, "list")
	if err != nil || !strings.Contains(out, "Heron") || !strings.Contains(out, "lobby") || !strings.Contains(out, token[:len("nochat_bot_")+6]) || strings.Contains(out, token) || !strings.Contains(out, "🐦") {
		t.Fatalf("bot list: %v\n%s", err, out)
	}

	if out, err := runBotCmd(t, path, "revoke", "Heron"); err != nil {
		t.Fatalf("bot revoke: %v\n%s", err, out)
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for i := 0; ; i++ {
		_, _, err := c.ReadMessage()
		if err == nil && i < 1000 {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != chat.CloseAccountEnded {
			t.Fatalf("the bot's socket after revoke: %v, want a close %d", err, chat.CloseAccountEnded)
		}
		break
	}
	if _, resp, err := dial(token); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("socket with the revoked token: %v, want 401", err)
	}

	out, err = runBotCmd(t, path, "rotate", "Heron")
	if err != nil {
		t.Fatalf("bot rotate: %v\n%s", err, out)
	}
	fresh := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	req, _ := http.NewRequest("GET", s.url+"/rooms", nil)
	req.Header.Set("Authorization", "Bearer "+fresh)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"slug":"lobby"`) {
		t.Fatalf("GET /rooms with the rotated token: %d %s", resp.StatusCode, body)
	}
	// Its messages carry its avatar, as sent and in history.
	req, _ = http.NewRequest("POST", s.url+"/rooms/lobby/messages", strings.NewReader(`{"message":"the washing is done"}`))
	req.Header.Set("Authorization", "Bearer "+fresh)
	req.Header.Set("Content-Type", "application/json")
	for _, r := range []*http.Request{req, must(http.NewRequest("GET", s.url+"/rooms/lobby/messages/latest/1", nil))} {
		r.Header.Set("Authorization", "Bearer "+fresh)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 || !strings.Contains(string(body), `"avatar":"🐦"`) {
			t.Fatalf("%s %s: %d %s, want the bot's avatar", r.Method, r.URL.Path, resp.StatusCode, body)
		}
	}
	s.shutdown(t)
	store, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	lines, err := store.AuditLog(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, l.Actor+" "+l.Action+" "+l.Target)
	}
	if want := "shell bot rotate Heron|shell bot revoke Heron|shell bot create Heron"; strings.Join(got, "|") != want {
		t.Errorf("audit: %q, want %q", got, want)
	}
	if !strings.Contains(s.logs.String(), "closed the sockets of a bot") {
		t.Errorf("the log does not say the bot's socket was closed:\n%s", s.logs.String())
	}
}

// must is v, failing the test's process on err: for requests built from
// constants.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// On a cluster node's database, the shell's bot, webhook and import
// commands refuse to write: the change would be that node's alone. What
// they only read still works.
func TestShellCommandsRefuseToWriteANodesDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	s, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("UPDATE log_position SET seq = 7"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	export := filepath.Join(t.TempDir(), "export.jsonl")
	if err := os.WriteFile(export, []byte(`[{"message":"hi","user":"ann","timestamp":1}]`), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"bot", "create", "Heron", "-rooms", "lobby", "-db", path},
		{"bot", "rotate", "Heron", "-db", path},
		{"webhook", "create", "-room", "lobby", "-name", "Doorbell", "-db", path},
		{"webhook", "delete", "1", "-db", path},
		{"import", "-db", path, "-tutorial", export},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"nochat"}, args...), func(string) string { return "" }, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "a cluster node's") {
			t.Errorf("nochat %s on a node's database: %v, want refused\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
	}
	if out, err := runBotCmd(t, path, "list"); err != nil {
		t.Errorf("nochat bot list on a node's database: %v\n%s", err, out)
	}
	if count, err := db.LogPositionOf(context.Background(), path); err != nil || count != 7 {
		t.Errorf("the node's log position after the refusals: %d, %v", count, err)
	}
}
