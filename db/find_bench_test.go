package db_test

import (
	"context"
	"fmt"
	"testing"

	"nochat/db"
)

// BenchmarkFindRare is the dashboard's filter at its worst: a word no
// message holds, so the scan reads the whole table (200,000 messages).
func BenchmarkFindRare(b *testing.B) {
	s := newTestStore(b)
	const n, chunk = 200_000, 1000
	drafts := make([]db.Draft, chunk)
	for i := 0; i < n; i += chunk {
		for j := range drafts {
			drafts[j] = db.Draft{User: fmt.Sprint("user", j%50), Message: fmt.Sprintf("an ordinary chat line number %d, about this and that", i+j)}
		}
		if _, err := s.Insert(context.Background(), drafts); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		msgs, err := s.Find(context.Background(), db.Filter{Text: "nowhere", Limit: 21})
		if err != nil || len(msgs) != 0 {
			b.Fatal(len(msgs), err)
		}
	}
}
