package db

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
)

// Accounts, sessions, rooms and bots on a cluster.
//
// On one node the store writes accounts, sessions and rooms itself. On a
// cluster (a ReplicatedWriter over the store) an account, a sign-in, a
// sign-out, a new password, an admin's change to a person (a rename, a
// role, a deactivation, a ban), a room, a change to one, who is in it,
// and the settings every node shares (the invite link, the join policy)
// made on one node must be there on every node, under the
// same ids: so those writes are entries of the replicated log, commands
// beside the drafts. Every node applies the log's commands in order, each
// in a transaction of its own with the log position, and a row a command
// creates takes the command's sequence as its id, as a draft's message
// does. The node that published a command waits until it has applied it,
// and returns what applying it gave: a refusal (a name taken, a used
// set-up link) is reached alike on every node, since every node applies
// the same commands in the same order, so it is the command's answer, not
// an error to try again.
//
// Bots and incoming webhooks, and their tokens, avatars and outgoing
// webhooks, are commands too; files travel with their message's draft.

// command is one write of those, as the log carries it. Its
// JSON begins with "op", which no draft's does (isCommand).
type command struct {
	Op        string   `json:"op"`
	Account   *Account `json:",omitempty"` // opFirstAdmin, opAccount, opBot, opWebhook
	Session   *Session `json:",omitempty"` // opSession
	TokenHash []byte   `json:",omitempty"` // opSession, opSignOut, opReset, opBot, opBotToken; opWebhook: its secret's
	AccountID int64    `json:",omitempty"` // the account a command changes
	ID        int64    `json:",omitempty"` // opEndSession: the session's; opRead: the message read up to
	Keep      int64    `json:",omitempty"` // opEndSessions, opPassword: the session that stays
	Kind      string   `json:",omitempty"` // opEndKind: a session's; opRole: the role; opNotify: the level
	Hash      string   `json:",omitempty"` // opPassword, opReset: the new password's
	Max       int      `json:",omitempty"` // opSession: live sessions an owner keeps
	At        int64    `json:",omitempty"` // opReset, opDeactivate, opBan: when, in Unix milliseconds
	Addresses []string `json:",omitempty"` // opBan: the addresses to refuse; opBanAddress, opUnbanAddress: the one
	Spare     []string `json:",omitempty"` // opBan: the addresses never to refuse
	Key       string   `json:",omitempty"` // opSetting, opSettingOr; opBotWebhook: the secret
	Value     string   `json:",omitempty"` // opSetting, opSettingOr; a bot's prefix, avatar or webhook URL; opWebhook: who made it
	Room      *Room    `json:",omitempty"` // opRoom, opRoomUpdate
	Members   []int64  `json:",omitempty"` // opRoom: the people in the new room; opBot: its rooms
	RoomID    int64    `json:",omitempty"` // opMember, opUnmember, opNotify (AccountID: whom)
	// Push is opPushSave's subscription (Max: how many its account keeps).
	Push *PushSubscription `json:",omitempty"`
	Edit *RoomEdit         `json:",omitempty"` // opRoomEdit
}

