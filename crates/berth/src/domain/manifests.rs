//! Manifests: validate and store, read by tag or digest, delete, list tags,
//! the catalog, and the referrers API.
//!
//! The work one push may cause is bounded: the body by `MAX_MANIFEST`, its references (config,
//! layers, an index's children) by the `manifest_max_references` setting, and references the
//! repository lacks are found on a reader before the writer is taken (`Meta::put_manifest`).

use crate::app::App;
use crate::error::{Error, Result};
use crate::meta::{Audit, ManifestRow, NewManifest, PutOutcome};
use oci::{Digest, ErrorCode, Manifest, Reference, RepoName, media};
use serde_json::json;

/// Largest manifest accepted.
pub const MAX_MANIFEST: usize = 4 << 20;

/// A stored manifest, as pushed.
pub struct Stored {
    pub digest: Digest,
    pub has_subject: bool,
}

/// Validates and stores a manifest under `reference`.
pub async fn put(app: &App, repo: &RepoName, reference: &Reference, content_type: &str, body: &[u8], audit: Audit) -> Result<Stored> {
    if body.len() > MAX_MANIFEST {
        return Err(Error::TooLarge(format!("manifest is larger than {MAX_MANIFEST} bytes")));
    }
    let m = Manifest::parse(body, content_type).map_err(|e| Error::oci(ErrorCode::ManifestInvalid, e.to_string()))?;
    let references = m.blobs().count() + m.manifests.len();
    let cap = app.config.manifest_max_references;
    if references > cap {
        return Err(Error::oci(
            ErrorCode::ManifestInvalid,
            format!("manifest references {references} blobs and manifests; this registry accepts at most {cap}"),
        ));
    }
    let digest = match reference {
        Reference::Digest(d) => {
            if !d.verify(body) {
                return Err(Error::oci(ErrorCode::DigestInvalid, format!("manifest content does not match digest {d}")));
            }
            d.clone()
        }
        Reference::Tag(_) => Digest::sha256_of(body),
    };
    let project = super::projects::for_push(app, repo.project()).await?;
    super::projects::check_auto_create(app, &project, repo).await?;
    let blobs = m.blobs().map(|d| (d.digest.to_string(), d.size as i64)).collect();
    let children = m.manifests.iter().map(|d| (d.digest.to_string(), d.size as i64)).collect();
    let digest_s = digest.to_string();
    let tag = match reference {
        Reference::Tag(t) => Some(t.as_str()),
        Reference::Digest(_) => None,
    };
    let subject = m.subject.as_ref().map(|s| s.digest.to_string());
    let annotations = m.annotations.as_ref().map(|a| serde_json::to_string(a).unwrap_or_default());
    let artifact_kind = super::artifacts::kind(&m);
    let extra_attrs = super::artifacts::extra_attrs(app, &m, &artifact_kind).await?;
    let accessory = super::artifacts::accessory_of_subject(&m).or_else(|| tag.and_then(super::artifacts::accessory_of_tag));
    let new = NewManifest {
        repository: repo.as_str(),
        project_id: project.id,
        digest: &digest_s,
        media_type: &m.media_type,
        artifact_type: m.artifact_type.as_deref(),
        config_media_type: m.config.as_ref().map(|c| c.media_type.as_str()),
        subject: subject.as_deref(),
        annotations,
        content: body,
        blobs,
        children,
        tag,
        artifact_kind: &artifact_kind,
        extra_attrs,
        accessory,
    };
    let audit = Audit {
        project_id: Some(project.id),
        resource: format!("{repo}:{reference}"),
        resource_type: "artifact",
        operation: "create",
        ..audit
    };
    match app.meta.put_manifest(&new, &audit).await? {
        PutOutcome::Stored => Ok(Stored { digest, has_subject: m.subject.is_some() }),
        PutOutcome::BlobUnknown(d) => {
            Err(Error::oci(ErrorCode::ManifestBlobUnknown, format!("manifest references blob {d}, which is not in repository {repo}")))
        }
        PutOutcome::ManifestUnknown(d) => {
            Err(Error::oci(ErrorCode::ManifestUnknown, format!("index references manifest {d}, which is not in repository {repo}")))
        }
    }
}

/// Reads a manifest by tag or digest.
pub async fn get(app: &App, repo: &RepoName, reference: &Reference) -> Result<ManifestRow> {
    let row = match reference {
        Reference::Tag(t) => app.meta.manifest_by_tag(repo.as_str(), t.as_str()).await?,
        Reference::Digest(d) => app.meta.manifest_by_digest(repo.as_str(), &d.to_string()).await?,
    };
    row.ok_or_else(|| Error::oci(ErrorCode::ManifestUnknown, format!("manifest {reference} is not known to repository {repo}")))
}

/// Deletes a manifest by digest (with its tags), or only the tag when given a tag.
pub async fn delete(app: &App, repo: &RepoName, reference: &Reference, audit: Audit) -> Result<()> {
    let audit = Audit { resource: format!("{repo}:{reference}"), operation: "delete", ..audit };
    let found = match reference {
        Reference::Digest(d) => {
            app.meta.delete_manifest(repo.as_str(), &d.to_string(), &Audit { resource_type: "artifact", ..audit }).await?
        }
        Reference::Tag(t) => app.meta.delete_tag(repo.as_str(), t.as_str(), &Audit { resource_type: "tag", ..audit }).await?,
    };
    if found {
        Ok(())
    } else {
        Err(Error::oci(ErrorCode::ManifestUnknown, format!("manifest {reference} is not known to repository {repo}")))
    }
}

/// One page of a lexically ordered list, and whether more follow.
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

fn page(mut items: Vec<String>, n: usize) -> Page {
    let more = items.len() > n;
    items.truncate(n);
    Page { items, more }
}

/// Tags of a repository after `last`, at most `n`.
pub async fn tags(app: &App, repo: &RepoName, last: &str, n: usize) -> Result<Page> {
    match app.meta.list_tags(repo.as_str(), last, n as i64 + 1).await? {
        Some(items) => Ok(page(items, n)),
        None => Err(Error::oci(ErrorCode::NameUnknown, format!("repository {repo} is not known"))),
    }
}

/// Repository names after `last`, at most `n`.
pub async fn catalog(app: &App, last: &str, n: usize) -> Result<Page> {
    Ok(page(app.meta.catalog(last, n as i64 + 1).await?, n))
}

/// The referrers index of `digest`, filtered by artifact type when given.
pub async fn referrers(app: &App, repo: &RepoName, digest: &Digest, artifact_type: Option<&str>) -> Result<Vec<u8>> {
    let rows = app.meta.referrers(repo.as_str(), &digest.to_string()).await?;
    let manifests: Vec<_> = rows
        .into_iter()
        .filter_map(|r| {
            let at = r.artifact_type.or(r.config_media_type)?;
            if artifact_type.is_some_and(|want| want != at) {
                return None;
            }
            let mut d = json!({"mediaType": r.media_type, "digest": r.digest, "size": r.size, "artifactType": at});
            if let Some(a) = r.annotations.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()) {
                d["annotations"] = a;
            }
            Some(d)
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests});
    Ok(serde_json::to_vec(&index).expect("json"))
}
