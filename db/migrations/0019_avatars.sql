-- An account's avatar: an emoji shown in its circle in place of its
-- initials; '' for none (the initials). Admins give bots one; on accounts
-- rather than bots so that reading history, which joins accounts already,
-- gets it for nothing.
ALTER TABLE accounts ADD COLUMN avatar TEXT NOT NULL DEFAULT '';
