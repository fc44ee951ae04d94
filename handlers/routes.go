package handlers

import (
	"net/http"

	"github.com/a-h/templ"

	"nochat/chat"
	"nochat/db"
	"nochat/static"
	"nochat/views"
)

// addRoutes is the whole HTTP surface in one place.
func addRoutes(mux *http.ServeMux, d Deps) {
	// One route for the page and the WebSocket: the tutorial's clients
	// connect to ws://host/ and browsers open http://host/.
	var admins adminChecker // stays nil, not a nil *Auth, without a login
	if d.Auth != nil {
		admins = d.Auth
	}
	// d.Auth may be nil: its Identity is then always a guest's. The page
	// and history answers hold messages until taken (answers.go).
	heavy := newAnswerSlots(d.TrustProxy)
	page := heavy.bound(d.Log, handleRoot(d.Log, d.Hub, d.Store, admins, d.Auth, d.Assets, maxUpload(d)))
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /r/{slug}", page)
	// A message's permalink: its room, around it.
	mux.Handle("GET /r/{slug}/{id}", page)
	mux.Handle("GET /discussion/latest/{n}", membersRead(d.Log, d.Hub, d.Auth, heavy.bound(d.Log, handleLatest(d.Log, d.Store))))
	mux.Handle("GET /discussion", membersRead(d.Log, d.Hub, d.Auth, heavy.bound(d.Log, handleHistory(d.Log, d.Store, db.DefaultRoom))))
	guard := newSendGuard(d) // one limit over every way to send
	mux.Handle("POST /discussion/{message}", guard.sends(handleSendPath(d.Log, d.Hub, d.Auth)))
	mux.Handle("POST /discussion", guard.sends(handleSendJSON(d.Log, d.Hub, d.Auth)))
	mux.Handle("GET /healthz", handleHealth(d.Log, d.Store))
	mux.Handle("GET /static/", d.Assets.Handler())
	// The installable app: public, like the assets (they hold no one's data).
	mux.Handle("GET /manifest.webmanifest", d.Assets.Manifest())
	mux.Handle("GET /sw.js", d.Assets.ServiceWorker())
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics.handler(d.Hub, d.Store))
	}
	if d.Auth != nil {
		addAdminRoutes(mux, d)
		addPeopleRoutes(mux, d)
		addRoomRoutes(mux, d, guard, heavy)
		addFileRoutes(mux, d, guard)
		if d.Push != nil {
			addPushRoutes(mux, d)
		}
		addWebhookRoutes(mux, d)
	}
}

// addPeopleRoutes is set-up and sign-in: open to anyone (that is their
// point), every POST refused when it comes from another site's page.
func addPeopleRoutes(mux *http.ServeMux, d Deps) {
	assets := cardAssetsOf(d.Assets)
	post := sameOrigin(d, placeSignIn, "cross-origin sign-in request refused")
	mux.Handle("GET /setup", handleSetupForm(d.Log, d.Auth, d.Hub, assets))
	mux.Handle("POST /setup", post(handleSetup(d.Log, d.Auth, d.Hub, d.Hub, d.TrustProxy, assets)))
	mux.Handle("GET /signin", handleSignInForm(d.Log, d.Auth, assets))
	mux.Handle("POST /signin", post(handleSignIn(d.Log, d.Auth, d.Hub, d.Hub, d.TrustProxy, assets)))
	// Joining: anyone, when the join policy lets them (see joinRefusal).
	mux.Handle("GET /join/{code}", handleJoinForm(d.Log, d.Auth, d.Hub, assets))
	mux.Handle("POST /join/{code}", post(handleJoin(d.Log, d.Auth, d.Hub, d.Hub, d.TrustProxy, assets)))
	mux.Handle("GET /join", handleJoinForm(d.Log, d.Auth, d.Hub, assets))
	mux.Handle("POST /join", post(handleJoin(d.Log, d.Auth, d.Hub, d.Hub, d.TrustProxy, assets)))
	mux.Handle("POST /signout", post(handleSignOut(d.Log, d.Auth, d.Hub, d.TrustProxy)))
	// A person's own account: signed-in only, and only their own sessions.
	mux.Handle("GET /account", handleAccount(d.Log, d.Auth, d.Store, d.Hub, assets))
	// A reload of a refused form's page, or its address kept, goes to the
	// account page.
	mux.Handle("GET /account/name", http.RedirectHandler("/account", http.StatusSeeOther))
	mux.Handle("GET /account/password", http.RedirectHandler("/account", http.StatusSeeOther))
	mux.Handle("POST /account/name", post(handleRename(d.Log, d.Auth, d.Store, d.Hub, d.TrustProxy, assets)))
	mux.Handle("POST /account/sessions/{id}/end", post(handleEndSession(d.Log, d.Auth, d.Store, d.Hub, d.TrustProxy)))
	mux.Handle("POST /account/sessions/end-others", post(handleEndOtherSessions(d.Log, d.Auth, d.Store, d.Hub)))
	mux.Handle("POST /account/password", post(handleChangePassword(d.Log, d.Auth, d.Store, d.Hub, d.TrustProxy, assets)))
	// A password-reset link an admin handed over: its holder only.
	mux.Handle("GET /reset/{token}", handleResetForm(d.Log, d.Auth, d.Store, assets))
	mux.Handle("POST /reset/{token}", post(handleReset(d.Log, d.Auth, d.Store, d.Hub, d.TrustProxy, assets)))
}

