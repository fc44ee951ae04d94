-- How far this database has applied a replicated log (several nodes
-- serving one chat, package cluster): the log's sequence number of the
-- last entry applied, written in the same transaction as the entries
-- themselves, so that a node restarting goes on from exactly there. 0 for
-- a database no replicated log has written (a single node).
CREATE TABLE log_position (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
INSERT INTO log_position (id, seq) VALUES (1, 0);
