package handlers

import (
	"context"
	"log/slog"
	"net/http"

	"nochat/chat"
	"nochat/db"
	"nochat/static"
	"nochat/views"
)

// pageSize is how many messages one history request returns unless it asks
// for another number: what the chat page renders on the server, and what it
// asks for each time it loads older messages.
const pageSize = 50

// room is what the chat page needs from the hub: its socket, and the
// limits the page checks before sending.
type room interface {
	ServeWSAs(w http.ResponseWriter, r *http.Request, id chat.Identity)
	Limits() chat.Limits
	GuestsMayRead() bool
}

type latestReader interface {
	Latest(ctx context.Context, n int) ([]db.Message, error)
}

// adminChecker tells a logged-in admin from everyone else, given who the
// request speaks for.
type adminChecker interface {
	AdminAs(r *http.Request, id chat.Identity) bool
}

// handleRoot serves GET /: a WebSocket upgrade goes to the hub, anything
// else gets the chat page with the newest messages already in its HTML. An
// admin's page offers to delete messages; admins is nil when there is no
// admin login. The socket and the page are the signed-in person's (who);
// with guests off, a guest's page is the way to sign in.
func handleRoot(log *slog.Logger, hub room, store latestReader, admins adminChecker, who identifier, assets *static.Assets) http.Handler {
	page := views.Page{
		Title:   "NoChat",
		CSSURL:  assets.URL("style.css"),
		JSURL:   assets.URL("app.js"),
		IconURL: assets.URL("favicon.svg"),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := who.Identity(r)
		if chat.IsUpgrade(r) {
			hub.ServeWSAs(w, r, id)
			return
		}
		if id.Guest() && !hub.GuestsMayRead() {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		// One more than a page, to know whether there are older messages:
		// a full page alone does not say.
		msgs, err := store.Latest(r.Context(), pageSize+1)
		if err != nil {
			log.Error("chat page", "err", err)
			http.Error(w, "history is unavailable right now; try again shortly", http.StatusInternalServerError)
			return
		}
		older := len(msgs) > pageSize
		if older {
			msgs = msgs[1:] // oldest first: the extra one is the oldest
		}
		limits := hub.Limits()
		p := page
		p.Admin = admins != nil && admins.AdminAs(r, id)
		p.User, p.UserID, p.SignIn = id.Name, id.UserID, admins != nil
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Vary", "Cookie") // an admin's page has more controls
		render(w, r, log, http.StatusOK, views.ChatPage(p, views.Chat{
			Messages:   msgs,
			HasOlder:   older,
			PageSize:   pageSize,
			MaxMessage: limits.MaxMessageLen,
			MaxName:    limits.MaxNameLen,
		}))
	})
}
