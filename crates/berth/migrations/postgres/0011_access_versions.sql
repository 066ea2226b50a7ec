-- Access versions: a counter per user and per robot, raised in the transaction of every change
-- that takes access away (a membership removed or its role changed, the system-admin role,
-- a password, a deletion, a personal access token revoked; any change of a robot). Registry
-- tokens carry the version their holder had when they were issued, and /v2 refuses a token
-- whose holder has moved on (see auth/versions.rs). Triggers raise it, so no write path can
-- forget to.
ALTER TABLE users ADD COLUMN access_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE robots ADD COLUMN access_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION access_version_bump_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.access_version := OLD.access_version + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_access_version
    BEFORE UPDATE OF password_hash, sysadmin, deleted, username ON users
    FOR EACH ROW
    WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash OR OLD.sysadmin IS DISTINCT FROM NEW.sysadmin
          OR OLD.deleted IS DISTINCT FROM NEW.deleted OR OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION access_version_bump_row();

CREATE TRIGGER robots_access_version
    BEFORE UPDATE OF description, disabled, duration, expires_at, secret_hash, update_time ON robots
    FOR EACH ROW EXECUTE FUNCTION access_version_bump_row();

CREATE FUNCTION access_version_bump_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.entity_type = 'u' THEN
        UPDATE users SET access_version = access_version + 1 WHERE id = OLD.entity_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER project_members_access_version
    AFTER UPDATE OR DELETE ON project_members
    FOR EACH ROW EXECUTE FUNCTION access_version_bump_member();

CREATE FUNCTION access_version_bump_token_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = OLD.user_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER access_tokens_access_version
    AFTER DELETE ON access_tokens
    FOR EACH ROW EXECUTE FUNCTION access_version_bump_token_owner();
