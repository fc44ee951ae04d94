package handlers

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"nochat/chat"
	"nochat/db"
	"nochat/media"
)

// Pictures and files (issue 15, item 5).
//
//	POST /rooms/{slug}/files     multipart: file, message (optional); Idempotency-Key as on messages.
//	                             An account that may post in the room; 201 with the message.
//	GET  /files/{id}             the file of message id: whoever may read that message
//	GET  /files/{id}/thumb       a picture's thumbnail: the same people
//
// A file is stored with its message, in the database, and served from a
// path that asks the same room access as the message: a room one may not
// see is 404 for its files, as a file that does not exist.

// Limits of uploads. The sizes are in bytes, as people write them (a MB is
// 1,000,000 bytes).
const (
	// DefaultMaxUpload is the most bytes one file may have: a phone photo.
	DefaultMaxUpload = 10_000_000
	// DefaultUploadQuota is the most bytes of files one account may have
	// stored: twenty phone photos at the largest.
	DefaultUploadQuota = 200_000_000
	// uploadSlack is the room a multipart body takes besides the file: its
	// boundaries and headers, and the message (at most a few KiB).
	uploadSlack = 64 << 10
	// uploadTimeout is how long an upload's body may take to arrive, and a
	// download to leave, and a second more for each 32 KiB that did
	// (paceBytes): 10 MB over a 1 Mbit/s link takes 80 s.
	uploadTimeout = 5 * time.Minute
	// writeSlack is the time an answer has after its body arrived.
	writeSlack = time.Minute
	// uploadSlots bounds the uploads held in memory at once (each up to
	// MaxUpload); more wait for a slot up to slotWait, or until their
	// request ends, and are then refused with 503. One account holds at
	// most accountUploads of them (429 beyond), so that one person's
	// slow uploads leave room for everyone else's. decodeSlots bounds
	// the pictures decoded at once: a 12-megapixel photo takes about
	// 18 MB decoded, twice that while it is turned upright.
	uploadSlots    = 4
	accountUploads = 2
	slotWait       = 15 * time.Second
	decodeSlots    = 1
	// downloadSlots bounds the files read into memory to be sent at once
	// (each up to MaxUpload); thumbnails are small and not counted.
	downloadSlots = 8
	// maxFileName is the most characters of a file's name that are kept.
	maxFileName = 200
)

func maxUpload(d Deps) int64 {
	if d.MaxUpload > 0 {
		return d.MaxUpload
	}
	return DefaultMaxUpload
}

// uploadBodyLimit is the most bytes an upload's request body may have.
func uploadBodyLimit(d Deps) int64 { return maxUpload(d) + uploadSlack }

// errFileTooLarge refuses a file over the limit.
func errFileTooLarge(d Deps) error {
	return fmt.Errorf("file too large: the most is %s", humanBytes(maxUpload(d)))
}

// isUpload reports whether r is POST /rooms/{slug}/files, whose body is a
// file: the edge gives it that route's limits (limitBodies).
func isUpload(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	slug, ok := strings.CutPrefix(r.URL.Path, "/rooms/")
	slug, ok2 := strings.CutSuffix(slug, "/files")
	return ok && ok2 && slug != "" && !strings.Contains(slug, "/")
}

