-- Users API: deleted users are kept (Harbor marks them removed: their name and e-mail get a
-- `#<id>` suffix so both can be used again, and their password hash is cleared), and an
-- e-mail address belongs to one user at most. E-mail and real name compare byte-wise, as
-- on SQLite, so that sorted user lists are the same on both backends.

ALTER TABLE users ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ALTER COLUMN email TYPE TEXT COLLATE "C";
ALTER TABLE users ALTER COLUMN realname TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX users_email ON users (email);
