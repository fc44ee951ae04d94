package handlers

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// Pictures and files (issue 15, items 5 and 6), on the real server, a real
// SQLite file and real WebSocket clients.

// secretPlace is in the test photo's GPS IFD: it must never be served.
const secretPlace = "NoChatSecretPlace"

// photoWithGPS is a w×h JPEG, red on its left half and blue on its right,
// as a phone writes it: an APP1 Exif segment whose first IFD has an
// Orientation (o) and a pointer to a GPS IFD with a latitude and a map
// datum naming secretPlace.
func photoWithGPS(t *testing.T, w, h, o int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{220, 20, 20, 255}
			if x >= w/2 {
				c = color.RGBA{20, 20, 220, 255}
			}
			img.Set(x, y, c)
		}
	}
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	// TIFF, big-endian: header (8), IFD0 at 8 with 2 entries (2+24+4),
	// the GPS IFD at 38 with 3 entries (2+36+4), then its values.
	be := binary.BigEndian
	var tiff bytes.Buffer
	put16 := func(v uint16) { binary.Write(&tiff, be, v) }
	put32 := func(v uint32) { binary.Write(&tiff, be, v) }
	entry := func(tag, typ uint16, count, value uint32) { put16(tag); put16(typ); put32(count); put32(value) }
	tiff.WriteString("MM")
	put16(42)
	put32(8)
	put16(2)
	entry(0x0112, 3, 1, uint32(o)<<16) // Orientation: a SHORT, left-justified
	entry(0x8825, 4, 1, 38)            // GPSInfo IFD
	put32(0)
	const values = 38 + 2 + 3*12 + 4
	put16(3)
	entry(0x0001, 2, 2, 'N'<<24)                            // GPSLatitudeRef "N"
	entry(0x0002, 5, 3, values)                             // GPSLatitude: 3 rationals
	entry(0x0012, 2, uint32(len(secretPlace)+1), values+24) // GPSMapDatum
	put32(0)
	for _, v := range []uint32{51, 1, 30, 1, 2621, 100} {
		put32(v)
	}
	tiff.WriteString(secretPlace + "\x00")
	seg := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(plain.Bytes()[:2]) // SOI
	out.Write([]byte{0xFF, 0xE1})
	binary.Write(&out, be, uint16(len(seg)+2))
	out.Write(seg)
	out.Write(plain.Bytes()[2:])
	return out.Bytes()
}

// pngBomb is a PNG whose header claims w×h pixels, with one small IDAT
// chunk: a decoder that believed it would allocate w×h×4 bytes.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8 bits, RGBA
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// upload is POST /rooms/{slug}/files as session with the file (named
// name, declared as typ) and, if not empty, a message; header adds
// headers. It returns the status, the answer's headers and its body.
func upload(t *testing.T, srv *httptest.Server, session, slug, name, typ string, data []byte, message string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	fields := map[string]string{}
	if message != "" {
		fields["message"] = message
	}
	return uploadWith(t, srv, session, slug, name, typ, data, fields, header)
}

