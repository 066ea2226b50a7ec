-- Kept with every change so lists read them instead of counting or summing per row:
-- repositories.artifact_count: the listed artifacts (neither index children nor accessories);
-- manifests.total_size: the manifest plus everything it references.
ALTER TABLE repositories ADD COLUMN artifact_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE manifests ADD COLUMN total_size BIGINT NOT NULL DEFAULT 0;
UPDATE repositories SET artifact_count = (
    SELECT COUNT(*) FROM manifests m WHERE m.repository_id = repositories.id AND m.parents = 0 AND m.accessory_of IS NULL);
UPDATE manifests SET total_size = size + CAST(COALESCE((SELECT SUM(x.size) FROM manifest_refs x WHERE x.manifest_id = manifests.id), 0) AS BIGINT);
