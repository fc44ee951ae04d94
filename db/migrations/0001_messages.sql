-- The room: one row per chat line. id orders the room; AUTOINCREMENT keeps an
-- id from ever being reused after the newest message is deleted, so a client
-- resuming "after id N" can never miss a message that took a freed id.
CREATE TABLE messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user      TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    timestamp INTEGER NOT NULL, -- Unix milliseconds
    cid       TEXT             -- client id of the send, for de-duplication
) STRICT;

-- A re-sent message (same cid) is stored once.
CREATE UNIQUE INDEX messages_cid ON messages (cid) WHERE cid IS NOT NULL;
