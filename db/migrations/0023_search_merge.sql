-- The search index merges its segments sixteen at a time, not FTS5's
-- default four. Each commit adds a small segment to the index, and FTS5
-- merges segments as they pile up: at four at a time, a message's entries
-- are rewritten about twice as often as at sixteen. That rewriting was a
-- third of the writer's time in a burst (a CPU profile of nochat bench),
-- and it is bytes written to an SD card for every message. Measured with
-- the writer alone, 800 senders at once: 31-40k messages/s against
-- 22-31k; a search of a 200,000-message index built by such commits takes
-- a fraction of a millisecond more (BENCHMARKS.md).
INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 16);