// addAdminRoutes is the admin dashboard: every route but the login behind a
// session, every POST refused when it comes from another site's page.
func addAdminRoutes(mux *http.ServeMux, d Deps) {
	assets := views.AdminAssets{
		CSS:   d.Assets.URL("admin.css"),
		Htmx:  d.Assets.URL("htmx-2.0.8.min.js"),
		Admin: d.Assets.URL("admin.js"),
		Icon:  d.Assets.URL("favicon.svg"),
	}
	post := sameOrigin(d, placeAdmin, "cross-origin admin request refused")
	admin := func(h http.Handler) http.Handler { return requireAdmin(d.Auth, assets, h) }

	audit := newAudit(d.Log, d.Auth, d.Store)
	// The whole page, with a password-reset link, a bot token or a
	// webhook's URL just made, or none.
	pageView := func(reset views.ResetLink, token views.BotToken, hook views.NewWebhook) func(*http.Request, views.Dashboard) (templ.Component, error) {
		return func(r *http.Request, data views.Dashboard) (templ.Component, error) {
			inv, err := inviteCard(r, d.Auth, d.TrustProxy)
			if err != nil {
				return nil, err
			}
			inv.GuestsPost = d.Hub.GuestsMayPost()
			people, err := peopleList(r, d.Auth, d.Store, data.Room)
			if err != nil {
				return nil, err
			}
			people.Reset, people.Done = reset, data.Done
			rooms, err := d.Store.Rooms(r.Context())
			if err != nil {
				return nil, err
			}
			bots, err := botsList(r, d.Store, rooms, token, d.Auth.now())
			if err != nil {
				return nil, err
			}
			hooks, err := webhooksList(r, d.Store, rooms, hook, d.Auth.now())
			return views.AdminPage(assets, data, inv, people, bots, hooks), err
		}
	}
	page := handleDashboard(d.Log, d.Hub, d.Store, d.serverInfo(), pageView(views.ResetLink{}, views.BotToken{}, views.NewWebhook{}), false)
	withReset := func(link views.ResetLink) http.Handler {
		return handleDashboard(d.Log, d.Hub, d.Store, d.serverInfo(), pageView(link, views.BotToken{}, views.NewWebhook{}), false)
	}
	withToken := func(token views.BotToken) http.Handler {
		return handleDashboard(d.Log, d.Hub, d.Store, d.serverInfo(), pageView(views.ResetLink{}, token, views.NewWebhook{}), false)
	}
	withHook := func(hook views.NewWebhook) http.Handler {
		return handleDashboard(d.Log, d.Hub, d.Store, d.serverInfo(), pageView(views.ResetLink{}, views.BotToken{}, hook), false)
	}
	liveView := func(_ *http.Request, data views.Dashboard) (templ.Component, error) {
		return views.AdminLive(data), nil
	}
	live := handleDashboard(d.Log, d.Hub, d.Store, d.serverInfo(), liveView, false)   // after an action
	refresh := handleDashboard(d.Log, d.Hub, d.Store, d.serverInfo(), liveView, true) // every second

	mux.Handle("GET /admin", admin(page))
	// Another method on it: 405, where the "/admin/" below would have
	// net/http send it on to /admin/ and a 404.
	mux.Handle("/admin", admin(onlyGet))
	mux.Handle("GET /admin/{$}", http.RedirectHandler("/admin", http.StatusMovedPermanently))
	mux.Handle("GET /admin/live", admin(refresh))
	mux.Handle("GET /admin/login", handleLoginForm(d.Log, d.Auth, assets))
	mux.Handle("POST /admin/login", post(handleLogin(d.Log, d.Auth, d.Hub, d.TrustProxy, assets)))
	mux.Handle("POST /admin/logout", post(handleLogout(d.Log, d.Auth, d.TrustProxy)))
	mux.Handle("POST /admin/sessions/{id}/disconnect", post(admin(handleDisconnect(d.Log, d.Hub, live, audit))))
	// On a cluster: a session of another node, which carries it out.
	mux.Handle("POST /admin/nodes/{node}/sessions/{id}/disconnect", post(admin(handleDisconnectOn(d.Log, d.Hub, live, audit))))
	// Addresses (ban.go): a guest's, from the list of connections; any
	// refused address lifted from the list of bans.
	mux.Handle("POST /admin/bans", post(admin(handleBanAddress(d.Log, d.Auth, d.Store, d.Hub, d.TrustProxy, live, audit))))
	mux.Handle("POST /admin/bans/lift", post(admin(handleUnbanAddress(d.Log, d.Auth, d.Store, live, audit))))
	mux.Handle("POST /admin/messages/{id}/delete", post(admin(handleDeleteMessage(d.Log, d.Hub, d.Store, live, audit))))
	mux.Handle("POST /admin/errors/clear", post(admin(handleClearErrors(d.Log, d.Hub, live, audit))))
	mux.Handle("POST /admin/invite/reset", post(admin(handleInviteReset(d.Log, d.Auth, audit))))
	mux.Handle("POST /admin/join-policy", post(admin(handleJoinPolicy(d.Log, d.Auth, audit))))
	// Managing people (manage.go).
	mux.Handle("POST /admin/people/{id}/role", post(admin(handleSetRole(d.Log, d.Auth, d.Store, d.Hub, audit))))
	mux.Handle("POST /admin/people/{id}/deactivate", post(admin(handleDeactivate(d.Log, d.Auth, d.Store, d.Hub, audit))))
	mux.Handle("POST /admin/people/{id}/reactivate", post(admin(handleReactivate(d.Log, d.Auth, d.Store, audit))))
	mux.Handle("POST /admin/people/{id}/ban", post(admin(handleBan(d.Log, d.Auth, d.Store, d.Hub, d.TrustProxy, audit))))
	mux.Handle("POST /admin/people/{id}/unban", post(admin(handleUnban(d.Log, d.Auth, d.Store, audit))))
	mux.Handle("POST /admin/people/{id}/delete-messages", post(admin(handleDeleteMessages(d.Log, d.Auth, d.Store, d.Hub, audit))))
	mux.Handle("POST /admin/people/{id}/reset-link", post(admin(handleResetLink(d.Log, d.Auth, d.Store, d.TrustProxy, audit, withReset))))
	// Rooms (adminrooms.go): an admin account only, never the room's messages.
	mux.Handle("POST /admin/rooms/{id}/archive", post(admin(handleArchiveRoom(d.Log, d.Auth, d.Hub, true, live, audit))))
	mux.Handle("POST /admin/rooms/{id}/unarchive", post(admin(handleArchiveRoom(d.Log, d.Auth, d.Hub, false, live, audit))))
	mux.Handle("POST /admin/rooms/{id}/members/{user}/remove", post(admin(handleRemoveMember(d.Log, d.Auth, d.Hub, d.Store, live, audit))))
	// Bots (adminbots.go).
	mux.Handle("POST /admin/bots", post(admin(handleCreateBot(d.Log, d.Auth, d.Store, d.Hub, d.Webhooks, audit, withToken))))
	mux.Handle("POST /admin/bots/{id}/rotate", post(admin(handleRotateBot(d.Log, d.Store, d.Hub, audit, withToken))))
	mux.Handle("POST /admin/bots/{id}/revoke", post(admin(handleRevokeBot(d.Log, d.Store, d.Hub, audit))))
	mux.Handle("POST /admin/bots/{id}/rooms", post(admin(handleBotRooms(d.Log, d.Store, d.Hub, audit))))
	mux.Handle("POST /admin/bots/{id}/avatar", post(admin(handleBotAvatar(d.Log, d.Store, audit))))
	// Incoming webhooks (adminhooks.go).
	mux.Handle("POST /admin/webhooks", post(admin(handleCreateWebhook(d.Log, d.Auth, d.Store, d.Hub, d.TrustProxy, audit, withHook))))
	mux.Handle("POST /admin/webhooks/{id}/delete", post(admin(handleDeleteWebhook(d.Log, d.Store, audit))))
	mux.Handle("POST /admin/bots/{id}/webhook", post(admin(handleBotWebhook(d.Log, d.Auth, d.Store, d.Webhooks, audit, withToken))))
	mux.Handle("/admin/", admin(http.NotFoundHandler()))
}

// sameOrigin refuses a request that another site's page sent (net/http's
// CrossOriginProtection), with a 403 and an entry in the error log at
// place.
func sameOrigin(d Deps, place, detail string) func(http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.Hub.RecordErrorAt(chat.KindBadOrigin, place, detail, requestSubject(r, d.TrustProxy))
		writeError(w, r, d.Log, http.StatusForbidden, errCrossOrigin)
	}))
	return cop.Handler
}

// cardAssetsOf is what the card pages (sign-in, set-up, joining, one's
// account, a missing room or message) load: the dashboard's style sheet
// and the icon.
func cardAssetsOf(a *static.Assets) views.AdminAssets {
	return views.AdminAssets{CSS: a.URL("admin.css"), Icon: a.URL("favicon.svg")}
}

// onlyGet refuses any method but GET and HEAD on an address that serves
// those only.
var onlyGet = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
})