// The commands.
const (
	opFirstAdmin  = "first_admin"  // CreateFirstAdmin
	opAccount     = "account"      // CreateAccount
	opSession     = "session"      // CreateSession
	opSignOut     = "sign_out"     // DeleteSession
	opEndSession  = "end_session"  // DeleteSessionOf
	opEndSessions = "end_sessions" // DeleteSessionsOf
	opEndKind     = "end_kind"     // DeleteSessions
	opPassword    = "password"     // ChangePassword
	opReset       = "reset"        // ResetPassword
	opSetting     = "setting"      // SetSharedSetting
	opSettingOr   = "setting_or"   // SharedSettingOr
	opRename      = "rename"       // RenameAccount
	opRole        = "role"         // SetRole
	opDeactivate  = "deactivate"   // Deactivate
	opReactivate  = "reactivate"   // Reactivate
	opBan         = "ban"          // Ban
	opUnban       = "unban"        // Unban
	// opBanAddress refuses Addresses[0] with no account to ban (Value:
	// the guest's name); opUnbanAddress frees Addresses[0].
	opBanAddress   = "ban_address"   // BanAddress
	opUnbanAddress = "unban_address" // UnbanAddress
	opRoom         = "room"          // CreateRoom
	opRoomUpdate   = "room_update"   // UpdateRoom
	opRoomEdit     = "room_edit"     // EditRoom
	opMember       = "member"        // AddMember
	opUnmember     = "unmember"      // RemoveMember
	opNotify       = "notify"        // SetNotify
	opRead         = "read"          // MarkRead, as the other nodes follow it
	// opDeleteMessagesOf was an admin's deletion of everything a person
	// wrote, beside a ban, in one command; made no more (a ban's
	// deletions are events of the log now), applied for logs that hold it.
	opDeleteMessagesOf = "delete_messages_of"
	opBot              = "bot"            // CreateBot
	opBotToken         = "bot_token"      // SetBotToken
	opBotAvatar        = "bot_avatar"     // SetBotAvatar
	opBotWebhook       = "bot_webhook"    // SetBotWebhook
	opWebhook          = "webhook"        // CreateWebhook
	opWebhookDelete    = "webhook_delete" // DeleteWebhook
	opPushSave         = "push_save"      // SavePushSubscription
	opPushDelete       = "push_delete"    // DeletePushSubscription (Value: the endpoint)
	opPushDrop         = "push_drop"      // DropPushSubscription (Value: the endpoint)
)

// knownOps are the commands this version applies.
var knownOps = map[string]bool{
	opFirstAdmin:       true,
	opAccount:          true,
	opSession:          true,
	opSignOut:          true,
	opEndSession:       true,
	opEndSessions:      true,
	opEndKind:          true,
	opPassword:         true,
	opReset:            true,
	opSetting:          true,
	opSettingOr:        true,
	opRename:           true,
	opRole:             true,
	opDeactivate:       true,
	opReactivate:       true,
	opBan:              true,
	opUnban:            true,
	opBanAddress:       true,
	opUnbanAddress:     true,
	opRoom:             true,
	opRoomUpdate:       true,
	opRoomEdit:         true,
	opMember:           true,
	opUnmember:         true,
	opNotify:           true,
	opRead:             true,
	opDeleteMessagesOf: true,
	opBot:              true,
	opBotToken:         true,
	opBotAvatar:        true,
	opBotWebhook:       true,
	opWebhook:          true,
	opWebhookDelete:    true,
	opPushSave:         true,
	opPushDelete:       true,
	opPushDrop:         true,
}

// commandResult is what applying a command gave.
type commandResult struct {
	Account Account        // the account it created, or the one it changed, as it was
	Made    bool           // Account is one it created
	Ended   []int64        // the sign-in sessions it ended
	Count   int64          // the sessions DeleteSessions ended
	Value   string         // the setting SharedSettingOr found or stored
	Change  *AccountChange // what open pages show of an account that changed
	Room    Room           // the room CreateRoom made, or found
	// RoomChange is what open pages show of a room that changed, or
	// whose people did; nil if nothing changed.
	RoomChange *RoomChange
	// Deleted is the messages it deleted, by room, oldest first.
	Deleted map[int64][]int64
	Webhook Webhook       // the incoming webhook it made or deleted
	Read    *ReadMark     // a read marker it moved
	Notify  *NotifyChange // a level it set
	Err     error         // its refusal, reached alike on every node
}

// commandLog runs a command through a replicated log: publishes it, and
// returns what applying it gave on this node once it is applied here.
type commandLog interface {
	run(ctx context.Context, c command) (commandResult, error)
	// catchUp waits, a short while at most, until this node has applied
	// every write the log holds now.
	catchUp(ctx context.Context)
	// health is ErrLaterVersion while this node waits for an upgrade.
	health() error
	// shareRead has the other nodes move a read marker too, soon.
	shareRead(room, user, id int64)
}

