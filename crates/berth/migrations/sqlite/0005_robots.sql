-- Robot accounts: system-level (project_id NULL) or bound to one project.
-- Secrets are long random strings (or caller-chosen), stored as SHA-256 digests.
CREATE TABLE robots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    level TEXT NOT NULL,
    project_id BIGINT REFERENCES projects(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    duration BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    creator_type TEXT NOT NULL,
    creator_ref BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX robots_project ON robots (project_id);

-- One row per granted or denied (resource, action) in a namespace: "/" (system),
-- "*" (every project) or a project name.
CREATE TABLE robot_permissions (
    robot_id BIGINT NOT NULL REFERENCES robots(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    effect TEXT NOT NULL,
    PRIMARY KEY (robot_id, kind, namespace, resource, action, effect)
);
