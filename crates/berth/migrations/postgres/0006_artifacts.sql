-- Artifact facts for Harbor's API, kept at push time so lists need no per-row work:
-- artifact_kind: IMAGE, CHART, CNAB, WASM, SIGNATURE, SBOM, or the artifactType otherwise.
-- extra_attrs: JSON read from the config (architecture, os, created, author, config; chart fields).
-- parents: how many indexes of the same repository reference this manifest.
-- accessory_of / accessory_type: the subject digest and kind when this manifest is an accessory
-- (a referrer with a subject, or a cosign-style sha256-<digest>.sig/.att/.sbom tag).
ALTER TABLE manifests ADD COLUMN artifact_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE manifests ADD COLUMN extra_attrs TEXT;
ALTER TABLE manifests ADD COLUMN parents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE manifests ADD COLUMN accessory_of TEXT;
ALTER TABLE manifests ADD COLUMN accessory_type TEXT;

-- Facts for manifests stored before this migration.
UPDATE manifests SET parents = (
    SELECT COUNT(*) FROM manifest_refs r JOIN manifests p ON p.id = r.manifest_id
    WHERE r.kind = 'm' AND r.digest = manifests.digest AND p.repository_id = manifests.repository_id);
UPDATE manifests SET accessory_of = subject_digest, accessory_type = 'subject' WHERE subject_digest IS NOT NULL;

-- The artifacts a repository lists: neither a child of an index nor an accessory.
CREATE INDEX manifests_listed ON manifests (repository_id, push_time, id) WHERE parents = 0 AND accessory_of IS NULL;
CREATE INDEX manifests_accessory ON manifests (repository_id, accessory_of) WHERE accessory_of IS NOT NULL;
CREATE INDEX repositories_project_time ON repositories (project_id, creation_time, id);
