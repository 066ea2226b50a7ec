-- Projects API: project members get an id (Harbor's member id, `mid`), and projects keep
-- their CVE allowlist. Settings (`project_creation_restriction`, `project_limit_per_user`)
-- live in `system_settings`; project policies in `project_metadata`.

-- SQLite cannot add an identity column to a table, so the table is rebuilt; member ids
-- follow the order in which members were added.
CREATE TABLE project_members_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    role BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    UNIQUE (project_id, entity_type, entity_id)
);
INSERT INTO project_members_new (project_id, entity_type, entity_id, role, creation_time, update_time)
    SELECT project_id, entity_type, entity_id, role, creation_time, update_time FROM project_members ORDER BY creation_time, project_id, entity_id;
DROP TABLE project_members;
ALTER TABLE project_members_new RENAME TO project_members;
CREATE INDEX project_members_entity ON project_members (entity_type, entity_id);

-- A project's CVE allowlist: items as a JSON array of {"cve_id": "..."}; expires_at in Unix seconds.
CREATE TABLE project_cve_allowlists (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
    items TEXT NOT NULL DEFAULT '[]',
    expires_at BIGINT,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

-- Counting a user's projects (the per-user project limit) and listing by owner.
CREATE INDEX projects_owner ON projects (owner_id);
