package db_test

import (
	"context"
	"fmt"
	"testing"

	"nochat/db"
)

// The admin's message list: pages by id and a plain-text filter.

func TestFindPagesAndFilters(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	var texts []string
	for i := 1; i <= 30; i++ {
		texts = append(texts, fmt.Sprintf("line %02d", i))
	}
	texts[4] = "Buy CHEAP pills now" // id 5
	texts[9] = "100% off_sale"       // id 10
	stored := insert(t, s, texts...)

	find := func(f db.Filter) []int64 {
		t.Helper()
		msgs, err := s.Find(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		return ids
	}
	id := func(i int) int64 { return stored[i-1].ID }
	tests := []struct {
		name string
		f    db.Filter
		want []int64
	}{
		{"newest page", db.Filter{Limit: 3}, []int64{id(28), id(29), id(30)}},
		{"page below an id", db.Filter{Before: id(10), Limit: 3}, []int64{id(7), id(8), id(9)}},
		{"page above an id", db.Filter{After: id(10), Limit: 3}, []int64{id(11), id(12), id(13)}},
		{"the oldest page is short", db.Filter{Before: id(3), Limit: 5}, []int64{id(1), id(2)}},
		{"filter ignores ASCII case", db.Filter{Text: "cheap", Limit: 5}, []int64{id(5)}},
		{"percent is plain text", db.Filter{Text: "100%", Limit: 5}, []int64{id(10)}},
		{"underscore is plain text", db.Filter{Text: "f_s", Limit: 5}, []int64{id(10)}},
		{"a wildcard alone matches only itself", db.Filter{Text: "_", Limit: 50}, []int64{id(10)}},
		{"filter and page", db.Filter{Text: "line 2", Before: id(25), Limit: 3}, []int64{id(22), id(23), id(24)}},
		{"filter matches the user", db.Filter{Text: "ANN", Limit: 2}, []int64{id(29), id(30)}},
		{"nothing matches", db.Filter{Text: "nope", Limit: 5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := find(tt.f); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Find(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}