// uploadWith is upload with the form's other fields (message, reply_to).
func uploadWith(t *testing.T, srv *httptest.Server, session, slug, name, typ string, data []byte, fields, header map[string]string) (int, http.Header, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	if typ != "" {
		h.Set("Content-Type", typ)
	}
	part, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	mw.Close()
	req, err := http.NewRequest("POST", srv.URL+"/rooms/"+slug+"/files", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if session != "" {
		req.Header.Set("Cookie", personCookie+"="+session)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	transport := srv.Client().Transport.(*http.Transport)
	if body.Len() > 64<<10 {
		// A body the server may refuse unread is asked for first, as curl
		// does, so its write does not meet the reset of a closed
		// connection.
		req.Header.Set("Expect", "100-continue")
		transport = transport.Clone()
		transport.ExpectContinueTimeout = 10 * time.Second
	}
	resp, err := transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// get is GET path as session (none: a guest) with headers; it returns the
// status, headers and body.
func get(t *testing.T, srv *httptest.Server, path, session string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if session != "" {
		req.Header.Set("Cookie", personCookie+"="+session)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// uploadOK is upload that fails the test unless the file is stored; it
// returns the message.
func uploadOK(t *testing.T, srv *httptest.Server, session, slug, name, typ string, data []byte, message string, header map[string]string) db.Message {
	t.Helper()
	status, h, body := upload(t, srv, session, slug, name, typ, data, message, header)
	return uploaded(t, status, h, body)
}

func uploaded(t *testing.T, status int, _ http.Header, body string) db.Message {
	t.Helper()
	var m db.Message
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &m) != nil || m.File == nil {
		t.Fatalf("upload: %d %s, want 201 with the message and its file", status, body)
	}
	return m
}

// A phone photo goes up with its GPS position and sideways (EXIF
// orientation 6); what the room gets is upright, with a thumbnail, and
// carries no EXIF at all. Another person receives it live and downloads
// it with headers that cannot run it.
func TestUploadPicture(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	bobSocket := openSocket(t, srv, bob)
	frame(t, bobSocket, "hello")

	photo := photoWithGPS(t, 1200, 600, 6)
	if !bytes.Contains(photo, []byte(secretPlace)) || !bytes.Contains(photo, []byte("Exif\x00\x00")) {
		t.Fatal("the test photo carries no EXIF GPS")
	}
	status, _, body := upload(t, srv, ann, "lobby", "IMG_0042.jpg", "image/jpeg", photo, "the view from here", map[string]string{"Idempotency-Key": "up-1"})
	m := uploaded(t, status, nil, body)
	f := m.File
	if f.Name != "IMG_0042.jpg" || f.Type != "image/jpeg" || f.Width != 600 || f.Height != 1200 || f.Size <= 0 ||
		f.URL != db.FileURL(m.ID) || f.Thumbnail != db.FileURL(m.ID)+"/thumb" || m.Message != "the view from here" {
		t.Fatalf("uploaded message = %s, want the upright 600×1200 JPEG with its thumbnail and text", body)
	}

	// The same upload again (a retry) is the same message.
	status, header, again := upload(t, srv, ann, "lobby", "IMG_0042.jpg", "image/jpeg", photo, "the view from here", map[string]string{"Idempotency-Key": "up-1"})
	if m2 := uploaded(t, status, header, again); m2.ID != m.ID || m2.File == nil || *m2.File != *f || header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retried upload: %s, want message %d again, replayed", again, m.ID)
	}

	// A key that named a message without a file is not this upload's.
	code, _ := call(t, srv, "POST", "/rooms/lobby/messages", ann, `{"message": "same words"}`, map[string]string{"Idempotency-Key": "text-1"})
	if code != http.StatusCreated {
		t.Fatalf("text send: %d", code)
	}
	if status, _, body := upload(t, srv, ann, "lobby", "x.jpg", "image/jpeg", photo, "same words", map[string]string{"Idempotency-Key": "text-1"}); status != http.StatusUnprocessableEntity {
		t.Fatalf("upload under a text send's key: %d %s, want 422", status, body)
	}

	// Bob's socket gets the message, file and all, once.
	live := framesUntil(t, bobSocket, "the upload", func(f sockFrame) bool { _, ok := f.message(t); return ok })
	if got, _ := live[len(live)-1].message(t); got.ID != m.ID || got.File == nil || *got.File != *f {
		t.Fatalf("Bob's socket got %+v, want message %d with %+v", got, m.ID, f)
	}

	code, h, full := get(t, srv, f.URL, bob, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s as Bob: %d %s", f.URL, code, full)
	}
	for name, want := range map[string]string{
		"Content-Type":            "image/jpeg",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; sandbox",
		"Content-Disposition":     `inline; filename=IMG_0042.jpg`,
		"Cache-Control":           "private, max-age=31536000, immutable",
		"ETag":                    `"f` + itoa(m.ID) + `"`,
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if int64(len(full)) != f.Size {
		t.Errorf("served %d bytes, the message says %d", len(full), f.Size)
	}
	for _, leak := range []string{"Exif\x00\x00", secretPlace, "MM\x00\x2a"} {
		if bytes.Contains(full, []byte(leak)) {
			t.Errorf("the served picture still holds %q", leak)
		}
	}
	img, err := jpeg.Decode(bytes.NewReader(full))
	if err != nil {
		t.Fatalf("the served picture does not decode: %v", err)
	}
	// Upright: orientation 6 turns the photo a quarter clockwise, so its
	// red left half is now on top.
	if b := img.Bounds(); b.Dx() != 600 || b.Dy() != 1200 {
		t.Fatalf("served picture is %v, want 600×1200", b)
	}
	if r, _, bl, _ := img.At(300, 200).RGBA(); r < bl {
		t.Errorf("top of the served picture is not red: the orientation was not applied")
	}
	if r, _, bl, _ := img.At(300, 1000).RGBA(); r > bl {
		t.Errorf("bottom of the served picture is not blue")
	}

	code, h, thumb := get(t, srv, f.Thumbnail, bob, nil)
	if code != http.StatusOK || h.Get("Content-Type") != "image/jpeg" || h.Get("Content-Security-Policy") != "default-src 'none'; sandbox" {
		t.Fatalf("GET %s: %d %v", f.Thumbnail, code, h)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb)); err != nil || cfg.Width != 240 || cfg.Height != 480 {
		t.Fatalf("thumbnail: %+v, %v; want 240×480", cfg, err)
	}
	if bytes.Contains(thumb, []byte(secretPlace)) {
		t.Error("the thumbnail holds the GPS position")
	}
	if code, _, _ := get(t, srv, f.URL, bob, map[string]string{"If-None-Match": h.Get("ETag")}); code != http.StatusOK {
		t.Errorf("the picture with the thumbnail's ETag: %d, want 200", code)
	}
	if code, _, _ := get(t, srv, f.URL, bob, map[string]string{"If-None-Match": `"f` + itoa(m.ID) + `"`}); code != http.StatusNotModified {
		t.Errorf("the picture with its own ETag: %d, want 304", code)
	}
	// Compared weakly, as RFC 9110 asks: a proxy that compresses marks
	// the ETag W/, and a client may name several.
	for _, inm := range []string{`W/"f` + itoa(m.ID) + `"`, `"x", "f` + itoa(m.ID) + `"`, `*`} {
		if code, _, _ := get(t, srv, f.URL, bob, map[string]string{"If-None-Match": inm}); code != http.StatusNotModified {
			t.Errorf("the picture with If-None-Match %s: %d, want 304", inm, code)
		}
	}
	// A part of it, as a resumed download or a video's player asks; it
	// came whole, 200, with no word of ranges.
	code, h, part := get(t, srv, f.URL, bob, map[string]string{"Range": "bytes=10-19"})
	if code != http.StatusPartialContent || h.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(full)) || !bytes.Equal(part, full[10:20]) {
		t.Errorf("bytes 10-19 of the picture: %d %q, %d bytes; want 206 and those 10", code, h.Get("Content-Range"), len(part))
	}
	if code, h, _ := get(t, srv, f.URL, bob, nil); h.Get("Accept-Ranges") != "bytes" {
		t.Errorf("the picture: %d, Accept-Ranges %q, want bytes", code, h.Get("Accept-Ranges"))
	}
	if code, _, part := get(t, srv, f.URL, bob, map[string]string{"Range": "bytes=10-19", "If-Range": `"f0"`}); code != http.StatusOK || !bytes.Equal(part, full) {
		t.Errorf("a range If-Range another file: %d, %d bytes; want 200 and the whole", code, len(part))
	}

	// History carries the file as the message did.
	code, _, hist := get(t, srv, "/rooms/lobby/messages/"+itoa(m.ID), bob, nil)
	var again2 db.Message
	if code != http.StatusOK || json.Unmarshal(hist, &again2) != nil || again2.File == nil || *again2.File != *f {
		t.Fatalf("GET the message: %d %s, want its file %+v", code, hist, f)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Files that are not pictures are kept as they came and served as
// downloads; one that a browser would run as a page is served as bytes.
func TestUploadOtherFiles(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	// The tutorial's clients get a message's text; for a file sent
	// without one, its name.
	tutorial, _, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tutorial.Close()
	echoed := func(t *testing.T, want string) {
		t.Helper()
		tutorial.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, b, err := tutorial.ReadMessage(); err != nil || string(b) != want {
			t.Fatalf("echo-protocol client read %q, %v; want %q", b, err, want)
		}
	}
	for _, tt := range []struct {
		name, declared, content, served, disposition string
	}{
		{"notes.txt", "text/plain", "remember the milk\n", "text/plain; charset=utf-8", `attachment; filename=notes.txt`},
		{"page.html", "text/html", "<!DOCTYPE html><script>alert(1)</script>", "application/octet-stream", `attachment; filename=page.html`},
		{"Grüße März.pdf", "application/pdf", "%PDF-1.4 not really", "application/pdf", `attachment; filename*=utf-8''Gr%C3%BC%C3%9Fe%20M%C3%A4rz.pdf`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := uploadOK(t, srv, ann, "lobby", tt.name, tt.declared, []byte(tt.content), "", nil)
			echoed(t, tt.name)
			if m.File.Thumbnail != "" || m.File.Width != 0 || m.File.Type != tt.served || m.File.Size != int64(len(tt.content)) {
				t.Fatalf("file = %+v, want %s without a thumbnail", m.File, tt.served)
			}
			code, h, b := get(t, srv, m.File.URL, ann, nil)
			if code != http.StatusOK || string(b) != tt.content || h.Get("Content-Type") != tt.served || h.Get("Content-Disposition") != tt.disposition ||
				h.Get("Content-Security-Policy") != "default-src 'none'; sandbox" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("GET %s: %d %v %q", m.File.URL, code, h, b)
			}
			if code, _, _ := get(t, srv, m.File.URL+"/thumb", ann, nil); code != http.StatusNotFound {
				t.Fatalf("the thumbnail of a file that is not a picture: %d, want 404", code)
			}
		})
	}
}

// Every refusal has a status and a clear {"error"}, and stores nothing.
func TestUploadRefusals(t *testing.T) {
	photo := photoWithGPS(t, 64, 32, 1)
	srv, _, _, _ := testServer{
		accounts: map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember},
		deps: func(d *Deps) {
			d.MaxUpload = 20_000
			d.UploadQuota = int64(3 * len(photo) / 2) // one photo, not two
		},
	}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)

	for _, tt := range []struct {
		name     string
		session  string
		file     string
		typ      string
		data     []byte
		header   map[string]string
		status   int
		contains string
	}{
		{"a decompression bomb", ann, "bomb.png", "image/png", pngBomb(100000, 100000), nil, http.StatusRequestEntityTooLarge, "100000×100000 pixels"},
		{"a bomb a side too long", ann, "strip.png", "image/png", pngBomb(20000, 10), nil, http.StatusRequestEntityTooLarge, "20000×10 pixels"},
		{"a lying type", ann, "cat.png", "image/png", []byte("#!/bin/sh\nrm -rf /\n"), nil, http.StatusUnsupportedMediaType, "it says image/png, and its content is text/plain"},
		{"a broken picture", ann, "half.jpg", "image/jpeg", photo[:len(photo)/3], nil, http.StatusUnprocessableEntity, "could not be read"},
		{"over -max-upload, read", ann, "big.bin", "", bytes.Repeat([]byte{1}, 20_001), nil, http.StatusRequestEntityTooLarge, "file too large: the most is 20 kB"},
		{"over -max-upload, declared", ann, "huge.bin", "", bytes.Repeat([]byte{1}, 200_000), nil, http.StatusRequestEntityTooLarge, "file too large: the most is 20 kB"},
		{"a guest", "", "photo.jpg", "image/jpeg", photo, nil, http.StatusUnauthorized, "sign in to send files"},
		{"another site's page", ann, "photo.jpg", "image/jpeg", photo, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden, "origin"},
		{"no such room", ann, "photo.jpg", "image/jpeg", photo, nil, http.StatusNotFound, "no such room"},
		{"an empty file", ann, "empty.txt", "text/plain", nil, nil, http.StatusBadRequest, "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			slug := "lobby"
			if tt.name == "no such room" {
				slug = "nowhere"
			}
			status, _, body := upload(t, srv, tt.session, slug, tt.file, tt.typ, tt.data, "", tt.header)
			var e struct{ Error string }
			if status != tt.status || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tt.contains) {
				t.Fatalf("%d %s, want %d with an error saying %q", status, body, tt.status, tt.contains)
			}
		})
	}

	t.Run("over the quota", func(t *testing.T) {
		uploadOK(t, srv, ann, "lobby", "one.jpg", "image/jpeg", photo, "", nil)
		status, _, body := upload(t, srv, ann, "lobby", "two.jpg", "image/jpeg", photo, "", nil)
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "over your upload quota") {
			t.Fatalf("second photo: %d %s, want 413 over the quota", status, body)
		}
		uploadOK(t, srv, bob, "lobby", "bobs.jpg", "image/jpeg", photo, "", nil) // Bob's quota is his own
	})

	// Nothing refused was stored: the lobby holds the two photos only.
	code, _, hist := get(t, srv, "/rooms/lobby/messages", ann, nil)
	var msgs []db.Message
	if code != http.StatusOK || json.Unmarshal(hist, &msgs) != nil || len(msgs) != 2 {
		t.Fatalf("lobby history: %d %s, want the two photos only", code, hist)
	}
}