// humanBytes is n as people read it: 10 MB, 200 MB, 512 kB.
func humanBytes(n int64) string {
	switch {
	case n >= 1_000_000_000:
		return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64) + " GB"
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + " MB"
	case n >= 1000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + " kB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// fileHub is what the file routes need of the hub.
type fileHub interface {
	Room(id int64) (db.Room, bool)
	RoomBySlug(slug string) (db.Room, bool)
	AccessTo(ctx context.Context, id chat.Identity, r db.Room) (chat.Access, error)
	CatchUp(ctx context.Context) bool
	Upload(ctx context.Context, id chat.Identity, r db.Room, text, key string, replyTo int64, file *db.Upload) (db.Stored, error)
	GuestsMayRead() bool
}

// fileStore is what the file routes read.
type fileStore interface {
	FileInfo(ctx context.Context, id int64) (db.FileMeta, error)
	FileBytes(ctx context.Context, id int64, thumb bool) ([]byte, error)
	UploadedBy(ctx context.Context, account int64) (int64, error)
}

type fileRoutes struct {
	log       *slog.Logger
	hub       fileHub
	store     fileStore
	who       identifier
	maxUpload int64
	quota     int64         // 0: none
	transfer  time.Duration // a download's time before what it earns (uploadTimeout)
	uploads   chan struct{}
	decodes   chan struct{}
	downloads chan struct{}

	mu        sync.Mutex
	uploading map[int64]int // uploads under way, per account
}

// addFileRoutes adds the file routes (signed-in people only upload, so it
// comes with the accounts).
func addFileRoutes(mux *http.ServeMux, d Deps, guard *sendGuard) {
	quota := d.UploadQuota
	switch {
	case quota == 0:
		quota = DefaultUploadQuota
	case quota < 0:
		quota = 0
	}
	fr := &fileRoutes{
		log: d.Log, hub: d.Hub, store: d.Store, who: d.Auth,
		maxUpload: maxUpload(d), quota: quota, transfer: cmp.Or(d.UploadTimeout, uploadTimeout),
		uploads:   make(chan struct{}, uploadSlots),
		decodes:   make(chan struct{}, decodeSlots),
		downloads: make(chan struct{}, downloadSlots),
	}
	mux.Handle("POST /rooms/{slug}/files", guard.sends(http.HandlerFunc(fr.upload)))
	mux.Handle("GET /files/{id}", membersRead(d.Log, d.Hub, d.Auth, fr.serve(false)))
	mux.Handle("GET /files/{id}/thumb", membersRead(d.Log, d.Hub, d.Auth, fr.serve(true)))
}

var (
	errNotMultipart = errors.New("send the file as multipart/form-data, in a field named file")
	errNoFile       = errors.New("no file: send it in a multipart field named file")
	errBusyUploads  = errors.New("too many uploads at once: try again in a moment")
	errYourUploads  = fmt.Errorf("you have %d uploads under way: send this one when one of them is through", accountUploads)
	errNoSuchFile   = errors.New("no such file")
)

// startUpload counts an upload of account's, unless it has
// accountUploads under way already.
func (fr *fileRoutes) startUpload(account int64) bool {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.uploading[account] >= accountUploads {
		return false
	}
	if fr.uploading == nil {
		fr.uploading = make(map[int64]int)
	}
	fr.uploading[account]++
	return true
}

func (fr *fileRoutes) endUpload(account int64) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.uploading[account]--; fr.uploading[account] <= 0 {
		delete(fr.uploading, account)
	}
}

