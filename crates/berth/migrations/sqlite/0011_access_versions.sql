-- Access versions: see the PostgreSQL migration of the same number. A trigger's own update
-- of access_version does not fire these triggers again (they watch other columns, and
-- recursive triggers are off).
ALTER TABLE users ADD COLUMN access_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE robots ADD COLUMN access_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER users_access_version
    AFTER UPDATE OF password_hash, sysadmin, deleted, username ON users
    FOR EACH ROW
    WHEN OLD.password_hash IS NOT NEW.password_hash OR OLD.sysadmin IS NOT NEW.sysadmin
         OR OLD.deleted IS NOT NEW.deleted OR OLD.username IS NOT NEW.username
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER robots_access_version
    AFTER UPDATE OF description, disabled, duration, expires_at, secret_hash, update_time ON robots
    FOR EACH ROW
BEGIN
    UPDATE robots SET access_version = access_version + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER project_members_update_access_version
    AFTER UPDATE ON project_members
    FOR EACH ROW WHEN OLD.entity_type = 'u'
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = OLD.entity_id;
END;

CREATE TRIGGER project_members_delete_access_version
    AFTER DELETE ON project_members
    FOR EACH ROW WHEN OLD.entity_type = 'u'
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = OLD.entity_id;
END;

CREATE TRIGGER access_tokens_access_version
    AFTER DELETE ON access_tokens
    FOR EACH ROW
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = OLD.user_id;
END;
