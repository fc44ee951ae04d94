package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestCIDLookupSearchesTheIndex checks that looking up a batch's cids reads
// the index entries of those senders' cids, and never scans the room: the
// Writer runs the lookup for every batch, on tables of millions of rows.
func TestCIDLookupSearchesTheIndex(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []int{1, maxChunk} {
		args := make([]any, 2*n+1)
		rows, err := s.write.Query("EXPLAIN QUERY PLAN "+findSQL(n), args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, "SEARCH messages USING INDEX messages_sender_cid (cid=? AND <expr>=? AND timestamp>?)") || strings.Contains(got, "SCAN messages") {
			t.Fatalf("plan for %d cids: %s; want a search of messages_sender_cid by cid, user and time", n, got)
		}
	}
}
