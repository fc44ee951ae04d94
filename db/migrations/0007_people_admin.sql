-- Admins manage people: who did what on the dashboard (the audit list),
-- addresses refused for a ban, and what a ban needs to know of sessions
-- and messages.

-- The audit list: one row per admin action, newest kept (see
-- db.MaxAudit). actor is the admin's name as it was then ("admin password"
-- for the password of earlier versions); target and detail are what the
-- action was about, in words.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL, -- Unix milliseconds
    actor_id INTEGER,          -- the admin's account; NULL for the admin password
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL, -- a fixed word from the code: 'deactivate', 'ban', ...
    target   TEXT    NOT NULL,
    detail   TEXT    NOT NULL
) STRICT;

-- Addresses a ban refuses, by chat.AddressKey (an IPv4 address, an IPv6
-- /64), each for the account whose ban brought it.
CREATE TABLE bans (
    address    TEXT    PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    at         INTEGER NOT NULL -- Unix milliseconds
) STRICT;

-- A banned account is deactivated too; banned says why, and when.
ALTER TABLE accounts ADD COLUMN banned INTEGER; -- Unix milliseconds; NULL unless banned

-- When a person was last seen, kept past their sessions: a session that
-- ends (signed out, deactivated, pushed out by a newer one) leaves its
-- last use here. The people list shows the later of this and the live
-- sessions' last_seen.
ALTER TABLE accounts ADD COLUMN last_seen INTEGER; -- Unix milliseconds
CREATE TRIGGER sessions_keep_last_seen AFTER DELETE ON sessions
WHEN old.kind = 'account' AND old.account_id IS NOT NULL
BEGIN
    UPDATE accounts SET last_seen = max(coalesce(last_seen, 0), old.last_seen) WHERE id = old.account_id;
END;

-- Where a session was signed in from (chat.AddressKey), so that a ban can
-- refuse the addresses of the devices an account used; '' before this
-- version.
ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';

-- A person's messages: counted on the people list, deleted with a ban.
CREATE INDEX messages_user ON messages (user_id) WHERE user_id IS NOT NULL;
