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
	ServeWS(w http.ResponseWriter, r *http.Request)
	Limits() chat.Limits
}

type latestReader interface {
	Latest(ctx context.Context, n int) ([]db.Message, error)
}

// adminChecker tells a logged-in admin from everyone else.
type adminChecker interface {
	Admin(r *http.Request) bool
}

// handleRoot serves GET /: a WebSocket upgrade goes to the hub, anything
// else gets the chat page with the newest messages already in its HTML. An
// admin's page offers to delete messages; admins is nil when there is no
// admin login.
func handleRoot(log *slog.Logger, hub room, store latestReader, admins adminChecker, assets *static.Assets) http.Handler {
	page := views.Page{
		Title:   "NoChat",
		CSSURL:  assets.URL("style.css"),
		JSURL:   assets.URL("app.js"),
		IconURL: assets.URL("favicon.svg"),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if chat.IsUpgrade(r) {
			hub.ServeWS(w, r)
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
		p.Admin = admins != nil && admins.Admin(r)
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
