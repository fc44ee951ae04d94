-- A change a client sent with a cid (nochat.v1's edit, delete and react
-- frames) is stored under it, as a message is under its own: the same
-- frame sent again after a reconnect, its ack lost, names the change made
-- then and is not made twice. A reaction toggled (react without "on")
-- twice would take itself back. Unique within one account's changes for
-- the de-duplication window, as messages_sender_cid is within a sender's
-- messages; NULL for a change without a cid.
ALTER TABLE events ADD COLUMN cid TEXT;

CREATE INDEX events_sender_cid ON events (user_id, cid) WHERE cid IS NOT NULL;
