package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ErrOverQuota is a draft's Refused when storing its file would take its
// uploader past their quota (Upload.Quota): nothing was stored.
var ErrOverQuota = errors.New("over the upload quota")

// File is a message's file as messages carry it (REST, the nochat.v1
// message frame, the page). URL serves it to whoever may read the message;
// a picture has a Thumbnail URL and its Width and Height in pixels.
type File struct {
	URL       string `json:"url"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Size      int64  `json:"size"`
	Thumbnail string `json:"thumbnail,omitempty"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
}

// Image reports whether f is a picture (shown inline, with a thumbnail).
func (f *File) Image() bool { return f != nil && f.Thumbnail != "" }

// FileURL is where the file of message id is served; its thumbnail is at
// FileURL(id)+"/thumb". The file's key is its message's id, which is never
// handed out again, so the URL names one file for ever.
func FileURL(id int64) string { return "/files/" + strconv.FormatInt(id, 10) }

// Upload is the file a new message's draft carries, ready to store: a
// picture re-encoded with its thumbnail (Width and Height set), or another
// file as it came. Quota is the most the uploader may have stored in all,
// this file included (0: no limit); only accounts upload (UserID).
type Upload struct {
	Name          string
	Type          string
	Width, Height int
	Data          []byte
	Thumb         []byte // nil for a file that is not a picture
	Quota         int64
}

// file is u as the message it comes with carries it.
func (u *Upload) file(id int64) *File {
	f := &File{URL: FileURL(id), Name: u.Name, Type: u.Type, Size: int64(len(u.Data))}
	if u.Thumb != nil {
		f.Thumbnail, f.Width, f.Height = f.URL+"/thumb", u.Width, u.Height
	}
	return f
}

// overQuota marks, in out, the drafts among fresh whose file would take
// their uploader past the quota (ErrOverQuota), and returns the rest of
// fresh. It is read in the transaction that stores the files, so two
// uploads at once cannot both pass on the same room left.
func overQuota(ctx context.Context, tx *sql.Tx, drafts []Draft, fresh []int, out []Stored) ([]int, error) {
	var used map[int64]int64 // uploader → bytes stored, and taken by this batch
	kept := fresh[:0:0]
	for _, i := range fresh {
		d := drafts[i]
		if d.File == nil {
			kept = append(kept, i)
			continue
		}
		if used == nil {
			used = make(map[int64]int64)
		}
		n, ok := used[d.UserID]
		if !ok {
			var sum sql.NullInt64
			if err := tx.QueryRowContext(ctx, "SELECT sum(size) FROM files WHERE uploader = ?", d.UserID).Scan(&sum); err != nil {
				return nil, fmt.Errorf("upload quota: %w", err)
			}
			n = sum.Int64
		}
		size := int64(len(d.File.Data))
		if d.File.Quota > 0 && n+size > d.File.Quota {
			out[i] = Stored{Refused: ErrOverQuota}
			used[d.UserID] = n
			continue
		}
		used[d.UserID] = n + size
		kept = append(kept, i)
	}
	return kept, nil
}

// insertFile stores the file of the message m, just inserted from d.
func insertFile(ctx context.Context, tx *sql.Tx, m Message, d Draft) error {
	u := d.File
	var w, h any // NULL for a file that is not a picture
	if u.Thumb != nil {
		w, h = u.Width, u.Height
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO files (message_id, room_id, uploader, name, type, size, width, height, thumb, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		m.ID, m.Room, d.UserID, u.Name, u.Type, len(u.Data), w, h, u.Thumb, u.Data); err != nil {
		return fmt.Errorf("insert file: %w", err)
	}
	return nil
}

// filesIn reads the files of the messages ids (their columns, never their
// blobs), by message.
func filesIn(ctx context.Context, q queryer, ids []int64) (map[int64]*File, error) {
	var out map[int64]*File
	for chunk := range slices.Chunk(ids, maxIDsRead) {
		rows, err := q.QueryContext(ctx, "SELECT message_id, name, type, size, width, height FROM files WHERE message_id IN ("+list("?", len(chunk))+")", anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
		for rows.Next() {
			var id int64
			var f File
			var w, h sql.NullInt64
			if err := rows.Scan(&id, &f.Name, &f.Type, &f.Size, &w, &h); err != nil {
				rows.Close()
				return nil, fmt.Errorf("files: %w", err)
			}
			f.URL = FileURL(id)
			if w.Valid {
				f.Thumbnail, f.Width, f.Height = f.URL+"/thumb", int(w.Int64), int(h.Int64)
			}
			if out == nil {
				out = make(map[int64]*File)
			}
			out[id] = &f
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
	}
	return out, nil
}

// FileMeta is what serving a stored file needs before its bytes: the room
// its message is in (whose readers may have it), its name and type, and
// whether it has a thumbnail (a picture).
type FileMeta struct {
	Room  int64
	Name  string
	Type  string
	Size  int64
	Image bool
}

// FileInfo returns the file of message id, or ErrNotFound.
func (s *Store) FileInfo(ctx context.Context, id int64) (FileMeta, error) {
	var f FileMeta
	var w sql.NullInt64
	err := s.read.QueryRowContext(ctx, "SELECT room_id, name, type, size, width FROM files WHERE message_id = ?", id).Scan(&f.Room, &f.Name, &f.Type, &f.Size, &w)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return FileMeta{}, fmt.Errorf("file %d: %w", id, ErrNotFound)
	case err != nil:
		return FileMeta{}, fmt.Errorf("file %d: %w", id, err)
	}
	f.Image = w.Valid
	return f, nil
}

// FileBytes returns the bytes of the file of message id, or of its
// thumbnail when thumb is set; ErrNotFound when there are none (no such
// file, or the thumbnail of a file that is not a picture).
func (s *Store) FileBytes(ctx context.Context, id int64, thumb bool) ([]byte, error) {
	col := "data"
	if thumb {
		col = "thumb"
	}
	var b []byte
	err := s.read.QueryRowContext(ctx, "SELECT "+col+" FROM files WHERE message_id = ?", id).Scan(&b)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && b == nil:
		return nil, fmt.Errorf("file %d: %w", id, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("file %d: %w", id, err)
	}
	return b, nil
}

// UploadedBy returns how many bytes of files the account has stored.
func (s *Store) UploadedBy(ctx context.Context, account int64) (int64, error) {
	var sum sql.NullInt64
	if err := s.read.QueryRowContext(ctx, "SELECT sum(size) FROM files WHERE uploader = ?", account).Scan(&sum); err != nil {
		return 0, fmt.Errorf("uploaded by %d: %w", account, err)
	}
	return sum.Int64, nil
}
