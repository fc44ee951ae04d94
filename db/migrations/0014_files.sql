-- Pictures and files (issue 15, item 5). A file comes with one message and
-- lives in the database beside it, so the appliance stays one file and
-- backups and retention include it. Its key is its message's id: message
-- ids are never handed out twice (AUTOINCREMENT), so a file's URL names
-- one file for ever and may be cached as such.
--   uploader  the account that sent it: the per-person quota sums by it.
--   type      the type it is served with: image/jpeg or image/png for a
--             picture (re-encoded without its metadata), whatever the
--             content sniffs as for another file (served as a download).
--   width, height  a picture's size in pixels, after its EXIF orientation;
--             NULL for another file.
--   thumb     a picture's thumbnail, of the same type; NULL for another file.
-- The blobs come last: reading a file's other columns (with each page of
-- history) then never walks the blobs' overflow pages.
CREATE TABLE files (
    message_id INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL,
    uploader   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    width      INTEGER,
    height     INTEGER,
    thumb      BLOB,
    data       BLOB    NOT NULL
) STRICT;

-- The quota's sum reads the index only.
CREATE INDEX files_uploader ON files (uploader, size);

-- However a message goes (its author's or an admin's deletion, a ban,
-- retention), its file goes with it, in the same transaction.
DROP TRIGGER messages_forget;
CREATE TRIGGER messages_forget AFTER DELETE ON messages BEGIN
    DELETE FROM reactions WHERE message_id = OLD.id;
    DELETE FROM events WHERE message_id = OLD.id;
    DELETE FROM mentions WHERE message_id = OLD.id;
    DELETE FROM files WHERE message_id = OLD.id;
END;