// A private room's files are its members' alone: to anyone else (another
// account, a guest) the file and its thumbnail do not exist, exactly as a
// file that was never there; nor may they upload to it.
func TestPrivateRoomFile(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Cid": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	cid := signInAs(t, srv, "Cid", "password of Cid", firefox)
	secret := createRoom(t, srv, ann, `{"name": "Secret plans", "kind": "private", "members": ["Bob"]}`, http.StatusCreated)
	m := uploadOK(t, srv, ann, secret.Slug, "plan.jpg", "image/jpeg", photoWithGPS(t, 640, 480, 1), "", nil)

	for _, path := range []string{m.File.URL, m.File.Thumbnail} {
		if code, h, b := get(t, srv, path, bob, nil); code != http.StatusOK || h.Get("Content-Type") != "image/jpeg" || len(b) == 0 {
			t.Errorf("Bob (a member) GET %s: %d %v", path, code, h)
		}
		for who, session := range map[string]string{"Cid": cid, "a guest": ""} {
			code, h, b := get(t, srv, path, session, nil)
			if code != http.StatusNotFound || !strings.Contains(string(b), `"error":"no such file"`) || h.Get("Content-Disposition") != "" {
				t.Errorf("%s GET %s: %d %.80q, want 404 no such file", who, path, code, b)
			}
		}
	}
	if code, _, b := get(t, srv, "/files/999999", bob, nil); code != http.StatusNotFound || !strings.Contains(string(b), "no such file") {
		t.Errorf("a file that never was: %d %s, want the same 404", code, b)
	}
	if status, _, body := upload(t, srv, cid, secret.Slug, "mine.jpg", "image/jpeg", photoWithGPS(t, 8, 8, 1), "", nil); status != http.StatusNotFound {
		t.Errorf("Cid's upload to the private room: %d %s, want 404", status, body)
	}

	// Deleted with its message: gone for the members too.
	if code, body := call(t, srv, "DELETE", "/rooms/"+secret.Slug+"/messages/"+itoa(m.ID), ann, "", nil); code != http.StatusNoContent {
		t.Fatalf("deleting the message: %d %s", code, body)
	}
	if code, _, _ := get(t, srv, m.File.URL, bob, nil); code != http.StatusNotFound {
		t.Errorf("the file after its message was deleted: %d, want 404", code)
	}
}