// upload is POST /rooms/{slug}/files. Everything that can be refused
// without the body (the room, the person, the key, the type) is refused
// before it is read.
func (fr *fileRoutes) upload(w http.ResponseWriter, r *http.Request) {
	id := fr.who.Identity(r)
	room, a, ok, err := lookUpRoom(r.Context(), fr.hub, id, r.PathValue("slug"))
	if !ok {
		writeError(w, r, fr.log, http.StatusNotFound, errNoRoom)
		return
	}
	switch {
	case err != nil:
		writeError(w, r, fr.log, http.StatusServiceUnavailable, err)
		return
	case !a.See:
		writeError(w, r, fr.log, http.StatusNotFound, errNoRoom)
		return
	case id.Guest():
		writeError(w, r, fr.log, sendStatus(chat.ErrGuestUpload), chat.ErrGuestUpload)
		return
	case !a.Post:
		writeError(w, r, fr.log, sendStatus(a.Why), a.Why)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		writeError(w, r, fr.log, http.StatusBadRequest, err)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "multipart/form-data" {
		writeError(w, r, fr.log, http.StatusUnsupportedMediaType, errNotMultipart)
		return
	}
	if !fr.startUpload(id.UserID) {
		writeError(w, r, fr.log, http.StatusTooManyRequests, errYourUploads)
		return
	}
	defer fr.endUpload(id.UserID)
	wait := time.NewTimer(slotWait)
	defer wait.Stop()
	select {
	case fr.uploads <- struct{}{}:
		defer func() { <-fr.uploads }()
	case <-wait.C:
		w.Header().Set("Retry-After", "10")
		writeError(w, r, fr.log, http.StatusServiceUnavailable, errBusyUploads)
		return
	case <-r.Context().Done():
		writeError(w, r, fr.log, http.StatusServiceUnavailable, errBusyUploads)
		return
	}
	body, err := fr.readUpload(r)
	if err != nil {
		writeBodyError(w, r, fr.log, err)
		return
	}
	if fr.quota > 0 {
		// Before the picture is decoded: the transaction that stores the
		// file checks again, and is what holds.
		used, err := fr.store.UploadedBy(r.Context(), id.UserID)
		if err != nil {
			writeError(w, r, fr.log, http.StatusServiceUnavailable, err)
			return
		}
		if used+int64(len(body.data)) > fr.quota {
			writeError(w, r, fr.log, http.StatusRequestEntityTooLarge, fr.overQuota(used))
			return
		}
	}
	select {
	case fr.decodes <- struct{}{}:
	case <-r.Context().Done():
		writeError(w, r, fr.log, http.StatusServiceUnavailable, errBusyUploads)
		return
	}
	f, err := func() (media.File, error) {
		defer func() { <-fr.decodes }() // a panic too gives the slot back
		return media.Process(body.data, body.declared, media.Limits{})
	}()
	body.data = nil // a picture's upload is garbage now; another file's is f.Data
	switch {
	case errors.Is(err, media.ErrLyingType):
		writeError(w, r, fr.log, http.StatusUnsupportedMediaType, err)
		return
	case errors.Is(err, media.ErrTooManyPixels):
		writeError(w, r, fr.log, http.StatusRequestEntityTooLarge, err)
		return
	case errors.Is(err, media.ErrBadPicture):
		writeError(w, r, fr.log, http.StatusUnprocessableEntity, err)
		return
	case err != nil:
		writeError(w, r, fr.log, http.StatusInternalServerError, err)
		return
	}
	up := &db.Upload{Name: body.name, Type: f.Type, Width: f.Width, Height: f.Height, Data: f.Data, Thumb: f.Thumb, Quota: fr.quota}
	st, err := fr.hub.Upload(r.Context(), id, room, body.text, key, body.replyTo, up)
	switch {
	case errors.Is(err, chat.ErrOverQuota):
		used, _ := fr.store.UploadedBy(r.Context(), id.UserID)
		writeError(w, r, fr.log, http.StatusRequestEntityTooLarge, fr.overQuota(used))
		return
	case err != nil:
		writeSendError(w, r, fr.log, err)
		return
	}
	markReplay(w, st)
	w.Header().Set("Location", st.Message.File.URL)
	encode(w, http.StatusCreated, message(st.Message))
}

func (fr *fileRoutes) overQuota(used int64) error {
	return fmt.Errorf("over your upload quota: you have %s of files stored, the most is %s; delete some of your files first", humanBytes(used), humanBytes(fr.quota))
}

// uploadForm is what an upload's multipart body holds: the file, its name and
// declared type, the message sent with it, and the message it answers
// (reply_to, a message id; 0 for none).
type uploadForm struct {
	text     string
	replyTo  int64
	name     string
	declared string
	data     []byte
}

// readUpload reads the multipart body, the file at most maxUpload bytes.
// Its errors are statusErrors where 400 is not the answer.
func (fr *fileRoutes) readUpload(r *http.Request) (uploadForm, error) {
	var up uploadForm
	mr, err := r.MultipartReader()
	if err != nil {
		return up, &statusError{http.StatusUnsupportedMediaType, errNotMultipart}
	}
	tooLarge := &statusError{http.StatusRequestEntityTooLarge, fmt.Errorf("file too large: the most is %s", humanBytes(fr.maxUpload))}
	bodyErr := func(err error) error {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return tooLarge
		case errors.Is(err, errBodyTimeout):
			return &statusError{http.StatusRequestTimeout, err}
		}
		return fmt.Errorf("reading the upload: %w", err)
	}
	var got bool
	// A file and a message: a few parts at most, however the body is cut.
	for range 4 {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return up, bodyErr(err)
		}
		switch p.FormName() {
		case "file":
			if got {
				return up, errors.New("one file per message")
			}
			got = true
			up.name, up.declared = fileName(p.FileName()), p.Header.Get("Content-Type")
			// Read into one buffer of the size the body says (at most
			// the limit): io.ReadAll's doubling would leave about as much
			// again behind as garbage, at the moment memory is tightest.
			buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 512), fr.maxUpload+1)))
			if _, err := buf.ReadFrom(io.LimitReader(p, fr.maxUpload+1)); err != nil {
				return up, bodyErr(err)
			}
			up.data = buf.Bytes()
			if int64(len(up.data)) > fr.maxUpload {
				return up, tooLarge
			}
		case "reply_to":
			b, err := io.ReadAll(io.LimitReader(p, 33))
			if err != nil {
				return up, bodyErr(err)
			}
			if up.replyTo, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil || up.replyTo < 1 || len(b) > 32 {
				return up, errors.New("reply_to must be a message id (a whole number, 1 or more)")
			}
		case "message":
			b, err := io.ReadAll(io.LimitReader(p, uploadSlack))
			if err != nil {
				return up, bodyErr(err)
			}
			up.text = string(b)
		default:
			return up, fmt.Errorf("unexpected field %.40q: send file and, if you like, message and reply_to", p.FormName())
		}
	}
	if !got {
		return up, errNoFile
	}
	if len(up.data) == 0 {
		return up, errors.New("the file is empty")
	}
	return up, nil
}