// commandPrefix is how every command's JSON begins, and no draft's: a
// Draft's first field is User.
var commandPrefix = []byte(`{"op":`)

// isCommand reports whether a log entry is a command rather than a draft.
func isCommand(data []byte) bool { return bytes.HasPrefix(data, commandPrefix) }

// command runs an account, session or room write: on a cluster, as a command of
// its log; on one node, as a transaction of its own. Its error is the
// write's failure or its refusal (ErrNameTaken, ErrNotFound, …).
func (s *Store) command(ctx context.Context, c command) (commandResult, error) {
	if s.shared != nil {
		r, err := s.shared.run(ctx, c)
		if err == nil {
			err = r.Err
		}
		return r, err
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return commandResult{}, err
	}
	defer tx.Rollback()
	r, err := applyCommand(ctx, tx, c, 0)
	if err != nil {
		return r, err
	}
	return r, s.commitCommand(tx, c, r)
}

// commitCommand commits tx, in which c was applied with result r: the
// messages it removed leave the count, and a name it gave an account moves
// NamesVersion.
func (s *Store) commitCommand(tx *sql.Tx, c command, r commandResult) error {
	err := s.count.change(func() (int64, error) { return -r.removed(), tx.Commit() })
	if err == nil && r.Err == nil && namesAccount[c.Op] {
		s.names.Add(1)
	}
	return err
}

// NamesVersion counts the commits that gave an account a name (a new
// account or bot, a rename), through this node or, on a cluster, another:
// a guest's socket, named when it opened, checks its name again when it
// has moved (a member may have taken the name since).
func (s *Store) NamesVersion() int64 { return s.names.Load() }

// namesAccount holds the commands that give an account a name.
var namesAccount = map[string]bool{opFirstAdmin: true, opAccount: true, opBot: true, opRename: true}

// removed is how many messages the command deleted.
func (r commandResult) removed() int64 {
	n := 0
	for _, ids := range r.Deleted {
		n += len(ids)
	}
	return int64(n)
}

// refused reports whether err is a command's refusal, which every node
// reaches alike from the same rows: one of the store's own refusals, or a
// constraint of the schema. Anything else (a full disk, a busy database)
// is this node's trouble, and the command is applied again.
func refused(err error) bool {
	var se *sqlite.Error
	return errors.Is(err, ErrNameTaken) || errors.Is(err, ErrSetupDone) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrLastAdmin) || errors.Is(err, ErrBanned) || errors.Is(err, ErrSlugTaken) ||
		errors.Is(err, ErrNotBot) || errors.Is(err, ErrTooManyWebhooks) || errors.Is(err, ErrAddressBanned) || (errors.As(err, &se) && se.Code()&0xff == sqliteConstraint)
}

// sqliteConstraint is SQLITE_CONSTRAINT, the primary code of every
// constraint's failure.
const sqliteConstraint = 19

