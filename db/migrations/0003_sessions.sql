-- Sign-in sessions, one row per signed-in browser. The browser holds a
-- random token; only its SHA-256 is stored, so a copy of the database opens
-- no session. Today every row is an admin's password session (kind 'admin',
-- no account); accounts will add kind 'account' rows with account_id set,
-- and list and end them per person through sessions_owner.
CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY,
    token_hash BLOB    NOT NULL UNIQUE, -- SHA-256 of the cookie's token
    kind       TEXT    NOT NULL,        -- 'admin'
    account_id INTEGER,                 -- the person signed in; NULL for the admin password
    user_agent TEXT    NOT NULL,        -- shortened, to tell a person's sessions apart
    created    INTEGER NOT NULL,        -- Unix milliseconds
    last_seen  INTEGER NOT NULL,        -- Unix milliseconds, updated at most every few minutes
    expires    INTEGER NOT NULL         -- Unix milliseconds
) STRICT;

CREATE INDEX sessions_owner ON sessions (kind, account_id, created);
CREATE INDEX sessions_expires ON sessions (expires);

-- Admin sessions were signed cookies; their key is no longer used, and
-- those cookies no longer open /admin.
DELETE FROM settings WHERE key = 'admin_session_key';