// fileName is the name an upload is kept and served under: the last part
// of what the browser sent, valid UTF-8 without control characters or
// bidirectional controls (U+202E would show "invoice\u202Efdp.exe" as
// "invoiceexe.pdf"), at most maxFileName characters; "file" when nothing
// is left.
func fileName(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = path.Base(strings.ReplaceAll(s, `\`, "/")) // a Windows path too
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '"' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxFileName {
		s = string([]rune(s)[:maxFileName])
	}
	if s == "" || s == "." || s == "/" || s == ".." {
		return "file"
	}
	return s
}

// serve is GET /files/{id} (or its thumbnail): to whoever may read the
// message the file came with; anyone else is told there is no such file.
// A file's URL always names the same bytes, so browsers may keep it; it is
// sent so that it cannot run: a sandbox CSP, nosniff, and a picture inline
// or anything else as a download.
func (fr *fileRoutes) serve(thumb bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			writeError(w, r, fr.log, http.StatusNotFound, errNoSuchFile)
			return
		}
		f, err := fr.store.FileInfo(r.Context(), id)
		if errors.Is(err, db.ErrNotFound) && fr.hub.CatchUp(r.Context()) {
			// Sent through another node a moment ago, perhaps.
			f, err = fr.store.FileInfo(r.Context(), id)
		}
		switch {
		case errors.Is(err, db.ErrNotFound):
			writeError(w, r, fr.log, http.StatusNotFound, errNoSuchFile)
			return
		case err != nil:
			writeError(w, r, fr.log, http.StatusServiceUnavailable, err)
			return
		}
		room, ok := fr.hub.Room(f.Room)
		if !ok {
			writeError(w, r, fr.log, http.StatusNotFound, errNoSuchFile)
			return
		}
		a, err := fr.hub.AccessTo(r.Context(), fr.who.Identity(r), room)
		switch {
		case err != nil:
			writeError(w, r, fr.log, http.StatusServiceUnavailable, err)
			return
		case !a.See, thumb && !f.Image:
			writeError(w, r, fr.log, http.StatusNotFound, errNoSuchFile)
			return
		}
		etag := `"f` + strconv.FormatInt(id, 10) + `"`
		if thumb {
			etag = `"t` + strconv.FormatInt(id, 10) + `"`
		}
		headers := func() {
			h := w.Header()
			h.Set("ETag", etag)
			h.Set("Cache-Control", "private, max-age=31536000, immutable")
			h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Content-Type", f.Type)
			disposition := "attachment"
			if f.Image {
				disposition = "inline"
			}
			if v := mime.FormatMediaType(disposition, map[string]string{"filename": f.Name}); v != "" {
				disposition = v // the name, quoted or RFC 2231-encoded as it needs
			}
			h.Set("Content-Disposition", disposition)
		}
		if noneMatch(r.Header.Get("If-None-Match"), etag) {
			// The client has it: its bytes are not read.
			headers()
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if !thumb {
			select {
			case fr.downloads <- struct{}{}:
				defer func() { <-fr.downloads }()
			case <-r.Context().Done():
				return
			}
		}
		b, err := fr.store.FileBytes(r.Context(), id, thumb)
		switch {
		case errors.Is(err, db.ErrNotFound): // deleted meanwhile
			writeError(w, r, fr.log, http.StatusNotFound, errNoSuchFile)
			return
		case err != nil:
			writeError(w, r, fr.log, http.StatusServiceUnavailable, err)
			return
		}
		headers()
		var content io.ReadSeeker = bytes.NewReader(b)
		if !thumb {
			// A large file over a slow link takes longer than the
			// server's write timeout allows a page: it has an upload's
			// time, and a second more for each 32 KiB taken.
			rc := http.NewResponseController(w)
			deadline := time.Now().Add(fr.transfer)
			rc.SetWriteDeadline(deadline)
			content = &pacedReader{ReadSeeker: content, pace: pace{deadline: deadline, set: rc.SetWriteDeadline}}
		}
		// A part of it (Range: a download resumed, a video's player)
		// and HEAD, as net/http serves them; a file never changes
		// under its address, so its ETag is all If-Range needs.
		http.ServeContent(w, r, "", time.Time{}, content)
	})
}

// noneMatch reports whether an If-None-Match header names etag, compared
// weakly as RFC 9110 asks (a proxy compressing a file may mark its ETag
// W/), or is *.
func noneMatch(header, etag string) bool {
	for v := range strings.SplitSeq(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}

// pacedReader moves its pace on by what is read of it: what ServeContent
// copies to the client has been written, but for the last buffer's worth.
type pacedReader struct {
	io.ReadSeeker
	pace pace
}

func (r *pacedReader) Read(p []byte) (int, error) {
	n, err := r.ReadSeeker.Read(p)
	r.pace.moved(n)
	return n, err
}
