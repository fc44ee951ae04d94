package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"

	"nochat/chat"
	"nochat/db"
	"nochat/views"
)

// adminHub is what the dashboard needs from the chat room.
type adminHub interface {
	Snapshot(maxErrors int) chat.Snapshot
	Disconnect(id, reason string) (chat.Connection, error)
	// On a cluster: the other nodes, and a disconnect on one of them.
	Nodes(ctx context.Context) []chat.NodeView
	DisconnectOn(ctx context.Context, node, id, reason string) (chat.Connection, error)
	Delete(ctx context.Context, id int64) error
	Room(id int64) (db.Room, bool)
	ClearErrors(ctx context.Context) error
	RecordErrorAt(kind, place, detail, subject string)
}

// adminStore is what the dashboard reads from the database.
type adminStore interface {
	Count(ctx context.Context) (int64, error)
	Find(ctx context.Context, f db.Filter) ([]db.Message, error)
	AuditLog(ctx context.Context, n int) ([]db.AuditEntry, error)
	AddressBans(ctx context.Context, limit int) ([]db.AddressBan, int, error)
	Size() int64
	Pruned() int64
	roomLister
}

// listPage is how many messages one page of the dashboard's list holds.
const listPage = 20

// auditShown is how many of the newest audit lines the dashboard shows.
const auditShown = 50

// listRequest reads the list's filter and page bound from the URL, or says
// why they are not usable.
func listRequest(r *http.Request) (views.MessageList, error) {
	q := r.URL.Query()
	l := views.MessageList{Filter: strings.TrimSpace(q.Get("q"))}
	if utf8.RuneCountInString(l.Filter) > views.MaxFilter {
		return l, fmt.Errorf("the filter is longer than %d characters", views.MaxFilter)
	}
	for _, p := range []struct {
		name string
		to   *int64
	}{{"before", &l.Before}, {"after", &l.After}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 1 {
			return l, fmt.Errorf("%s must be a message id", p.name)
		}
		*p.to = id
	}
	if l.Before > 0 && l.After > 0 {
		return l, errors.New("ask for messages before an id or after one, not both")
	}
	return l, nil
}

// findPage fills the list with its page, newest first. It asks for one
// more than a page to learn whether there is more beyond it.
func findPage(ctx context.Context, store adminStore, l views.MessageList) (views.MessageList, error) {
	msgs, err := store.Find(ctx, db.Filter{Text: l.Filter, Before: l.Before, After: l.After, Limit: listPage + 1, OpenRooms: true})
	if err != nil {
		return l, err
	}
	more := len(msgs) > listPage
	if l.After > 0 {
		if more {
			msgs = msgs[:listPage] // the page just above After
		}
		l.Older, l.Newer = true, more
	} else {
		if more {
			msgs = msgs[1:] // the newest page below Before
		}
		l.Older, l.Newer = more, l.Before > 0
	}
	slices.Reverse(msgs)
	l.Items = msgs
	return l, nil
}

// dashboardData gathers what the dashboard shows. A refresh of a filtered
// or older page keeps the list the browser has instead of searching again:
// a filter that matches little scans the whole table (206 ms at 200,000
// messages on the dev machine, BenchmarkFindRare), far too much to repeat
// every second on a Pi; the newest page is one cheap index read.
func dashboardData(ctx context.Context, hub adminHub, store adminStore, info serverInfo, list views.MessageList, refresh bool) (views.Dashboard, error) {
	stored, err := store.Count(ctx)
	if err != nil {
		return views.Dashboard{}, err
	}
	if refresh && (list.Filter != "" || list.Before > 0 || list.After > 0) {
		list.Kept = true
	} else if list, err = findPage(ctx, store, list); err != nil {
		return views.Dashboard{}, err
	}
	audit, err := store.AuditLog(ctx, auditShown)
	if err != nil {
		return views.Dashboard{}, err
	}
	bans, banned, err := store.AddressBans(ctx, bansShown)
	if err != nil {
		return views.Dashboard{}, err
	}
	refused := make(map[string]views.Refused, len(bans))
	if info.auth != nil {
		for _, b := range bans {
			if r := info.auth.RefusalsOf(b.Address); r.N > 0 {
				refused[b.Address] = views.Refused{N: r.N, Last: r.Last}
			}
		}
	}
	// On a cluster, the other nodes answer while this one gathers its own
	// state: a node cut off waits for no answer once, not twice.
	var nodes []chat.NodeView
	var clusterView *views.ClusterView
	var asked sync.WaitGroup
	if info.cluster != nil {
		asked.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, clusterStatusWait)
			defer cancel()
			nodes = hub.Nodes(ctx)
		})
		asked.Go(func() { clusterView = info.clusterView(ctx) })
	}
	snap := hub.Snapshot(200)
	rooms, err := roomRows(ctx, store, snap)
	asked.Wait()
	if err != nil {
		return views.Dashboard{}, err
	}
	return views.Dashboard{
		Audit:      audit,
		Bans:       bans,
		Banned:     banned,
		Refused:    refused,
		Rooms:      rooms,
		Room:       snap,
		Stored:     stored,
		Pruned:     store.Pruned(),
		DBSize:     store.Size(),
		Memory:     residentMemory(),
		Goroutines: runtime.NumGoroutine(),
		Version:    info.version,
		Messages:   list,
		Cluster:    clusterView,
		Nodes:      nodes,
	}, nil
}

