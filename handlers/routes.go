package handlers

import "net/http"

// addRoutes is the whole HTTP surface in one place.
func addRoutes(mux *http.ServeMux, d Deps) {
	// One route for the page and the WebSocket: the tutorial's clients
	// connect to ws://host/ and browsers open http://host/.
	mux.Handle("GET /{$}", handleRoot(d.Log, d.Hub, d.Store, d.Assets))
	mux.Handle("GET /discussion/latest/{n}", handleLatest(d.Log, d.Store))
	mux.Handle("GET /discussion", handleHistory(d.Log, d.Store))
	mux.Handle("POST /discussion/{message}", handleSendPath(d.Log, d.Hub))
	mux.Handle("POST /discussion", handleSendJSON(d.Log, d.Hub))
	mux.Handle("GET /healthz", handleHealth(d.Log, d.Store))
	mux.Handle("GET /static/", d.Assets.Handler())
}
