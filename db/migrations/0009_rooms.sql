-- Rooms. Every message belongs to one; ids stay one order across all of
-- them, so a client resumes every room it may see with one number.
--   kind   open: every member may see and join it; private: members are
--          invited; direct: a conversation between the people in direct_key.
--   post   who may post: everyone who sees it, its members, or admins only.
--   guests whether people without an account may read and post (open only).
CREATE TABLE rooms (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    topic       TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL CHECK (kind IN ('open', 'private', 'direct')),
    post        TEXT    NOT NULL DEFAULT 'everyone' CHECK (post IN ('everyone', 'members', 'admins')),
    guests      INTEGER NOT NULL DEFAULT 0 CHECK (guests IN (0, 1)),
    -- A direct room's people, as their sorted account ids joined by ",":
    -- the same people always find the same room.
    direct_key  TEXT    UNIQUE,
    created_by  INTEGER REFERENCES accounts (id),
    created     INTEGER NOT NULL, -- Unix milliseconds
    archived    INTEGER,          -- Unix milliseconds; NULL while it is open
    CHECK (guests = 0 OR kind = 'open'),
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
) STRICT;

-- The default room: what the tutorial's routes and echo-protocol mean.
INSERT INTO rooms (id, slug, name, kind, guests, created)
VALUES (1, 'lobby', 'Lobby', 'open', 1, CAST(unixepoch('subsec') * 1000 AS INTEGER));

-- Who is in a room, and the last message id each of them has read there:
-- unread counts come from it, so every tab and device agrees.
CREATE TABLE members (
    room_id   INTEGER NOT NULL REFERENCES rooms (id),
    user_id   INTEGER NOT NULL REFERENCES accounts (id),
    last_read INTEGER NOT NULL DEFAULT 0,
    joined    INTEGER NOT NULL, -- Unix milliseconds
    PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX members_user ON members (user_id);

-- Every message so far was the default room's. (A column added by ALTER
-- TABLE may not carry REFERENCES with a non-NULL default; rooms are never
-- deleted, only archived, so room_id always names one.)
ALTER TABLE messages ADD COLUMN room_id INTEGER NOT NULL DEFAULT 1;
CREATE INDEX messages_room ON messages (room_id, id);

-- Every account is in the default room, from its creation, with nothing
-- unread there before it existed.
INSERT INTO members (room_id, user_id, last_read, joined)
SELECT 1, id, (SELECT ifnull(max(id), 0) FROM messages), created FROM accounts;

CREATE TRIGGER accounts_join_lobby AFTER INSERT ON accounts BEGIN
    INSERT INTO members (room_id, user_id, last_read, joined)
    VALUES (1, NEW.id, (SELECT ifnull(max(id), 0) FROM messages), NEW.created);
END;
