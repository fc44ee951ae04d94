// Package handlers is NoChat's HTTP surface: the chat page, the WebSocket
// endpoint, the tutorial's REST routes, health and static files. It holds no
// state of its own; what it needs comes in through New.
package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/a-h/templ"

	"nochat/chat"
	"nochat/db"
	"nochat/outhook"
	"nochat/static"
	"nochat/views"
)

// Deps is what the handlers need.
type Deps struct {
	Log    *slog.Logger
	Store  *db.Store
	Hub    *chat.Hub
	Assets *static.Assets

	// Auth guards /admin; without it there is no admin dashboard.
	Auth *Auth
	// Metrics serves /metrics; without it there is none.
	Metrics *Metrics
	// Version is shown on the dashboard.
	Version string
	// Cluster, on a node of a cluster, is the cluster as this node sees
	// it, for the dashboard; nil on a single node.
	Cluster func(context.Context) views.ClusterView

	// TrustProxy takes client addresses from X-Forwarded-For.
	TrustProxy bool
	// AllowOrigins are other sites' pages that may use the API (CORS on
	// the read-only routes, sends from their pages); "*" for any.
	AllowOrigins []string
	// SendRate and SendBurst limit REST sends per client address, per
	// second; SendRate 0 or less turns the limit off.
	SendRate  float64
	SendBurst int
	// Hostname is the machine's host name and AllowHosts more names NoChat
	// answers to ("*" for any); IP literals and localhost always are. See
	// Hosts.
	Hostname   string
	AllowHosts []string
	// BodyTimeout is how long a request body may take to arrive once its
	// headers are in; 0 means 10 s (defaultBodyTimeout). UploadTimeout is
	// the same for an uploaded file, which has a second more for each
	// 32 KiB that came (paceBytes), and for a file's download, a second
	// more for each 32 KiB sent; 0 means 5 minutes (uploadTimeout).
	// Tests shorten them.
	BodyTimeout   time.Duration
	UploadTimeout time.Duration

	// MaxUpload is the most bytes one uploaded file may have; 0 means
	// DefaultMaxUpload. UploadQuota is the most bytes of files one account
	// may have stored; 0 means DefaultUploadQuota, less than 0 no quota.
	MaxUpload   int64
	UploadQuota int64
	// Push is Web Push (push.Sender); without it there are no /push
	// routes.
	Push PushService

	// Webhooks checks a bot's outgoing webhook URL before it is stored
	// (the SSRF rules and -webhook-allow); nil refuses every URL.
	Webhooks *outhook.Guard
}

// New returns the whole HTTP surface as one handler.
func New(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	edge := checkHost(d, NewHosts(d.Hostname, d.AllowHosts), crossOrigin(d.AllowOrigins, limitBodies(d, refuseBanned(d, bearerAuth(d, mux, apiErrors(mux))))))
	return recoverPanics(d.Log, d.Hub, d.TrustProxy, mux, securityHeaders(edge))
}

// maxBodyBytes bounds a request body: a chat message is at most a few KiB.
const maxBodyBytes = 64 << 10

func encode(w http.ResponseWriter, status int, v any) {
	jsonHeader(w.Header())
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// jsonHeader marks an answer as JSON that no cache keeps: most are one
// person's (their rooms, their history), told apart by a cookie that a
// shared cache does not key on. A route that means its answer to be kept
// says so before.
func jsonHeader(h http.Header) {
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
}

type errorBody struct {
	Error string `json:"error"`
}

// errClusterUnavailable is what a person is told of a write (a sign-in, a
// new account) the cluster could not confirm.
var errClusterUnavailable = &chat.Refusal{Code: "unavailable", Text: "this chat runs on several servers, and too few of them answer to confirm this now: try again in a moment"}

// writeError answers with {"error": "..."}. Server-side failures are logged
// once here and shown to the user as a plain message, without internals.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, err error) {
	if errors.Is(err, db.ErrUnavailable) {
		status, err = http.StatusServiceUnavailable, errClusterUnavailable
	}
	msg := err.Error()
	if status >= 500 {
		log.Error("request failed", "method", r.Method, "path", loggedPath(r), "status", status, "err", err)
		msg = http.StatusText(status)
		var refusal *chat.Refusal
		if errors.As(err, &refusal) {
			msg = refusal.Text
		}
	}
	encode(w, status, errorBody{Error: msg})
}

// render writes a templ component as a whole page with the given status, or
// a 500 if it fails half-way: the page is built in memory first.
func render(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		log.Error("render page", "path", loggedPath(r), "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// securityHeaders sets the headers every response carries. The policy allows
// scripts and styles only from this server (no inline script) and WebSocket
// connections back to it.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		next.ServeHTTP(w, r)
	})
}