// A PNG keeps its transparency; a GIF is its first frame, as a PNG.
func TestUploadKeepsTransparency(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	img := image.NewNRGBA(image.Rect(0, 0, 1000, 500))
	img.Set(10, 10, color.NRGBA{255, 0, 0, 255}) // the rest transparent
	var b bytes.Buffer
	png.Encode(&b, img)
	m := uploadOK(t, srv, ann, "lobby", "logo.png", "image/png", b.Bytes(), "", nil)
	if m.File.Type != "image/png" || m.File.Width != 1000 || m.File.Height != 500 {
		t.Fatalf("file = %+v, want a 1000×500 PNG", m.File)
	}
	for _, path := range []string{m.File.URL, m.File.Thumbnail} {
		_, _, got := get(t, srv, path, ann, nil)
		p, err := png.Decode(bytes.NewReader(got))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, _, _, a := p.At(p.Bounds().Dx()-1, p.Bounds().Dy()-1).RGBA(); a != 0 {
			t.Errorf("%s: a transparent corner has alpha %d", path, a)
		}
	}
}

// What a browser sends as a file's name is kept as people will read it:
// no path, no control characters, nothing that turns the text around.
func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		"holiday.jpg":               "holiday.jpg",
		`C:\Users\ann\holiday.jpg`:  "holiday.jpg",
		"../../etc/passwd":          "passwd",
		"invoice\u202efdp.exe":      "invoicefdp.exe", // shown as "invoiceexe.pdf"
		"a\u2066b\u2069\u200fc.txt": "abc.txt",
		"Grüße \"März\".pdf":        "Grüße März.pdf",
		"tab\there\x00.txt":         "tabhere.txt",
		"\u202e":                    "file",
		"..":                        "file",
		"👩‍👩‍👧 family.png":          "👩‍👩‍👧 family.png", // the joiners of an emoji stay
	} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A picture with chroma sampled 4:1:1, as some cameras write, is stored
