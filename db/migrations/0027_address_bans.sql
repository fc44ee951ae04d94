-- An admin bans a guest's address from the dashboard, with no account to
-- ban: a ban's address no longer needs an account. name is whom the
-- address was banned for, as the dashboard's list of bans shows it: the
-- guest's name then ('' for an account's ban, which names its account).
-- SQLite drops a NOT NULL only by building the table again.
CREATE TABLE bans_new (
    address    TEXT    PRIMARY KEY,
    account_id INTEGER REFERENCES accounts (id), -- NULL: an address banned on its own
    name       TEXT    NOT NULL DEFAULT '',
    at         INTEGER NOT NULL -- Unix milliseconds
) STRICT;

INSERT INTO bans_new (address, account_id, at) SELECT address, account_id, at FROM bans;

DROP TABLE bans;

ALTER TABLE bans_new RENAME TO bans;
