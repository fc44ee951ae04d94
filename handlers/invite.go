package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"nochat/chat"
	"nochat/db"
	"nochat/views"
)

// Joining: people make their own member accounts, through the invite link
// the admin hands out (/join/CODE), or at /join when sign-up is open. The
// admin chooses which (the join policy) on the dashboard, and can reset
// the link, which ends the old one at once.
//
// The invite code is stored as it is, not hashed like the set-up token:
// the dashboard shows the link every time it is opened, and the code opens
// no more than a new member account, which whoever reads the database (and
// with it every message) could not gain by it.

const (
	// settingInvite holds the invite link's code: tokenChars characters
	// of base64url, 256 random bits.
	settingInvite = "invite_code"
	// settingJoin holds the join policy.
	settingJoin = "join_policy"

	// placeJoin files joining's refusals in the error log.
	placeJoin = "join"
)

// Join policies: who may make an account.
const (
	JoinInvite = "invite" // holders of the invite link (the default)
	JoinOpen   = "open"   // anyone, at /join or through the link
	JoinClosed = "closed" // nobody; the admin's accounts stay as they are
)

// validJoin reports whether p is a join policy.
func validJoin(p string) bool { return p == JoinInvite || p == JoinOpen || p == JoinClosed }

// JoinPolicy is who may make an account now; JoinInvite until the admin
// chooses.
func (a *Auth) JoinPolicy(ctx context.Context) (string, error) {
	p, err := a.store.Setting(ctx, settingJoin)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return JoinInvite, nil
	case err != nil:
		return "", err
	case !validJoin(p):
		return JoinClosed, nil // a value this version does not know opens nothing
	}
	return p, nil
}

// InviteCode returns the invite link's code, making the first one when
// there is none yet (two dashboards opened at once show the same one).
func (a *Auth) InviteCode(ctx context.Context) (string, error) {
	code, err := a.store.SharedSettingOr(ctx, settingInvite, newToken())
	if err != nil {
		return "", fmt.Errorf("invite code: %w", err)
	}
	return code, nil
}

// ResetInvite makes a new invite code in place of the old one, which stops
// working at once, and returns it.
func (a *Auth) ResetInvite(ctx context.Context) (string, error) {
	code := newToken()
	if err := a.store.SetSharedSetting(ctx, settingInvite, code); err != nil {
		return "", fmt.Errorf("invite code: %w", err)
	}
	return code, nil
}

// inviteValid reports whether code is the invite link's.
func (a *Auth) inviteValid(ctx context.Context, code string) bool {
	if !wellFormedToken(code) {
		return false
	}
	stored, err := a.store.Setting(ctx, settingInvite)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(code)) == 1
}

// inviteCard is the dashboard's invite card: the link as the admin reached
// the dashboard (its host, checked by the Host guard, and its scheme), its
// QR code, and the join policy.
func inviteCard(r *http.Request, a *Auth, trustProxy bool) (views.Invite, error) {
	code, err := a.InviteCode(r.Context())
	if err != nil {
		return views.Invite{}, err
	}
	policy, err := a.JoinPolicy(r.Context())
	if err != nil {
		return views.Invite{}, err
	}
	scheme := "http"
	if secureRequest(r, trustProxy) {
		scheme = "https"
	}
	link := scheme + "://" + r.Host + "/join/" + code
	qr, err := qrcode.New(link, qrcode.Medium)
	if err != nil {
		return views.Invite{}, fmt.Errorf("invite QR code: %w", err)
	}
	bits := qr.Bitmap() // with its quiet zone
	return views.Invite{Link: link, Policy: policy, QRSize: len(bits), QRPath: qrPath(bits)}, nil
}

// qrPath draws a QR code's dark modules as one SVG path, a rectangle for
// each run of them in a row.
func qrPath(bits [][]bool) string {
	var b strings.Builder
	for y, row := range bits {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			n := 1
			for x+n < len(row) && row[x+n] {
				n++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, n, n)
			x += n
		}
	}
	return b.String()
}

// handleInviteReset serves POST /admin/invite/reset, for admins: a new
// invite link; the old one opens nothing from now on.
func handleInviteReset(log *slog.Logger, a *Auth, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.ResetInvite(r.Context()); err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		audit(r, auditInvite, "the invite link", "the old link no longer works")
		log.Info("the invite link is reset: the old one no longer works")
		http.Redirect(w, r, "/admin#invite", http.StatusSeeOther)
	})
}

// handleJoinPolicy serves POST /admin/join-policy, for admins: form field
// policy, one of invite, open and closed.
func handleJoinPolicy(log *slog.Logger, a *Auth, audit auditFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		p := r.PostFormValue("policy")
		if !validJoin(p) {
			writeError(w, r, log, http.StatusBadRequest, errors.New("policy must be invite, open or closed"))
			return
		}
		before, err := a.JoinPolicy(r.Context())
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		if err := a.store.SetSharedSetting(r.Context(), settingJoin, p); err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		if before != p {
			audit(r, auditJoinPolicy, "who may join", before+" → "+p)
		}
		log.Info("who may join is changed", "policy", p)
		http.Redirect(w, r, "/admin#invite", http.StatusSeeOther)
	})
}