// with its thumbnail; it once panicked the decoder's caller, which then
// never gave back the one decoding slot, and every upload after it waited
// for good.
func TestUpload411Picture(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	for _, name := range []string{"411-orientation3.jpg", "411-wide.jpg"} {
		data, err := os.ReadFile(filepath.Join("..", "media", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		m := uploadOK(t, srv, ann, "lobby", name, "image/jpeg", data, "", nil)
		if m.File.Type != "image/jpeg" || m.File.Thumbnail == "" || m.File.Width == 0 {
			t.Fatalf("%s: file = %+v, want a JPEG with a thumbnail", name, m.File)
		}
	}
	m := uploadOK(t, srv, ann, "lobby", "notes.txt", "text/plain", []byte("after the pictures\n"), "", nil)
	if m.File.Size == 0 {
		t.Fatalf("file = %+v", m.File)
	}
}

// An upload refused before its body is read is answered at once when the
// client asked first (Expect: 100-continue, as curl does for a file over
// 1 MB): its body is never asked for. The server said "100 Continue" to
// every refused upload, took the body in, and for a large one closed the
// connection under the client's writes, which could see a reset instead
// of the refusal; a slow one got no answer until its body was in.
func TestARefusedUploadIsNotAskedForItsBody(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	for _, tc := range []struct{ who, room, cookie, want string }{
		{"a guest", "lobby", "", "HTTP/1.1 401 "},
		{"Ann, to a room there is not", "no-such-room", personCookie + "=" + ann, "HTTP/1.1 404 "},
	} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		head := "POST /rooms/" + tc.room + "/files HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() +
			"\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n"
		if tc.cookie != "" {
			head += "Cookie: " + tc.cookie + "\r\n"
		}
		if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, tc.want) {
			t.Errorf("an upload of %s, its body not sent: the server answered %q (%v), want %q at once", tc.who, line, err, tc.want)
		}
	}
}