// serverInfo is what the dashboard shows of this server besides the chat:
// its version, and, on a cluster, the cluster as this node sees it.
type serverInfo struct {
	version    string
	cluster    func(context.Context) views.ClusterView // nil on a single node
	trustProxy bool                                    // where the admin is: X-Forwarded-For
	auth       *Auth                                   // how often each ban refused; nil: no accounts
}

func (d Deps) serverInfo() serverInfo {
	return serverInfo{version: d.Version, cluster: d.Cluster, trustProxy: d.TrustProxy, auth: d.Auth}
}

// clusterStatusWait bounds the dashboard's question to the cluster: a node
// cut off from the others gets no answer, and says so rather than hold
// the page.
const clusterStatusWait = 500 * time.Millisecond

func (i serverInfo) clusterView(ctx context.Context) *views.ClusterView {
	if i.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, clusterStatusWait)
	defer cancel()
	v := i.cluster(ctx)
	return &v
}

// residentMemory is the process's resident set from /proc on Linux, or what
// the Go runtime has taken from the system elsewhere.
func residentMemory() uint64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				return pages * uint64(os.Getpagesize())
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Sys
}

// handleDashboard answers with the dashboard as view renders it: the whole
// page, or the live part htmx refreshes. The URL's q, before and after
// choose the page of the message list; an action's URL carries them too, so
// the admin stays where they were. refresh marks the every-second refresh,
// which keeps a filtered or older page as the browser shows it.
func handleDashboard(log *slog.Logger, hub adminHub, store adminStore, info serverInfo, view func(*http.Request, views.Dashboard) (templ.Component, error), refresh bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := listRequest(r)
		if err != nil {
			writeError(w, r, log, http.StatusBadRequest, err)
			return
		}
		data, err := dashboardData(r.Context(), hub, store, info, list, refresh)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		data.Viewer = chat.AddressKey(chat.ClientIP(r, info.trustProxy))
		if r.URL.Path == "/admin" { // the page, which shows the people list
			data.Done = peopleDone(w, r)
		}
		page, err := view(r, data)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		render(w, r, log, http.StatusOK, page)
	})
}

// afterAction answers an admin action: the refreshed dashboard (live) for
// htmx, {"status":"OK"} for a script that asks for JSON (the chat page), a
// redirect back to the same page of the dashboard for a plain form post.
func afterAction(w http.ResponseWriter, r *http.Request, live http.Handler) {
	switch {
	case r.Header.Get("HX-Request") != "":
		live.ServeHTTP(w, r)
	case strings.Contains(r.Header.Get("Accept"), "application/json"):
		encode(w, http.StatusOK, map[string]string{"status": "OK"})
	default:
		back := "/admin"
		if l, err := listRequest(r); err == nil {
			back = l.URL()
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
	}
}

func handleDisconnect(log *slog.Logger, hub adminHub, live http.Handler, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := hub.Disconnect(r.PathValue("id"), "disconnected by an admin")
		if err != nil {
			writeError(w, r, log, http.StatusNotFound, errors.New("no such session: it may have left already"))
			return
		}
		audit(r, auditDisconnect, sessionTarget(c), "")
		afterAction(w, r, live)
	})
}

// sessionTarget names a disconnected session in the audit log: its
// person, its id's start, its address.
func sessionTarget(c chat.Connection) string {
	target := c.User + " (" + sessionName(c.ID) + ")"
	if c.Remote != "" {
		target += " from " + c.Remote
	}
	return target
}

// sessionName is a session as the dashboard and the audit show it: its
// id's first 8 digits.
func sessionName(id string) string { return "session " + id[:min(8, len(id))] }

// disconnectOnWait bounds an admin's disconnect of a session on another
// node: long enough for a busy Pi to answer, short enough for the
// dashboard to say when none did.
const disconnectOnWait = 3 * time.Second

