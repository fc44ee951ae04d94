package db_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/acme/autocert"

	"nochat/db"
)

func TestACMECache(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := s.ACMECache()
	if _, err := c.Get(ctx, "chat.example.org"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("get of a missing key: %v, want autocert.ErrCacheMiss", err)
	}
	if err := c.Put(ctx, "chat.example.org", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "chat.example.org", []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "acme_account+key", []byte("key")); err != nil {
		t.Fatal(err)
	}
	t.Run("refuses oversized entries", func(t *testing.T) {
		if err := c.Put(ctx, "big", bytes.Repeat([]byte("x"), 1<<20+1)); err == nil {
			t.Error("a value over 1 MiB was stored")
		}
		if err := c.Put(ctx, strings.Repeat("k", 513), []byte("x")); err == nil {
			t.Error("a key over 512 bytes was stored")
		}
	})
	if err := c.Delete(ctx, "acme_account+key"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "never stored"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	s.Close()

	// What was stored is in the file: a new process finds it.
	s, err = db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c = s.ACMECache()
	got, err := c.Get(ctx, "chat.example.org")
	if err != nil || string(got) != "second" {
		t.Fatalf("get after reopening: %q, %v; want \"second\"", got, err)
	}
	keys, err := c.Keys(ctx)
	if err != nil || !slices.Equal(keys, []string{"chat.example.org"}) {
		t.Fatalf("keys: %q, %v; want only chat.example.org", keys, err)
	}
}