// One person's uploads, however slowly their bodies come, hold at most
// two of the server's four upload slots: a third is refused at once, and
// someone else's upload goes through meanwhile. (Four slow uploads of
// one member's held every slot, and everyone's uploads waited.)
//
// Each slow upload asks first (Expect: 100-continue), so the test knows
// where the server is with it: it asks for the body once the upload is
// counted and has its slot, and answers one it refuses without asking.
// (Sent without asking, a refused slow upload and a counted one looked
// alike, and a quick upload counted while the slow ones were still on
// their way could have them refused, failing this test now and then.)
func TestOnePersonsSlowUploadsLeaveRoomForOthers(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	transport := srv.Client().Transport.(*http.Transport).Clone()
	transport.ExpectContinueTimeout = time.Minute // no body until asked
	t.Cleanup(transport.CloseIdleConnections)
	type answer struct {
		code int
		body string
	}
	for i := range accountUploads + 2 {
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.CloseWithError(errors.New("the test is over")) })
		req, err := http.NewRequest("POST", srv.URL+"/rooms/lobby/files", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		req.Header.Set("Cookie", personCookie+"="+ann)
		req.Header.Set("Expect", "100-continue")
		answered := make(chan answer, 1)
		go func() {
			if resp, err := transport.RoundTrip(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				answered <- answer{resp.StatusCode, string(b)}
			}
		}()
		// The first bytes of the body, then nothing: the write returns
		// once the server has asked for the body and the client sent them.
		asked := make(chan error, 1)
		go func() {
			_, err := pw.Write([]byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.txt\"\r\n\r\nslow"))
			asked <- err
		}()
		counted := i < accountUploads
		timeout := time.After(30 * time.Second)
	wait:
		for {
			select {
			case err := <-asked:
				if err != nil {
					asked = nil // the client gave up the body: its answer came
					continue
				}
				if !counted {
					t.Fatalf("the server asked for the body of Ann's slow upload %d, past the %d she may have under way", i+1, accountUploads)
				}
				break wait
			case a := <-answered:
				if counted {
					t.Fatalf("Ann's slow upload %d answered %d %s, want its body asked for", i+1, a.code, a.body)
				}
				if a.code != http.StatusTooManyRequests || !strings.Contains(a.body, "uploads under way") {
					t.Fatalf("Ann's slow upload %d answered %d %s, want 429", i+1, a.code, a.body)
				}
				break wait
			case <-timeout:
				t.Fatalf("the server neither asked for Ann's slow upload %d nor answered it", i+1)
			}
		}
	}
	if code, _, body := upload(t, srv, ann, "lobby", "third.txt", "text/plain", []byte("a third\n"), "", nil); code != http.StatusTooManyRequests || !strings.Contains(body, "uploads under way") {
		t.Fatalf("Ann's upload past her two slow ones: %d %s, want 429", code, body)
	}
	if m := uploadOK(t, srv, bob, "lobby", "notes.txt", "text/plain", []byte("Bob's\n"), "", nil); m.File.Size == 0 {
		t.Fatalf("Bob's upload beside Ann's slow ones: %+v", m.File)
	}
}

