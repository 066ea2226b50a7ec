-- Core schema: accounts, projects, repositories, content, uploads, keys, audit log.
-- Times are Unix milliseconds. Names compare byte-wise (lexical order for /v2 lists).

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    realname TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    sysadmin BOOLEAN NOT NULL DEFAULT FALSE,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES users(id),
    public BOOLEAN NOT NULL DEFAULT FALSE,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);

CREATE TABLE project_metadata (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- entity_type: 'u' user, 'g' group. role: 1 projectAdmin, 2 developer, 3 guest, 4 maintainer, 5 limitedGuest (Harbor's ids).
CREATE TABLE project_members (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    entity_type TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    role BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    PRIMARY KEY (project_id, entity_type, entity_id)
);
CREATE INDEX project_members_entity ON project_members (entity_type, entity_id);

CREATE TABLE repositories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    pull_count BIGINT NOT NULL DEFAULT 0,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX repositories_project ON repositories (project_id, name);

-- Every blob whose bytes are in the store, verified.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    creation_time BIGINT NOT NULL
);

-- Which repositories may serve a blob (uploaded or mounted there). By repository
-- name: a repository row exists only once it holds a manifest.
CREATE TABLE repository_blobs (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    creation_time BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    artifact_type TEXT,
    config_media_type TEXT,
    subject_digest TEXT,
    annotations TEXT,
    size BIGINT NOT NULL,
    content BLOB NOT NULL,
    push_time BIGINT NOT NULL,
    pull_time BIGINT,
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

-- What a manifest references: blobs (kind 'b') and child manifests (kind 'm').
CREATE TABLE manifest_refs (
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (manifest_id, kind, digest)
);
CREATE INDEX manifest_refs_digest ON manifest_refs (digest);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    push_time BIGINT NOT NULL,
    pull_time BIGINT,
    UNIQUE (repository_id, name)
);
CREATE INDEX tags_manifest ON tags (manifest_id);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    size BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX uploads_updated ON uploads (updated_at);

CREATE TABLE signing_keys (
    id TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    secret BLOB NOT NULL,
    creation_time BIGINT NOT NULL
);

CREATE TABLE system_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op_time BIGINT NOT NULL,
    operator TEXT NOT NULL,
    project_id BIGINT,
    resource TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    operation TEXT NOT NULL,
    success BOOLEAN NOT NULL,
    client_ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_time ON audit_log (op_time);
CREATE INDEX audit_log_project_time ON audit_log (project_id, op_time);
