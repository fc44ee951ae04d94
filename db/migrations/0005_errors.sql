-- The recent-errors log keeps one row per kind and place (where in NoChat it
-- happened: a route, a frame's refusal code, a loop), both fixed texts from
-- the code. The detail, which a client can choose (an Origin, a frame type),
-- is only the latest sample: keyed by detail, a client sending distinct
-- texts set the log's size and churned it.
CREATE TABLE errors_by_place (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    place      TEXT    NOT NULL,
    detail     TEXT    NOT NULL, -- the latest occurrence's detail
    subject    TEXT    NOT NULL, -- the connection or request of the latest occurrence
    count      INTEGER NOT NULL,
    first_seen INTEGER NOT NULL, -- Unix milliseconds
    last_seen  INTEGER NOT NULL,
    UNIQUE (kind, place)
) STRICT;

-- Earlier rows had no place: each kind's rows become one, with their total
-- count and the latest detail as its sample.
INSERT INTO errors_by_place (kind, place, detail, subject, count, first_seen, last_seen)
SELECT kind, 'before the upgrade',
       (SELECT detail FROM errors l WHERE l.kind = e.kind ORDER BY last_seen DESC LIMIT 1),
       (SELECT subject FROM errors l WHERE l.kind = e.kind ORDER BY last_seen DESC LIMIT 1),
       SUM(count), MIN(first_seen), MAX(last_seen)
FROM errors e GROUP BY kind;

DROP TABLE errors;
ALTER TABLE errors_by_place RENAME TO errors;
CREATE INDEX errors_last_seen ON errors (last_seen);
