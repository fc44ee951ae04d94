-- People with an account. name is what others see; name_key is the name
-- as names are compared (chat.NameKey: normalised, case-folded, look-alike
-- letters folded), so that two accounts can never show as one person.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    name_key      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL, -- bcrypt
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'member', 'bot')),
    created       INTEGER NOT NULL, -- Unix milliseconds
    deactivated   INTEGER           -- Unix milliseconds; NULL while the account may sign in
) STRICT;

CREATE INDEX accounts_role ON accounts (role) WHERE deactivated IS NULL;

-- Who sent a message: the account, or NULL for a guest. Every message of
-- an earlier version was a guest's, under the name it was sent with.
ALTER TABLE messages ADD COLUMN user_id INTEGER REFERENCES accounts (id);
