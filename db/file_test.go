package db_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"nochat/db"
)

// picture is an upload as media makes one: a picture with a thumbnail.
func picture(name string, size int) *db.Upload {
	return &db.Upload{Name: name, Type: "image/jpeg", Width: 800, Height: 600, Data: bytes.Repeat([]byte{0xAB}, size), Thumb: []byte("thumb of " + name)}
}

// A message and its file are stored together, read back together with
// history, and the file's bytes are served from it.
func TestFileIsStoredWithItsMessage(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann := account(t, s, "ann")
	st := store(t, s,
		db.Draft{User: "ann", UserID: ann, Message: "the view", File: picture("view.jpg", 1000)},
		db.Draft{User: "ann", UserID: ann, Message: "", File: &db.Upload{Name: "notes.pdf", Type: "application/pdf", Data: []byte("%PDF-1.4")}},
	)
	want := db.File{URL: db.FileURL(st[0].Message.ID), Name: "view.jpg", Type: "image/jpeg", Size: 1000, Thumbnail: db.FileURL(st[0].Message.ID) + "/thumb", Width: 800, Height: 600}
	if f := st[0].Message.File; f == nil || *f != want {
		t.Fatalf("stored message's file = %+v, want %+v", f, want)
	}
	msgs, err := s.Latest(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].File == nil || *msgs[0].File != want {
		t.Fatalf("history = %+v, want the picture on the first message", msgs)
	}
	if f := msgs[1].File; f == nil || f.Name != "notes.pdf" || f.Thumbnail != "" || f.Width != 0 || f.Size != 8 {
		t.Fatalf("history's second file = %+v, want notes.pdf, 8 bytes, no thumbnail", f)
	}
	// Every read of a room's history carries the files: the newest page,
	// older pages, a page's parts, and what follows a permalink's message.
	last := st[1].Message.ID
	for name, read := range map[string]func() ([]db.Message, error){
		"LatestIn": func() ([]db.Message, error) { return s.LatestIn(ctx, db.DefaultRoom, 10) },
		"BeforeIn": func() ([]db.Message, error) { return s.BeforeIn(ctx, db.DefaultRoom, last+1, 10) },
		"RangeIn":  func() ([]db.Message, error) { return s.RangeIn(ctx, db.DefaultRoom, 0, last+1, 10) },
		"AfterIn":  func() ([]db.Message, error) { return s.AfterIn(ctx, db.DefaultRoom, 0, 10) },
	} {
		msgs, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 || msgs[0].File == nil || *msgs[0].File != want || msgs[1].File == nil {
			t.Errorf("%s = %+v, want both messages with their files", name, msgs)
		}
	}
	b, err := s.FileBytes(ctx, st[0].Message.ID, false)
	if err != nil || len(b) != 1000 {
		t.Fatalf("FileBytes = %d bytes, %v; want 1000", len(b), err)
	}
	if b, err := s.FileBytes(ctx, st[0].Message.ID, true); err != nil || string(b) != "thumb of view.jpg" {
		t.Fatalf("thumbnail = %q, %v", b, err)
	}
	if _, err := s.FileBytes(ctx, st[1].Message.ID, true); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a PDF's thumbnail: %v, want ErrNotFound", err)
	}
	if used, err := s.UploadedBy(ctx, ann); err != nil || used != 1008 {
		t.Fatalf("UploadedBy = %d, %v; want 1008", used, err)
	}

	// A reply to a file sent without text quotes the file's name.
	reply := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "which one?", ReplyTo: st[1].Message.ID})[0].Message
	got, err := s.Get(ctx, reply.ID)
	if err != nil || got.ReplyTo == nil || got.ReplyTo.Message != "notes.pdf" {
		t.Fatalf("the reply's quote = %+v, %v; want the file's name", got.ReplyTo, err)
	}
}

// However a message goes, its file goes in the same transaction: deleted
// by its author, and by retention.
func TestFileGoesWithItsMessage(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann := account(t, s, "ann")
	gone := func(t *testing.T, id int64) {
		t.Helper()
		if _, err := s.FileInfo(ctx, id); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("file %d after its message went: %v, want ErrNotFound", id, err)
		}
		if _, err := s.FileBytes(ctx, id, false); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("file %d's bytes after its message went: %v, want ErrNotFound", id, err)
		}
	}

	t.Run("deleted", func(t *testing.T) {
		m := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "oops", File: picture("oops.jpg", 100)})[0].Message
		if _, err := s.FileInfo(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if st := store(t, s, db.Draft{UserID: ann, Change: db.Delete, Target: m.ID})[0]; st.Refused != nil {
			t.Fatal(st.Refused)
		}
		gone(t, m.ID)
	})
	t.Run("pruned", func(t *testing.T) {
		old := store(t, s, db.Draft{User: "ann", UserID: ann, Message: "old", File: picture("old.jpg", 100)})[0].Message
		store(t, s, db.Draft{User: "ann", UserID: ann, Message: "new"})
		deleted, _, err := s.Prune(ctx, time.Time{}, 1, 500)
		if err != nil || deleted != 1 {
			t.Fatalf("Prune = %d, %v; want 1 deleted", deleted, err)
		}
		gone(t, old.ID)
		if used, err := s.UploadedBy(ctx, ann); err != nil || used != 0 {
			t.Fatalf("UploadedBy after both went = %d, %v; want 0", used, err)
		}
	})
}

// The quota is checked in the transaction that stores the file: a batch
// that would take one person past it stores what fits and refuses the
// rest, nothing of the refused stored.
func TestUploadQuota(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	ann, bob := account(t, s, "ann"), account(t, s, "bob")
	quota := func(u *db.Upload) *db.Upload { u.Quota = 250; return u }
	out := store(t, s,
		db.Draft{User: "ann", UserID: ann, File: quota(picture("a.jpg", 100))},
		db.Draft{User: "ann", UserID: ann, File: quota(picture("b.jpg", 100))},
		db.Draft{User: "ann", UserID: ann, File: quota(picture("c.jpg", 100)), CID: "c"},
		db.Draft{User: "ann", UserID: ann, File: quota(picture("c.jpg", 100)), CID: "c"}, // the same send again
		db.Draft{User: "bob", UserID: bob, File: quota(picture("d.jpg", 100))},
		db.Draft{User: "ann", UserID: ann, Message: "text is not counted"},
	)
	for i, want := range []error{nil, nil, db.ErrOverQuota, db.ErrOverQuota, nil, nil} {
		if !errors.Is(out[i].Refused, want) {
			t.Errorf("draft %d: refused %v, want %v", i, out[i].Refused, want)
		}
		if (want == nil) != (out[i].Message.ID != 0) {
			t.Errorf("draft %d: message %d, refused %v", i, out[i].Message.ID, out[i].Refused)
		}
	}
	if used, _ := s.UploadedBy(ctx, ann); used != 200 {
		t.Fatalf("ann has %d bytes stored, want 200", used)
	}
	msgs, _ := s.Latest(ctx, 10)
	if len(msgs) != 4 {
		t.Fatalf("%d messages stored, want 4 (nothing of a refused file)", len(msgs))
	}
}
