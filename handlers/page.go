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

// pageSize is how much history the chat page renders on the server.
const pageSize = 50

type wsServer interface {
	ServeWS(w http.ResponseWriter, r *http.Request)
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
func handleRoot(log *slog.Logger, hub wsServer, store latestReader, admins adminChecker, assets *static.Assets) http.Handler {
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
		msgs, err := store.Latest(r.Context(), pageSize)
		if err != nil {
			log.Error("chat page", "err", err)
			http.Error(w, "history is unavailable right now; try again shortly", http.StatusInternalServerError)
			return
		}
		p := page
		p.Admin = admins != nil && admins.Admin(r)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Vary", "Cookie") // an admin's page has more controls
		render(w, r, log, http.StatusOK, views.ChatPage(p, msgs))
	})
}
