package chat

import (
	"context"
	"errors"
	"fmt"

	"nochat/db"
)

// ErrGuestUpload refuses a guest's file: a quota needs an account to count
// against (a guest's name is anyone's).
var ErrGuestUpload = &Refusal{"sign_in_required", "sign in to send files: guests may not"}

// ErrOverQuota refuses a file that would take its sender past their
// upload quota.
var ErrOverQuota = &Refusal{"over_quota", "this file would take you over your upload quota: delete some of your files, or ask an admin"}

// Upload sends a message with a file to room r from id (an account, who
// may post there), with text (which may be empty), answering message
// replyTo (0: none) as Reply does, and a key that names the send as on
// SendAs. The message and its file are stored in one
// transaction, then broadcast: nobody sees a message whose file is not
// stored. A file that would take its sender past file.Quota is refused
// with ErrOverQuota, nothing stored.
func (h *Hub) Upload(ctx context.Context, id Identity, r db.Room, text, key string, replyTo int64, file *db.Upload) (db.Stored, error) {
	if file == nil {
		return db.Stored{}, errors.New("upload: no file")
	}
	if id.Guest() {
		return db.Stored{}, ErrGuestUpload
	}
	st, err := h.send(ctx, id, r, DefaultUser, text, key, replyTo, file)
	if err != nil || !st.Duplicate {
		return st, err
	}
	// The same upload again: the message the key names, with its file.
	m, err := h.store.Get(ctx, st.Message.ID)
	switch {
	case errors.Is(err, db.ErrNotFound) || err == nil && m.File == nil:
		// The key named a message with no file (with the same text), or
		// one deleted since: not this upload.
		return db.Stored{}, ErrCIDReused
	case err != nil:
		return db.Stored{}, fmt.Errorf("%w (%w)", ErrStore, err)
	}
	st.Message = m
	return st, nil
}
