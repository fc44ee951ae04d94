-- The search index follows the messages a moment later, in batches
-- (searchindex.go), instead of inside every send's transaction: a send's
-- commit no longer carries FTS5's work (a tenth of the server's CPU in a
-- burst, BENCHMARKS.md), and a batch of a thousand new messages costs the
-- index far less than a hundred small ones. A search first brings the
-- index up to date, so it still finds a message sent a moment before.
--
-- indexed_to is the id at and below which every message is in the index
-- (those waiting for migration 0012's back-fill aside, which Open finishes
-- before any write). Message ids only grow, so the messages above it are
-- the ones still to index.
CREATE TABLE search_index (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_to INTEGER NOT NULL
);
INSERT INTO search_index (id, indexed_to) SELECT 1, ifnull(max(id), 0) FROM messages;

-- An edit or a deletion takes the old text out of the index only if it is
-- there: a message still waiting is indexed, later, as it is then (or not
-- at all, once deleted). External-content FTS5 must never be told to take
-- out what it does not hold.
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN OLD.id <= (SELECT indexed_to FROM search_index) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, message) VALUES ('delete', OLD.id, OLD.message);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF message ON messages
WHEN OLD.id <= (SELECT indexed_to FROM search_index) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, message) VALUES ('delete', OLD.id, OLD.message);
    INSERT INTO messages_fts (rowid, message) VALUES (NEW.id, NEW.message);
END;
