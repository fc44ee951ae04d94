package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"nochat/db"
)

// refuseUpgrades sends n WebSocket upgrades, each offering a subprotocol
// of its own, so each refusal's text differs.
func refuseUpgrades(t *testing.T, base string, n int, tag string) {
	t.Helper()
	for i := range n {
		req, _ := http.NewRequest("GET", base+"/", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		req.Header.Set("Sec-WebSocket-Protocol", fmt.Sprintf("%s%d", tag, i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("upgrade %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("upgrade %d: %d, want 400", i, resp.StatusCode)
		}
	}
}

// 1,001 upgrades offering distinct subprotocols used to end the process
// (the error log evicted the entry it had just made, then dereferenced it),
// and once the log was full on disk, so did the first new error after each
// restart. Through run(): it serves on, restarts cleanly, and the log is one
// row for all of them.
func TestDistinctRefusedUpgradesThenRestartKeepServing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	s := start(t, nil, "-db", path)
	refuseUpgrades(t, s.url, 1001, "a")
	s.shutdown(t) // flushes the error log

	s = start(t, nil, "-db", path)
	refuseUpgrades(t, s.url, 10, "b")
	c := dialV1(t, s.url, "ann")
	c.sendOK("still here", "r1")
	c.conn.Close()
	s.shutdown(t)

	store, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rows, err := store.RecentErrors(context.Background(), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var refused []db.ErrorEntry
	for _, e := range rows {
		if e.Kind == "refused upgrade" {
			refused = append(refused, e)
		}
	}
	if len(refused) != 1 || refused[0].Count != 1011 || refused[0].Detail == "" {
		t.Fatalf("refused-upgrade rows %+v, want one counting 1,011 with a sample detail", refused)
	}
}
