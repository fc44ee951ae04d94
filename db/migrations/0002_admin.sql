-- The recent-errors log the admin sees. A repeated error (same kind and
-- detail) is one row with a count, so a storm is never a write storm.
CREATE TABLE errors (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    subject    TEXT    NOT NULL, -- the connection or request of the latest occurrence
    count      INTEGER NOT NULL,
    first_seen INTEGER NOT NULL, -- Unix milliseconds
    last_seen  INTEGER NOT NULL,
    UNIQUE (kind, detail)
) STRICT;

CREATE INDEX errors_last_seen ON errors (last_seen);

-- Small server state that must survive restarts: the admin password hash
-- and the key that signs admin sessions.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