// The dashboard's message list names a file sent without text, where it
// showed an empty row (and its delete dialog quoted nothing).
func TestDashboardListsFilesByName(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember, "Ada": db.RoleAdmin}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	uploadOK(t, srv, ann, "lobby", "list.txt", "text/plain", []byte("milk\n"), "", nil)
	uploadOK(t, srv, ann, "lobby", "with words.txt", "text/plain", []byte("eggs\n"), "and a word", nil)
	code, _, body := get(t, srv, "/admin", ada, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /admin: %d", code)
	}
	for _, want := range []string{`<td class="detail">📎 file: list.txt</td>`, `<td class="detail">and a word</td>`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the dashboard's list has no %s", want)
		}
	}
}

// A file may answer a message, as a text does: its message carries the
// quote. One that names no message of the room, or no number, is refused
// with a reason and stores nothing.
func TestUploadAsAReply(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	question := sendTo(t, srv, bob, "lobby", "which bike did you get?")
	garden := createRoom(t, srv, bob, `{"name": "Garden", "kind": "open"}`, http.StatusCreated)
	elsewhere := sendTo(t, srv, bob, garden.Slug, "in the garden")

	status, h, body := uploadWith(t, srv, ann, "lobby", "bike.txt", "text/plain", []byte("a blue one"), map[string]string{"message": "this one", "reply_to": itoa(question)}, nil)
	m := uploaded(t, status, h, body)
	if m.ReplyTo == nil || m.ReplyTo.ID != question || m.ReplyTo.Message != "which bike did you get?" || m.Message != "this one" {
		t.Fatalf("the file's message = %+v, want it to quote Bob's question", m)
	}
	for reply, want := range map[string]int{
		"x":                                 http.StatusBadRequest,
		"-1":                                http.StatusBadRequest,
		"1" + strings.Repeat(" ", 31) + "x": http.StatusBadRequest, // not cut to a number at 32 bytes
		itoa(elsewhere):                     http.StatusBadRequest, // another room's message: as a text's reply_to
		"999999":                            http.StatusBadRequest,
	} {
		status, _, body := uploadWith(t, srv, ann, "lobby", "bike.txt", "text/plain", []byte("a blue one"), map[string]string{"reply_to": reply}, nil)
		if status != want || !strings.Contains(body, `"error"`) {
			t.Errorf("reply_to %q: %d %s, want %d with a reason", reply, status, body, want)
		}
	}
	var lobby []db.Message
	if code, _, b := get(t, srv, "/rooms/lobby/messages/latest/10", ann, nil); code != http.StatusOK || json.Unmarshal(b, &lobby) != nil || len(lobby) != 2 {
		t.Fatalf("the lobby after the refusals: %d, %d messages, want 2", code, len(lobby))
	}
}

// annUploadingWithin is a server whose uploads' bodies have timeout
// (before what they earn as they come), and Ann's session on it.
func annUploadingWithin(t *testing.T, timeout time.Duration) (*httptest.Server, string) {
	t.Helper()
	srv, _, _, _ := testServer{
		accounts: map[string]string{"Ann": db.RoleMember},
		deps:     func(d *Deps) { d.UploadTimeout = timeout },
	}.start(t)
	return srv, signInAs(t, srv, "Ann", "password of Ann", firefox)
}

