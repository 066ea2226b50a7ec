-- Users API: deleted users are kept (Harbor marks them removed: their name and e-mail get a
-- `#<id>` suffix so both can be used again, and their password hash is cleared), and an
-- e-mail address belongs to one user at most.

ALTER TABLE users ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX users_email ON users (email);
