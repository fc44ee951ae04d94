-- A member's sends are theirs by account, not by name: with renames a
-- member's name changes, and a re-send after a rename (the same cid) must
-- still be found. A sender is its account id, or a guest's name for a
-- guest (user_id NULL): ifnull(user_id, user), an integer for a member and
-- text for a guest, which SQLite never takes for equal. The expression is
-- the one findSQL in message.go writes, so that SQLite uses this index.
-- (Numbered 0008: 0007 is taken by another branch's migration.)
DROP INDEX messages_sender_cid;
CREATE INDEX messages_sender_cid ON messages (cid, ifnull(user_id, user), timestamp) WHERE cid IS NOT NULL;
