-- Harbor's labels: global (scope 'g', project_id 0) or of one project (scope 'p').
-- A name is unique within its scope and project. Deleting a project deletes its labels
-- (meta::delete_project); deleting a label or a manifest detaches it (ON DELETE CASCADE).
CREATE TABLE labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    color TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL,
    project_id BIGINT NOT NULL DEFAULT 0,
    creation_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    UNIQUE (scope, project_id, name)
);
-- Lists filter by scope and project and page by id.
CREATE INDEX labels_scope_project ON labels (scope, project_id, id);

-- Labels on artifacts (manifests).
CREATE TABLE artifact_labels (
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    label_id BIGINT NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    creation_time BIGINT NOT NULL,
    PRIMARY KEY (manifest_id, label_id)
);
CREATE INDEX artifact_labels_label ON artifact_labels (label_id, manifest_id);