// applyCommand applies c in tx. id is its sequence in the log, which a
// row it creates takes as its own id; 0 on a single node, where the row
// takes the next one.
func applyCommand(ctx context.Context, tx *sql.Tx, c command, id int64) (commandResult, error) {
	var (
		r   commandResult
		err error
	)
	switch c.Op {
	case opFirstAdmin, opAccount:
		if c.Account == nil {
			return r, fmt.Errorf("%w: %s without an account", errUnknownCommand, c.Op)
		}
		a := *c.Account
		a.ID = id
		if c.Op == opFirstAdmin {
			r.Account, err = firstAdmin(ctx, tx, a)
		} else {
			r.Account, err = insertAccount(ctx, tx, a)
		}
		r.Made = err == nil
	case opSession:
		if c.Session == nil {
			return r, fmt.Errorf("%w: %s without a session", errUnknownCommand, c.Op)
		}
		sess := *c.Session
		sess.ID = id
		err = createSession(ctx, tx, c.TokenHash, sess, c.Max)
	case opSignOut:
		r.Ended, err = column[int64](tx.QueryContext(ctx, "DELETE FROM sessions WHERE token_hash = ? RETURNING id", c.TokenHash))
	case opEndSession:
		r.Ended, err = column[int64](tx.QueryContext(ctx, "DELETE FROM sessions WHERE kind = ? AND account_id = ? AND id = ? RETURNING id", SessionAccount, c.AccountID, c.ID))
		if err == nil && len(r.Ended) == 0 {
			err = ErrNotFound
		}
	case opEndSessions:
		r.Ended, err = deleteSessionsOf(ctx, tx, c.AccountID, c.Keep)
	case opEndKind:
		var ids []int64
		ids, err = column[int64](tx.QueryContext(ctx, "DELETE FROM sessions WHERE kind = ? RETURNING id", c.Kind))
		r.Count = int64(len(ids))
		if c.Kind == SessionAccount {
			r.Ended = ids
		}
	case opPassword:
		r.Ended, err = changePassword(ctx, tx, c.AccountID, c.Hash, c.Keep)
	case opReset:
		r.Account, r.Ended, err = resetPassword(ctx, tx, c.TokenHash, c.Hash, time.UnixMilli(c.At))
	case opRename:
		if c.Account == nil {
			return r, fmt.Errorf("%w: %s without a name", errUnknownCommand, c.Op)
		}
		err = renameAccount(ctx, tx, c.AccountID, c.Account.Name, c.Account.NameKey)
		r.Change = &AccountChange{ID: c.AccountID, Name: c.Account.Name}
	case opRole:
		r.Account, err = setRole(ctx, tx, c.AccountID, c.Kind)
		r.Change = &AccountChange{ID: c.AccountID, Role: c.Kind}
	case opDeactivate:
		r.Account, r.Ended, err = deactivate(ctx, tx, c.AccountID, time.UnixMilli(c.At))
		r.Change = &AccountChange{ID: c.AccountID, Ended: true}
	case opReactivate:
		r.Account, err = reactivate(ctx, tx, c.AccountID)
	case opBan:
		change := &AccountChange{ID: c.AccountID, Ended: true, Ban: true}
		r.Account, r.Ended, change.Banned, err = ban(ctx, tx, c.AccountID, c.Addresses, c.Spare, time.UnixMilli(c.At))
		r.Change = change
	case opUnban:
		change := &AccountChange{ID: c.AccountID}
		r.Account, change.Unbanned, err = unban(ctx, tx, c.AccountID)
		r.Change = change
	case opBanAddress, opUnbanAddress:
		if len(c.Addresses) != 1 || c.Addresses[0] == "" {
			return r, fmt.Errorf("%w: %s without its address", errUnknownCommand, c.Op)
		}
		if c.Op == opBanAddress {
			r.Change, err = banAddress(ctx, tx, c.Addresses[0], c.Value, c.At)
		} else {
			r.Change, err = unbanAddress(ctx, tx, c.Addresses[0])
		}
	case opRoom:
		if c.Room == nil {
			return r, fmt.Errorf("%w: %s without a room", errUnknownCommand, c.Op)
		}
		r.Room, r.RoomChange, err = createRoom(ctx, tx, *c.Room, c.Members, id)
	case opRoomUpdate:
		if c.Room == nil {
			return r, fmt.Errorf("%w: %s without a room", errUnknownCommand, c.Op)
		}
		r.RoomChange, err = updateRoom(ctx, tx, *c.Room)
	case opRoomEdit:
		if c.Edit == nil {
			return r, fmt.Errorf("%w: %s without an edit", errUnknownCommand, c.Op)
		}
		r.RoomChange, err = editRoom(ctx, tx, *c.Edit)
	case opMember:
		var added bool
		if added, err = addMember(ctx, tx, c.RoomID, c.AccountID, c.At); added {
			r.RoomChange = &RoomChange{ID: c.RoomID, Joined: []int64{c.AccountID}}
		}
	case opUnmember:
		var removed bool
		if removed, err = removeMember(ctx, tx, c.RoomID, c.AccountID); removed {
			r.RoomChange = &RoomChange{ID: c.RoomID, Left: []int64{c.AccountID}}
		}
	case opBot:
		if c.Account == nil {
			return r, fmt.Errorf("%w: %s without an account", errUnknownCommand, c.Op)
		}
		a := *c.Account
		a.ID = id
		r.Account, err = createBot(ctx, tx, a, c.Members, c.TokenHash, c.Value)
		r.Made = err == nil
	case opBotToken:
		err = updatedOne(ctx, tx, "UPDATE bots SET token_hash = ?, prefix = ? WHERE account_id = ?", c.TokenHash, c.Value, c.AccountID)
	case opBotAvatar:
		err = updatedOne(ctx, tx, "UPDATE accounts SET avatar = ? WHERE id = ? AND role = 'bot'", c.Value, c.AccountID)
	case opBotWebhook:
		err = setBotWebhook(ctx, tx, c.AccountID, c.Value, c.Key, c.At)
	case opWebhook:
		if c.Account == nil {
			return r, fmt.Errorf("%w: %s without an account", errUnknownCommand, c.Op)
		}
		r.Webhook, err = createWebhook(ctx, tx, c.RoomID, *c.Account, c.TokenHash, c.Value, id)
		if err == nil {
			r.Account, r.Made = Account{ID: r.Webhook.AccountID}, true
		}
	case opWebhookDelete:
		r.Webhook, err = deleteWebhook(ctx, tx, c.ID)
	case opPushSave:
		if c.Push == nil {
			return r, fmt.Errorf("%w: no subscription", errUnknownCommand)
		}
		err = savePushSubscription(ctx, tx, *c.Push, c.Max)
	case opPushDelete:
		err = deletePushSubscription(ctx, tx, "DELETE FROM push_subscriptions WHERE account_id = ? AND endpoint = ?", c.AccountID, c.Value)
	case opPushDrop:
		err = deletePushSubscription(ctx, tx, "DELETE FROM push_subscriptions WHERE endpoint = ?", c.Value)
	case opDeleteMessagesOf:
		r.Deleted, err = deleteMessagesOf(ctx, tx, c.AccountID)
	case opRead:
		var moved bool
		if moved, err = markRead(ctx, tx, c.RoomID, c.AccountID, c.ID); moved {
			r.Read = &ReadMark{Room: c.RoomID, User: c.AccountID, ID: c.ID}
		}
	case opNotify:
		if err = setNotify(ctx, tx, c.RoomID, c.AccountID, c.Kind); err == nil {
			r.Notify = &NotifyChange{Room: c.RoomID, User: c.AccountID, Level: c.Kind}
		}
	case opSetting:
		_, err = tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, c.Key, c.Value)
	case opSettingOr:
		err = tx.QueryRowContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = value RETURNING value`, c.Key, c.Value).Scan(&r.Value)
	default:
		// A command of a later version, made through a node upgraded
		// before this one. Skipped, it would leave this node without
		// what it made for good; so this node applies nothing more until
		// it is upgraded too, and then goes on from here.
		return r, fmt.Errorf("%w (its command %q)", ErrLaterVersion, c.Op)
	}
	return r, err
}

// errUnknownCommand is an entry no version can apply as a command: one
// that is not JSON, or lacks what its op needs. Every node skips it alike.
var errUnknownCommand = errors.New("not a well-formed command")

// ErrLaterVersion is a command of the cluster's log that a later version
// of NoChat wrote, which this node cannot apply: it applies nothing more,
// refuses writes (ErrUnavailable) and answers its health check 503 until
// it runs that version too. A later version adds an op of its own for
// anything an earlier one would apply differently, never a field to an
// existing op.
var ErrLaterVersion = errors.New("the cluster's log holds a change made by a later version of NoChat: upgrade this node")

// applyCommandAt applies the log entry at seq, a command, to s in one
// transaction with the log's position: the command's changes, unless it
// was refused, and the position in any case. It returns an error only
// for a failure of this node's (the entry is to be applied again).
func (s *Store) applyCommandAt(ctx context.Context, data []byte, seq int64) (commandResult, error) {
	var c command
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return commandResult{}, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SAVEPOINT command"); err != nil {
		return commandResult{}, err
	}
	var r commandResult
	// The op first: a later version's command may not decode as this
	// version's, and is to wait for the upgrade, not be skipped as
	// malformed.
	var head struct{ Op string }
	if err = json.Unmarshal(data, &head); err == nil && !knownOps[head.Op] {
		return commandResult{}, fmt.Errorf("%w (its command %q)", ErrLaterVersion, head.Op)
	}
	if err = json.Unmarshal(data, &c); err != nil {
		err = fmt.Errorf("%w: %w", errUnknownCommand, err)
	} else {
		r, err = applyCommand(ctx, tx, c, seq)
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrLaterVersion):
		return commandResult{}, err // not moved past: applied once upgraded
	case refused(err) || errors.Is(err, errUnknownCommand):
		// Nothing of it stays; its place in the log still counts.
		r = commandResult{Err: err}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO command"); err != nil {
			return commandResult{}, err
		}
	default:
		return commandResult{}, err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE command"); err != nil {
		return commandResult{}, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE log_position SET seq = ?", seq); err != nil {
		return commandResult{}, err
	}
	return r, s.commitCommand(tx, c, r)
}

// ErrOwnHistory is a cluster node's refusal to start on a database that
// holds a chat of its own: messages or accounts no log made. Their ids
// would name other messages and people than the log's on the other nodes.
var ErrOwnHistory = errors.New("this database holds a chat of its own, made outside the cluster: a node starts from an empty database, or from a copy of another node's")

// CheckJoin refuses, with ErrOwnHistory, a database that holds messages
// or accounts already, but has applied no replicated log: it is not
// to be a cluster's node. A node checks before it joins the cluster (and
// NewReplicatedWriter again).
func (s *Store) CheckJoin(ctx context.Context) error {
	from, err := s.LogPosition(ctx)
	if err != nil || from > 0 {
		return err
	}
	var n int
	err = s.read.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM accounts)").Scan(&n)
	if err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	if n > 0 {
		return ErrOwnHistory
	}
	return nil
}

// CatchUp waits, 2 s at most, until this node has applied everything its
// cluster's log holds now, and reports whether it is a cluster's node (on
// a single node it returns false at once). A read that found nothing, on
// a node that may be a moment behind the one that wrote it, looks again
// after it.
func (s *Store) CatchUp(ctx context.Context) bool {
	if s.shared == nil {
		return false
	}
	s.shared.catchUp(ctx)
	return true
}

// SetSharedSetting is SetSetting for a setting every node of a cluster
// holds alike (the invite link, the join policy): on a cluster it is a
// command of the log.
func (s *Store) SetSharedSetting(ctx context.Context, key, value string) error {
	_, err := s.command(ctx, command{Op: opSetting, Key: key, Value: value})
	if err != nil {
		return fmt.Errorf("set setting %s: %w", key, err)
	}
	return nil
}

// SharedSettingOr is SettingOr for a setting every node of a cluster holds
// alike: of two nodes that store a first value at once, both get the one
// the log applied first.
func (s *Store) SharedSettingOr(ctx context.Context, key, value string) (string, error) {
	r, err := s.command(ctx, command{Op: opSettingOr, Key: key, Value: value})
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return r.Value, nil
}
