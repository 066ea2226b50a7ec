//! Manifest parsing and validation for OCI image manifests and indexes, Docker
//! schema 2 manifests and manifest lists, and artifact manifests.
//!
//! The stored bytes are always the bytes the client sent; this module only reads
//! the fields the registry acts on (what a manifest references, its subject and
//! artifact type). Docker schema 1 is refused.

use crate::digest::Digest;
use crate::media;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

/// Whether a manifest lists blobs (an image or artifact) or other manifests (an index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

/// The parts of a manifest the registry acts on.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub media_type: String,
    pub kind: ManifestKind,
    pub config: Option<Descriptor>,
    /// Layers of an image manifest (`blobs` of the draft artifact manifest land here too).
    pub layers: Vec<Descriptor>,
    /// Children of an index.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("Docker schema 1 manifests are not supported; push with a client that writes schema 2 or OCI manifests")]
    Schema1,
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest schemaVersion must be 2")]
    SchemaVersion,
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    #[error("manifest mediaType {body:?} does not match Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("image manifest must have a config descriptor")]
    MissingConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    blobs: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

impl Manifest {
    /// Parses and validates manifest bytes sent with `content_type` (may be empty).
    pub fn parse(bytes: &[u8], content_type: &str) -> Result<Manifest, ManifestError> {
        let header = content_type.split(';').next().unwrap_or("").trim();
        if header == media::DOCKER_SCHEMA1 || header == media::DOCKER_SCHEMA1_SIGNED {
            return Err(ManifestError::Schema1);
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        if raw.fs_layers.is_some() || raw.schema_version.as_ref().and_then(|v| v.as_i64()) == Some(1) {
            return Err(ManifestError::Schema1);
        }
        match raw.schema_version.as_ref().and_then(|v| v.as_i64()) {
            Some(2) => {}
            _ => return Err(ManifestError::SchemaVersion),
        }
        let media_type = match (&raw.media_type, header) {
            (Some(body), h) if !h.is_empty() && h != "application/json" && body != h => {
                return Err(ManifestError::MediaTypeMismatch { body: body.clone(), header: h.to_string() });
            }
            (Some(body), _) => body.clone(),
            (None, h) if media::is_manifest(h) => h.to_string(),
            (None, _) if raw.manifests.is_some() => media::OCI_INDEX.to_string(),
            (None, _) => media::OCI_MANIFEST.to_string(),
        };
        if !media::is_manifest(&media_type) {
            return Err(ManifestError::MediaType(media_type));
        }
        let kind = if media::is_index(&media_type) { ManifestKind::Index } else { ManifestKind::Image };
        if kind == ManifestKind::Image && raw.config.is_none() {
            return Err(ManifestError::MissingConfig);
        }
        let mut layers = raw.layers.unwrap_or_default();
        layers.extend(raw.blobs.unwrap_or_default());
        Ok(Manifest {
            media_type,
            kind,
            config: raw.config,
            layers,
            manifests: raw.manifests.unwrap_or_default(),
            subject: raw.subject,
            artifact_type: raw.artifact_type,
            annotations: raw.annotations,
        })
    }

    /// Blobs this manifest needs to exist in the repository (config and layers).
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter())
    }

    /// The artifact type as the referrers API reports it: `artifactType`, else the
    /// config media type of an image manifest.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| if self.kind == ManifestKind::Image { self.config.as_ref().map(|c| c.media_type.as_str()) } else { None })
    }
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.media_type == other.media_type
            && self.config == other.config
            && self.layers == other.layers
            && self.manifests == other.manifests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{D}","size":0}},"layers":[{{"mediaType":"x","digest":"{D}","size":0}}]{extra}}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG
        )
    }

    #[test]
    fn parses_image_with_subject() {
        let body = image(&format!(r#","subject":{{"mediaType":"{}","digest":"{D}","size":2}},"artifactType":"a/b""#, media::OCI_MANIFEST));
        let m = Manifest::parse(body.as_bytes(), media::OCI_MANIFEST).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.blobs().count(), 2);
        assert_eq!(m.subject.unwrap().size, 2);
        assert_eq!(m.artifact_type.as_deref(), Some("a/b"));
    }

    #[test]
    fn infers_type_and_reads_index() {
        let body = format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{D}","size":1}}]}}"#, media::OCI_MANIFEST);
        let m = Manifest::parse(body.as_bytes(), "").unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(m.media_type, media::OCI_INDEX);
        assert_eq!(m.manifests.len(), 1);
    }

    #[test]
    fn refuses_bad_manifests() {
        assert_eq!(Manifest::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, ""), Err(ManifestError::Schema1));
        assert_eq!(Manifest::parse(b"{}", media::DOCKER_SCHEMA1_SIGNED), Err(ManifestError::Schema1));
        assert!(matches!(Manifest::parse(b"{not json", ""), Err(ManifestError::Json(_))));
        assert_eq!(Manifest::parse(br#"{"schemaVersion":2}"#, ""), Err(ManifestError::MissingConfig));
        assert!(matches!(Manifest::parse(image("").as_bytes(), media::DOCKER_MANIFEST), Err(ManifestError::MediaTypeMismatch { .. })));
        let bad_digest = image("").replace(D, "sha256:abc");
        assert!(matches!(Manifest::parse(bad_digest.as_bytes(), ""), Err(ManifestError::Json(_))));
    }
}
