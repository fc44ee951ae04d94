-- Full-text search over messages (issue 14). An external-content FTS5
-- table: it stores the index only, and reads the text from messages, so
-- the text is not stored twice. unicode61 with remove_diacritics 2 finds
-- "cafe" in "café" and folds case; words are what chat users type, and a
-- prefix query ("pri"*) finds "printer" without a trigram index three
-- times the size of the text. The prefix indexes of 2, 3 and 4 characters
-- keep a short prefix fast: without them "the"* merged the doclists of
-- every word starting with "the" (113 ms at 1M messages; 0.4 ms with
-- them), for about 60 MB more per million messages (BENCHMARKS.md).
-- (Numbered 0012: it was written beside 0010 and 0011, in another branch.)
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    message,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3 4'
);

-- The index follows messages in the same transaction as every change:
-- sends, edits (UPDATE OF message), deletions and retention (DELETE).
-- An external-content table is told the old text to take out.
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, message) VALUES (NEW.id, NEW.message);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, message) VALUES ('delete', OLD.id, OLD.message);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF message ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, message) VALUES ('delete', OLD.id, OLD.message);
    INSERT INTO messages_fts (rowid, message) VALUES (NEW.id, NEW.message);
END;

-- The messages stored before this migration are indexed from Go, newest
-- first, in batches with progress in the log (search.go, backfillSearch):
-- this is the id at and below which messages still wait for the index.
-- Each batch lowers it in its own transaction, so an interrupted start
-- carries on where it stopped.
INSERT INTO settings (key, value)
SELECT 'search_backfill', CAST(max(id) AS TEXT) FROM messages HAVING max(id) IS NOT NULL;
