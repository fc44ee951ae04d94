-- Bots: accounts with role 'bot' that an admin made. A bot has no password
-- (password_hash ''), so it never signs in; it acts with a token, of which
-- only the SHA-256 is kept. token_hash is NULL once the token is revoked.
-- prefix is the token's first characters, to tell tokens apart on the
-- dashboard without showing them.
CREATE TABLE bots (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id),
    token_hash BLOB    UNIQUE,
    prefix     TEXT    NOT NULL DEFAULT '',
    created    INTEGER NOT NULL, -- Unix milliseconds
    last_used  INTEGER           -- Unix milliseconds; NULL if never
) STRICT;

-- One counter that every change of a token moves, by trigger, whichever
-- process makes it (the server, or `nochat bot` from a shell): the server
-- reads it each second and closes the sockets of a token that died.
CREATE TABLE bot_tokens_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO bot_tokens_version (id, n) VALUES (1, 0);

CREATE TRIGGER bots_token_changed AFTER UPDATE OF token_hash ON bots BEGIN
    UPDATE bot_tokens_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER bots_token_added AFTER INSERT ON bots BEGIN
    UPDATE bot_tokens_version SET n = n + 1 WHERE id = 1;
END;
