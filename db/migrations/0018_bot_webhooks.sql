-- A bot's outgoing webhook: the URL NoChat POSTs to when the bot is
-- @mentioned or sent a direct message, and the secret NoChat signs each
-- request with (HMAC-SHA256). Unlike a token, the secret is kept as it is:
-- NoChat must sign with it, so it cannot be a hash. No row: no webhook.
CREATE TABLE bot_webhooks (
    account_id INTEGER PRIMARY KEY REFERENCES bots (account_id),
    url        TEXT    NOT NULL,
    secret     TEXT    NOT NULL,
    created    INTEGER NOT NULL -- Unix milliseconds
) STRICT;
