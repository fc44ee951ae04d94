-- A client id names one send of one sender, not one send ever: the same cid
-- from two senders is two messages (with the old index, the README's example
-- cid 'a1' was stored once and every later send of it, by anyone, was taken
-- for a re-send). A send is looked up by cid and sender, within a window of
-- time (db.Options.DedupWindow), hence the timestamp in the index; rows
-- older than the window stay, and do not stop the cid being used again.
-- Today a sender is its user name; with accounts this index takes the user
-- id in its place, together with sendKey in message.go.
DROP INDEX messages_cid;
CREATE INDEX messages_sender_cid ON messages (cid, user, timestamp) WHERE cid IS NOT NULL;
