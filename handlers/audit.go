package handlers

import (
	"context"
	"log/slog"
	"net/http"

	"nochat/chat"
	"nochat/db"
)

// Every admin action leaves a line in the audit list the dashboard shows:
// who (the admin's account, or the admin password of earlier versions),
// what, and when.

// auditLines is where the audit list is kept.
type auditLines interface {
	Audit(ctx context.Context, e db.AuditEntry) error
}

// auditFunc records one admin action of r: action is a fixed word from
// the code, target and detail say what it was about.
type auditFunc func(r *http.Request, action, target, detail string)

// Audit actions: the words the audit list shows.
const (
	auditRole         = "role"
	auditDeactivate   = "deactivate"
	auditReactivate   = "reactivate"
	auditBan          = "ban"
	auditUnban        = "unban"
	auditBanAddress   = "ban address"
	auditUnbanAddress = "lift address ban"
	auditResetLink    = "reset link"
	auditDelete       = "delete message"
	auditDeleteAll    = "delete messages"
	auditDisconnect   = "disconnect"
	auditClearErrors  = "clear errors"
	auditInvite       = "reset invite"
	auditJoinPolicy   = "join policy"
	auditArchive      = "archive room"
	auditUnarchive    = "unarchive room"
	auditRemoveMember = "remove member"
)

// newAudit records admin actions in lines, under the name of the admin
// who acts. A line that cannot be stored (a full disk) is logged instead:
// the action itself is done by then.
func newAudit(log *slog.Logger, a *Auth, lines auditLines) auditFunc {
	return func(r *http.Request, action, target, detail string) {
		// The request may be cancelled by now (the admin navigated away
		// while a ban deleted thousands of messages); the line is still
		// owed, under the admin's name.
		r = r.WithContext(context.WithoutCancel(r.Context()))
		id, name := a.actor(r)
		e := db.AuditEntry{
			At:      a.now(),
			ActorID: id,
			Actor:   name,
			Action:  action,
			Target:  chat.Cut(target, 200),
			Detail:  chat.Cut(detail, 300),
		}
		if err := lines.Audit(r.Context(), e); err != nil {
			log.Error("audit line not stored", "actor", name, "action", action, "target", e.Target, "detail", e.Detail, "err", err)
		}
	}
}

// actorPassword names the admin password's sessions in the audit list.
const actorPassword = "admin password"

// actor is who acts in r as an admin: their account, or the admin
// password (id 0).
func (a *Auth) actor(r *http.Request) (int64, string) {
	if acct, _, ok := a.Person(r); ok && acct.Role == db.RoleAdmin {
		return acct.ID, acct.Name
	}
	return 0, actorPassword
}
