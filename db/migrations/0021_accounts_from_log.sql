-- Whether an account was made through a cluster's replicated log (1), and
-- so is the same account, under the same id, on every node; 0 for one made
-- by this database alone (a single node, or a node before accounts were
-- shared). On a cluster only accounts of the log may post: an id of this
-- database alone names someone else, or no one, on the other nodes.
ALTER TABLE accounts ADD COLUMN from_log INTEGER NOT NULL DEFAULT 0;
