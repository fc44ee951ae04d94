-- Notifications (issue 15, items 2 and 3).
--   notify  what of a room a member is told of while away: every message
--           ('all'), mentions of them or of everyone and every message of
--           a direct room ('mentions'), or nothing ('none').
ALTER TABLE members ADD COLUMN notify TEXT NOT NULL DEFAULT 'mentions'
    CHECK (notify IN ('all', 'mentions', 'none'));

-- Web Push subscriptions: one per browser (endpoint), stored with the
-- sign-in session that made it, so ending the session (sign-out, a reset,
-- deactivation, a ban, expiry) ends its pushes too.
CREATE TABLE push_subscriptions (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL,
    endpoint   TEXT    NOT NULL UNIQUE,
    p256dh     TEXT    NOT NULL, -- the browser's P-256 key, base64url
    auth       TEXT    NOT NULL, -- its 16-byte secret, base64url
    created    INTEGER NOT NULL  -- Unix milliseconds
) STRICT;

CREATE INDEX push_subscriptions_account ON push_subscriptions (account_id, id);
CREATE INDEX push_subscriptions_session ON push_subscriptions (session_id);
