-- Changes to stored messages (an edit, a deletion, a reaction) are events of
-- the one ordered log, as messages are: each takes its id from the same
-- sequence (sqlite_sequence's 'messages' row, which AUTOINCREMENT keeps), so
-- a client that resumes after an id is handed messages and changes in one
-- order. messages and reactions hold the current state (the projection);
-- events hold what a client that was away must replay.
--   kind     edit: body is the new text; delete: the message is gone;
--            react: body is the emoji, on = 1 added, 0 taken back.
--   user_id  who made the change; NULL for the admin dashboard's deletion.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('edit', 'delete', 'react')),
    room_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    user_id    INTEGER,
    body       TEXT    NOT NULL DEFAULT '',
    "on"       INTEGER NOT NULL DEFAULT 0 CHECK ("on" IN (0, 1)),
    timestamp  INTEGER NOT NULL -- Unix milliseconds
) STRICT;

-- A deletion takes the message's earlier events with it (an edit's text
-- must not outlive the message); retention prunes by message.
CREATE INDEX events_message ON events (message_id);

-- When the message was last edited (Unix milliseconds), NULL if never.
ALTER TABLE messages ADD COLUMN edited INTEGER;

-- Who reacted to what, now. Only accounts react: a guest has no identity
-- that could take a reaction back.
CREATE TABLE reactions (
    message_id INTEGER NOT NULL,
    emoji      TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES accounts (id),
    created    INTEGER NOT NULL, -- the reaction's event id: the order people reacted
    PRIMARY KEY (message_id, emoji, user_id)
) STRICT, WITHOUT ROWID;

-- However a message goes (its author's or an admin's deletion, a ban,
-- retention), its reactions and its events go with it. A delete event is
-- written after the row is gone, so it stays.
CREATE TRIGGER messages_forget AFTER DELETE ON messages BEGIN
    DELETE FROM reactions WHERE message_id = OLD.id;
    DELETE FROM events WHERE message_id = OLD.id;
END;
