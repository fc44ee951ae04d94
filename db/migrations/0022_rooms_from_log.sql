-- Whether a room was made through a cluster's replicated log (1), and so is
-- the same room, under the same id, on every node; 0 for one made by this
-- database alone (a single node, or a node before rooms were shared) and
-- for the default room, which every database has from its first migration.
-- On a cluster only the log's rooms and the default room take messages.
ALTER TABLE rooms ADD COLUMN from_log INTEGER NOT NULL DEFAULT 0;