// apiErrors makes the router's own answers on the REST routes (404 for no
// such route, 405 with Allow for a wrong method) JSON like every other API
// error, instead of the router's plain text.
func apiErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RequestURI == "*" {
			// The router answers "GET *" with a bare 400 and no reason.
			w.Header().Set("Connection", "close")
			http.Error(w, "the request target * is only for OPTIONS", http.StatusBadRequest)
			return
		}
		// Only REST paths, and only then a second route lookup.
		if isREST(r) {
			if _, pattern := mux.Handler(r); pattern == "" {
				w = &jsonStatusWriter{ResponseWriter: w}
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// isREST reports whether r is for the REST routes (the tutorial's and the
// rooms'), whose every answer, a refusal too, is JSON.
func isREST(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/discussion") || p == "/rooms" || strings.HasPrefix(p, "/rooms/") || strings.HasPrefix(p, "/files/")
}

// jsonStatusWriter replaces a plain-text error body with {"error": ...}.
type jsonStatusWriter struct {
	http.ResponseWriter
	replaced bool
}

func (w *jsonStatusWriter) WriteHeader(status int) {
	if status < 400 {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.replaced = true
	msg := "no such route"
	if status == http.StatusMethodNotAllowed {
		msg = "method not allowed: use " + w.Header().Get("Allow")
	}
	w.Header().Del("Content-Length")
	encode(w.ResponseWriter, status, errorBody{Error: msg})
}

func (w *jsonStatusWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil // the router's plain text, already answered as JSON
	}
	return w.ResponseWriter.Write(b)
}

// recoverPanics turns a panic in a handler into a logged 500 instead of a
// dead connection. http.ErrAbortHandler is the server's own signal and is
// passed on.
func recoverPanics(log *slog.Logger, errs errorRecorder, trustProxy bool, mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic", "method", r.Method, "path", loggedPath(r), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				// The route's pattern is a fixed text from the code (the log's
				// key must be), asked of the mux: the request it set it on
				// is a copy of this one when a body or a bot's token came.
				_, place := mux.Handler(r)
				if place == "" {
					place = placeHTTP
				}
				errs.RecordErrorAt(chat.KindPanic, place, fmt.Sprint(v), requestSubject(r, trustProxy))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type errorRecorder interface {
	RecordErrorAt(kind, place, detail, subject string)
}

// Places in the recent-errors log for what the HTTP side refuses or
// recovers from (chat.Hub.RecordErrorAt); fixed texts, never from a request.
const (
	placeHTTP     = "HTTP request"    // before a route is chosen
	placeHost     = "HTTP host check" // checkHost
	placeBody     = "HTTP request body"
	placeLogin    = "admin login"
	placeAdmin    = "admin" // the dashboard's actions
	placeRESTSend = "REST send"
)

// requestSubject names a request in the error log: method, path, address.
func requestSubject(r *http.Request, trustProxy bool) string {
	return r.Method + " " + chat.Cut(loggedPath(r), 80) + " from " + chat.ClientIP(r, trustProxy)
}

// loggedPath is r's path as the log and the dashboard's errors show it:
// without the key in an invite link (/join/{code}), a password reset link
// (/reset/{token}) or a webhook's address (/hooks/{id}/{secret}), which
// whoever reads them could use.
func loggedPath(r *http.Request) string {
	p := r.URL.Path
	for _, prefix := range []string{"/join/", "/reset/"} {
		if strings.HasPrefix(p, prefix) {
			return prefix + "…"
		}
	}
	if rest, ok := strings.CutPrefix(p, "/hooks/"); ok {
		if id, _, secret := strings.Cut(rest, "/"); secret {
			return "/hooks/" + id + "/…"
		}
	}
	return p
}

// sender is what the send routes need from the hub.
type sender interface {
	SendAs(ctx context.Context, id chat.Identity, user, text, key string) (db.Stored, error)
}

// sendStatus maps a send's error to an HTTP status.
func sendStatus(err error) int {
	var refusal *chat.Refusal
	switch {
	case errors.Is(err, chat.ErrShutdown), errors.Is(err, chat.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, db.ErrNotReplicated):
		return http.StatusForbidden // a cluster's, of what it does not share yet
	case errors.Is(err, chat.ErrStore), errors.Is(err, chat.ErrRoomStore):
		return http.StatusServiceUnavailable // the disk is full or failing: try again later
	case errors.Is(err, chat.ErrUnconfirmed):
		return http.StatusServiceUnavailable // stored or about to be: retry with the same key
	case errors.As(err, &refusal) && refusal.Code == chat.ErrSignInRequired.Code:
		return http.StatusUnauthorized
	case errors.As(err, &refusal) && (refusal.Code == chat.ErrNoRoom.Code || refusal.Code == "not_found"):
		return http.StatusNotFound // a room or person not there, or not to be seen
	case errors.As(err, &refusal) && (refusal.Code == "forbidden" || refusal.Code == chat.ErrNotShared.Code || refusal.Code == "too_late" || refusal.Code == chat.ErrArchived.Code):
		return http.StatusForbidden
	case errors.As(err, &refusal) && refusal.Code == "name_taken":
		return http.StatusConflict
	case errors.As(err, &refusal):
		return http.StatusBadRequest
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