// An upload whose body stops half-way is answered 408 once the body's time
// is up, stores nothing, and gives its slots back: the same person's next
// upload goes through.
func TestUploadWhoseBodyStopsTimesOut(t *testing.T) {
	srv, ann := annUploadingWithin(t, 200*time.Millisecond)

	c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second)) // bounds the test, not the server
	part := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\r\nremember the"
	fmt.Fprintf(c, "POST /rooms/lobby/files HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nCookie: %s=%s\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n%s",
		srv.Listener.Addr(), srv.URL, personCookie, ann, part)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to an upload whose body stopped: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "the body did not arrive") {
		t.Fatalf("an upload whose body stopped: %d %s, want 408 saying the body did not arrive", resp.StatusCode, body)
	}

	for i := range 3 { // more than one person's uploads at once
		m := uploadOK(t, srv, ann, "lobby", "notes.txt", "text/plain", []byte("remember the milk\n"), "", nil)
		if m.File == nil || m.File.Size != 18 {
			t.Fatalf("upload %d after the stopped one: %+v", i+1, m)
		}
	}
	code, _, b := get(t, srv, "/rooms/lobby/messages", ann, nil)
	if code != http.StatusOK || strings.Count(string(b), `"notes.txt"`) != 3 {
		t.Fatalf("the room's history: %d %s, want the three whole uploads and nothing of the stopped one", code, b)
	}
}

// An upload that keeps coming over a slow link is never cut, however long
// it takes: each 32 KiB that arrives gives it a second more. (Its deadline
// was fixed, 5 minutes whatever the size, which -max-upload may make too
// short; made from the size, it let a trickle hold a slot for hours.)
func TestASlowUploadThatKeepsComingGoesThrough(t *testing.T) {
	srv, ann := annUploadingWithin(t, 300*time.Millisecond)
	head := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--b--\r\n"
	const chunks = 6 // one every 250 ms: 1.25 s in all, four times the 300 ms
	data := bytes.Repeat([]byte("x"), paceBytes)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(head))
		for i := range chunks {
			if i > 0 {
				time.Sleep(250 * time.Millisecond)
			}
			if _, err := pw.Write(data); err != nil {
				return
			}
		}
		pw.Write([]byte(tail))
		pw.Close()
	}()
	req, err := http.NewRequest("POST", srv.URL+"/rooms/lobby/files", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(head) + chunks*len(data) + len(tail))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	req.Header.Set("Cookie", personCookie+"="+ann)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), fmt.Sprintf(`"size":%d`, chunks*len(data))) {
		t.Fatalf("an upload coming at 32 KiB every 250 ms for 1.25 s, with 300 ms allowed: %d %s, want 201 and the whole file", resp.StatusCode, body)
	}
}

// A download that keeps going over a slow link is never cut either: each
// 32 KiB sent gives it a second more than its base (here 300 ms). The
// reader's small receive buffer keeps the kernel from taking the whole
// file at once, so the server's writes wait on the reader.
func TestASlowDownloadThatKeepsGoingGoesThrough(t *testing.T) {
	srv, ann := annUploadingWithin(t, 300*time.Millisecond)
	data := make([]byte, DefaultMaxUpload)
	for i := range data {
		data[i] = byte(i * 7)
	}
	m := uploadOK(t, srv, ann, "lobby", "big.bin", "application/octet-stream", data, "", nil)

	c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(32 << 10)
	c.SetDeadline(time.Now().Add(60 * time.Second)) // bounds the test, not the server
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nCookie: %s=%s\r\n\r\n", m.File.URL, srv.Listener.Addr(), personCookie, ann)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the file: %v %v", resp, err)
	}
	start := time.Now()
	var got bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
		time.Sleep(15 * time.Millisecond) // about 4 MB/s at most
	}
	took := time.Since(start)
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("a %d-byte download read over %v with 300 ms allowed and a second more a 32 KiB: got %d bytes, want the whole file", len(data), took.Round(time.Millisecond), got.Len())
	}
	if took < time.Second {
		t.Fatalf("the download took %v: too quick to have needed its pace (the reader's buffer did not hold it back)", took)
	}
}