// joinRefusal says why r may not join now, as a status and a page's
// words, or 0 when it may: with the invite link's code, unless joining is
// closed; at /join (no code) only when sign-up is open.
func (a *Auth) joinRefusal(r *http.Request, code string) (int, views.JoinHelp, error) {
	policy, err := a.JoinPolicy(r.Context())
	switch {
	case err != nil:
		return http.StatusInternalServerError, views.JoinHelp{}, err
	case policy == JoinClosed:
		return http.StatusForbidden, views.JoinHelp{Title: "Joining is closed", Text: "This chat takes no new members right now. If you were invited, ask the person who invited you."}, nil
	case code == "" && policy != JoinOpen:
		return http.StatusForbidden, views.JoinHelp{Title: "Joining needs an invite", Text: "This chat takes new members by invitation: ask one of its admins for the invite link."}, nil
	case code != "" && !a.inviteValid(r.Context(), code):
		return http.StatusNotFound, views.JoinHelp{Title: "This invite link does not work", Text: "It may be mistyped, or it was replaced by a new one. Ask the person who invited you for the current link."}, nil
	}
	return 0, views.JoinHelp{}, nil
}

// joinForm is the join page's form for code ("" at /join).
func joinForm(names accountNamer, code, name, problem string) views.Join {
	action := "/join"
	if code != "" {
		action += "/" + code
	}
	return views.Join{Action: action, NewAccount: newAccountForm(names, name, problem)}
}

// handleJoinForm serves GET /join/{code} and GET /join, to anyone: the
// form when joining is open to them (see joinRefusal), else a page saying
// why not. A signed-in person goes to the chat.
func handleJoinForm(log *slog.Logger, a *Auth, names accountNamer, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer") // the code is in the URL
		code := r.PathValue("code")
		status, help, err := a.joinRefusal(r, code)
		switch {
		case err != nil:
			writeError(w, r, log, status, err)
			return
		case status != 0:
			render(w, r, log, status, views.JoinHelpPage(assets, help))
			return
		}
		if _, _, ok := a.Person(r); ok {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		render(w, r, log, http.StatusOK, views.JoinPage(assets, joinForm(names, code, "", "")))
	})
}

// handleJoin serves POST /join/{code} and POST /join: form fields name
// and password. When joinRefusal lets r join, it makes a member account
// and signs it in. Joins count against the sign-in limit per address, as
// each costs a password hash and a row.
func handleJoin(log *slog.Logger, a *Auth, names accountNamer, hub adminHub, trustProxy bool, assets views.AdminAssets) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		code := r.PathValue("code")
		if !readForm(w, r, hub, trustProxy, placeSignIn, func(r *http.Request, status int, text string) {
			render(w, r, log, status, views.JoinPage(assets, joinForm(names, code, "", text)))
		}) {
			return
		}
		status, help, err := a.joinRefusal(r, code)
		switch {
		case err != nil:
			writeError(w, r, log, status, err)
			return
		case status != 0:
			hub.RecordErrorAt(chat.KindBadInput, placeJoin, "join refused: "+help.Title, requestSubject(r, trustProxy))
			render(w, r, log, status, views.JoinHelpPage(assets, help))
			return
		}
		name, password := r.PostFormValue("name"), r.PostFormValue("password")
		refuse := func(status int, problem string) {
			render(w, r, log, status, views.JoinPage(assets, joinForm(names, code, chat.Cut(name, 4*names.Limits().MaxNameLen), problem)))
		}
		if !a.tries.AllowAt(chat.ClientIP(r, trustProxy), a.now()) {
			hub.RecordErrorAt(chat.KindRateLimited, placeJoin, "too many joins", requestSubject(r, trustProxy))
			refuse(http.StatusTooManyRequests, tooManyAttempts(w, tryEvery))
			return
		}
		display, key, problem := checkNewAccount(names, name, password)
		if problem != "" {
			refuse(http.StatusBadRequest, problem)
			return
		}
		// A taken name is refused before the password is hashed: a Pi
		// need not spend a hash on it. The insert below still decides.
		switch _, err := a.store.AccountByNameKey(r.Context(), key); {
		case err == nil:
			refuse(http.StatusConflict, nameTaken)
			return
		case !errors.Is(err, db.ErrNotFound):
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		hash, err := hashPassword(password)
		if err != nil {
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		acct, err := a.store.CreateAccount(r.Context(), db.Account{Name: display, NameKey: key, PasswordHash: hash, Role: db.RoleMember, Created: a.now()})
		switch {
		case errors.Is(err, db.ErrNameTaken):
			refuse(http.StatusConflict, nameTaken)
			return
		case err != nil:
			writeError(w, r, log, http.StatusInternalServerError, err)
			return
		}
		log.Info("a member joined", "name", acct.Name, "id", acct.ID, "invited", code != "")
		if err := a.startPersonSession(w, r, trustProxy, acct.ID); err != nil {
			log.Error("signing in a new member", "err", err)
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}