// handleDisconnectOn disconnects a session on another node of the
// cluster, which the dashboard lists under that node's name.
func handleDisconnectOn(log *slog.Logger, hub adminHub, live http.Handler, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node, id := r.PathValue("node"), r.PathValue("id")
		if len(node) > 64 || len(id) > 64 {
			writeError(w, r, log, http.StatusBadRequest, errors.New("a node's name and a session's id are at most 64 characters"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), disconnectOnWait)
		defer cancel()
		c, err := hub.DisconnectOn(ctx, node, id, "disconnected by an admin")
		switch {
		case errors.Is(err, chat.ErrNoSession):
			writeError(w, r, log, http.StatusNotFound, fmt.Errorf("no such session on %s: it may have left already", node))
			return
		case errors.Is(err, chat.ErrNoCluster):
			writeError(w, r, log, http.StatusNotFound, fmt.Errorf("no node %s: this server is not in a cluster", node))
			return
		case errors.Is(err, chat.ErrUnknownNode):
			writeError(w, r, log, http.StatusNotFound, fmt.Errorf("no node %s is heard in the cluster now: it may be down, or cut off from this one", node))
			return
		case errors.Is(err, chat.ErrNodeSilent):
			// The question went out: the node may have closed the
			// session and its answer come too late. The audit says so.
			detail := "asked; no answer within " + disconnectOnWait.String()
			if r.Context().Err() != nil {
				detail = "asked; the admin's request ended before an answer"
			}
			audit(r, auditDisconnect, sessionName(id)+" on "+node, detail)
			writeError(w, r, log, http.StatusServiceUnavailable, &chat.Refusal{Code: "unavailable", Text: fmt.Sprintf("node %s did not answer: it may be down or cut off from this one, or have closed the session without its answer arriving", node)})
			return
		case err != nil:
			writeError(w, r, log, http.StatusServiceUnavailable, fmt.Errorf("disconnect on %s: %w", node, err))
			return
		}
		audit(r, auditDisconnect, sessionTarget(c)+" on "+node, "")
		afterAction(w, r, live)
	})
}

// messageGetter reads one message, for the audit line of its deletion.
type messageGetter interface {
	Get(ctx context.Context, id int64) (db.Message, error)
}

func handleDeleteMessage(log *slog.Logger, hub adminHub, store messageGetter, live http.Handler, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			writeError(w, r, log, http.StatusBadRequest, errors.New("id must be a message id"))
			return
		}
		// The audit line quotes what the dashboard shows, an open room's
		// message; of a private or direct room's, which an admin may
		// delete without reading, every admin reads only that it was one.
		detail := ""
		if m, err := store.Get(r.Context(), id); err == nil {
			switch room, _ := hub.Room(m.Room); room.Kind {
			case db.KindOpen:
				detail = m.User + ": " + chat.Cut(m.Message, 120)
			case db.KindDirect:
				detail = "in a direct conversation"
			default:
				detail = "in a private room"
			}
		}
		switch err := hub.Delete(r.Context(), id); {
		case errors.Is(err, db.ErrNotFound):
			writeError(w, r, log, http.StatusNotFound, errors.New("no such message: it may be deleted already"))
			return
		case err != nil:
			writeError(w, r, log, sendStatus(err), err)
			return
		}
		audit(r, auditDelete, "message #"+strconv.FormatInt(id, 10), detail)
		afterAction(w, r, live)
	})
}

func handleClearErrors(log *slog.Logger, hub adminHub, live http.Handler, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hub.ClearErrors(r.Context()); err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		audit(r, auditClearErrors, "the recent errors", "")
		afterAction(w, r, live)
	})
}

func handleLoginForm(log *slog.Logger, a *Auth, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Admin(r) {
			http.Redirect(w, r, "/admin", http.StatusSeeOther)
			return
		}
		if !a.hasPassword() {
			// Admins are accounts (or are about to be, through the set-up
			// link): no password opens /admin.
			http.Redirect(w, r, "/signin?next=/admin", http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		render(w, r, log, http.StatusOK, views.LoginPage(assets, ""))
	})
}

// handleLogin checks the password. Attempts are limited per client address
// (five, then one every 12 s) and, since addresses are cheap to rotate,
// across all addresses by the login gate (see gateFree).
func handleLogin(log *slog.Logger, a *Auth, hub adminHub, trustProxy bool, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		tooMany := func(wait time.Duration) {
			hub.RecordErrorAt(chat.KindRateLimited, placeLogin, "too many admin login attempts", requestSubject(r, trustProxy))
			render(w, r, log, http.StatusTooManyRequests, views.LoginPage(assets, tooManyAttempts(w, wait)))
		}
		if !a.tries.AllowAt(chat.ClientIP(r, trustProxy), a.now()) {
			tooMany(tryEvery)
			return
		}
		// The form is read before the gate is taken, so a slow body holds
		// no one else's turn; a form that cannot be read brought no
		// password, so no guess is counted (a body cut off by the edge's
		// deadline must not hold the real admin back at the gate).
		if !readForm(w, r, hub, trustProxy, placeLogin, func(r *http.Request, status int, text string) {
			render(w, r, log, status, views.LoginPage(assets, text))
		}) {
			return
		}
		password := r.PostFormValue("password")
		if wait := a.gate.try(a.now()); wait > 0 {
			tooMany(wait)
			return
		}
		ok := a.check(r.Context(), password)
		a.gate.done(ok)
		if !ok {
			hub.RecordErrorAt(chat.KindBadInput, placeLogin, "wrong admin password", requestSubject(r, trustProxy))
			render(w, r, log, http.StatusUnauthorized, views.LoginPage(assets, "That password is not right."))
			return
		}
		a.startSession(w, r, trustProxy)
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
	})
}

// handleLogout ends the request's session, if it has a live one; anyone
// may call it, and without a session it only clears the cookie.
func handleLogout(log *slog.Logger, a *Auth, trustProxy bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.endSession(w, r, trustProxy); err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	})
}
