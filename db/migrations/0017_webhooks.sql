-- Incoming webhooks: a secret URL that posts into one room as the
-- webhook's own bot account (an account with role 'bot' and no row in
-- bots: it has no token and does not sign in). Only the secret's SHA-256
-- is kept; the URL is shown once, when the webhook is made.
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    room_id     INTEGER NOT NULL REFERENCES rooms (id),
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    secret_hash BLOB    NOT NULL,
    created     INTEGER NOT NULL, -- Unix milliseconds
    created_by  TEXT    NOT NULL DEFAULT '', -- who made it: an account's name, or "shell"
    last_used   INTEGER           -- Unix milliseconds; NULL if never
) STRICT;
CREATE INDEX webhooks_room ON webhooks (room_id);
