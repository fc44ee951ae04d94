-- Replies and mentions (issue 14, items 3 and 4).
--   reply_to  the message this one answers; it may be deleted since, and
--             the reply then shows that.
ALTER TABLE messages ADD COLUMN reply_to INTEGER;

-- Who a message mentions, by account, so that a rename breaks nothing: the
-- page shows the mention under the person's name now. start and length are
-- the bytes of "@Name" in the text as written. user_id 0 is everyone in the
-- room (@room, @everyone, from an admin or the room's creator).
CREATE TABLE mentions (
    message_id INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    length     INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    PRIMARY KEY (message_id, start)
) STRICT, WITHOUT ROWID;

-- "Is there an unread mention of me in this room": by person, then message.
CREATE INDEX mentions_user ON mentions (user_id, message_id);

DROP TRIGGER messages_forget;
CREATE TRIGGER messages_forget AFTER DELETE ON messages BEGIN
    DELETE FROM reactions WHERE message_id = OLD.id;
    DELETE FROM events WHERE message_id = OLD.id;
    DELETE FROM mentions WHERE message_id = OLD.id;
END;
