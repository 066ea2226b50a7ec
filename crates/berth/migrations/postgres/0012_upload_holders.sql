-- Who holds each upload session in progress (the account and the client address that stored
-- its first chunk), for the per-account and per-address bounds on sessions and bytes.
ALTER TABLE uploads ADD COLUMN account TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE INDEX uploads_account ON uploads (account, size) WHERE size >= 0;
CREATE INDEX uploads_client ON uploads (client, size) WHERE size >= 0;
