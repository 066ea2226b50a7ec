//! What an artifact is, as Harbor shows it: its type (IMAGE, CHART, ...), the extra attributes
//! read from its config, whether it is an accessory of another artifact, and its additions
//! (build history; a chart's README, values and dependencies).
//!
//! Facts are decided once, when the manifest is pushed, and stored with it, so lists never
//! read blobs. Additions are read from the blobs on request.

use crate::app::App;
use crate::error::{Error, Result};
use crate::meta::Audit;
use oci::{Digest, Manifest, Reference, RepoName, media};
use serde_json::{Map, Value, json};
use std::io::Read;

/// Configs larger than this are not read for extra attributes.
const MAX_CONFIG: u64 = 1 << 20;
/// Chart archives larger than this are not opened for additions.
const MAX_CHART: u64 = 64 << 20;
/// The largest file an addition returns from a chart.
const MAX_CHART_FILE: u64 = 4 << 20;

const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
const HARBOR_SBOM: &str = "application/vnd.goharbor.harbor.sbom.v1";
const CNAB_CONFIG: &str = "application/vnd.cnab.config.v1+json";
const WASM_CONFIGS: [&str; 2] = ["application/vnd.wasm.config.v1+json", "application/vnd.module.wasm.config.v1+json"];
const NYDUS_ANNOTATION: &str = "io.goharbor.artifact.v1alpha1.acceleration.driver.name";

fn is_sbom(media_type: &str) -> bool {
    let m = media_type.to_ascii_lowercase();
    m == HARBOR_SBOM || m.contains("spdx") || m.contains("cyclonedx") || m.contains("syft")
}

fn is_signature(media_type: &str) -> bool {
    media_type == COSIGN_SIMPLESIGNING || media_type == COSIGN_SIG_ARTIFACT || media_type == NOTATION_SIGNATURE
}

/// Harbor's artifact type: IMAGE, CHART, CNAB, WASM, SIGNATURE, SBOM, or the artifact type
/// (or config media type) of anything else.
pub fn kind(m: &Manifest) -> String {
    let config = m.config.as_ref().map(|c| c.media_type.as_str());
    let declared = m.artifact_type.as_deref().or(config.filter(|c| *c != media::OCI_EMPTY));
    let types = declared.into_iter().chain(m.layers.iter().map(|l| l.media_type.as_str()));
    let all: Vec<&str> = types.collect();
    if all.iter().any(|t| is_signature(t)) {
        return "SIGNATURE".into();
    }
    if all.iter().any(|t| is_sbom(t)) {
        return "SBOM".into();
    }
    match declared {
        Some(media::HELM_CONFIG) => "CHART".into(),
        Some(CNAB_CONFIG) => "CNAB".into(),
        Some(t) if WASM_CONFIGS.contains(&t) => "WASM".into(),
        Some(media::OCI_CONFIG | media::DOCKER_CONFIG) | None => "IMAGE".into(),
        Some(t) => t.into(),
    }
}

/// The subject an accessory belongs to and the accessory's type, for a manifest with a `subject`.
pub fn accessory_of_subject(m: &Manifest) -> Option<(String, &'static str)> {
    let subject = m.subject.as_ref()?;
    let config = m.config.as_ref().map(|c| c.media_type.as_str());
    let declared = m.artifact_type.as_deref().or(config);
    let layers = m.layers.iter().map(|l| l.media_type.as_str());
    let all: Vec<&str> = declared.into_iter().chain(layers).collect();
    let kind = if all.contains(&NOTATION_SIGNATURE) {
        "signature.notation"
    } else if all.iter().any(|t| is_signature(t)) {
        "signature.cosign"
    } else if all.iter().any(|t| is_sbom(t)) {
        "harbor.sbom"
    } else if m.annotations.as_ref().is_some_and(|a| a.contains_key(NYDUS_ANNOTATION)) {
        "build.nydus"
    } else {
        "subject.accessory"
    };
    Some((subject.digest.to_string(), kind))
}

/// The subject and type of an accessory pushed under cosign's tag convention
/// (`sha256-<hex>.sig`, `.att`, `.sbom`).
pub fn accessory_of_tag(tag: &str) -> Option<(String, &'static str)> {
    let (stem, suffix) = tag.rsplit_once('.')?;
    let kind = match suffix {
        "sig" => "signature.cosign",
        "att" => "attestation.cosign",
        "sbom" => "sbom.cosign",
        _ => return None,
    };
    let (algorithm, hex) = stem.split_once('-')?;
    let digest: Digest = format!("{algorithm}:{hex}").parse().ok()?;
    Some((digest.to_string(), kind))
}

/// Harbor's `extra_attrs`, read from the config: for images architecture, os, created, author
/// and the runtime config; for charts the Chart.yaml fields; for other configs their JSON.
pub async fn extra_attrs(app: &App, m: &Manifest, kind: &str) -> Result<Option<String>> {
    let Some(config) = m.config.as_ref().filter(|c| c.media_type != media::OCI_EMPTY && c.size <= MAX_CONFIG) else {
        return Ok(None);
    };
    let Some(bytes) = app.blobs.read_small(&config.digest, MAX_CONFIG).await? else { return Ok(None) };
    let Ok(Value::Object(c)) = serde_json::from_slice::<Value>(&bytes) else { return Ok(None) };
    let attrs = if kind == "IMAGE" {
        let mut a = Map::new();
        for key in ["architecture", "os", "created", "author", "variant", "os.version"] {
            if let Some(v) = c.get(key).filter(|v| !v.is_null()) {
                a.insert(key.into(), v.clone());
            }
        }
        if let Some(v) = c.get("config").filter(|v| !v.is_null()) {
            a.insert("config".into(), v.clone());
        }
        Value::Object(a)
    } else {
        Value::Object(c)
    };
    Ok(Some(attrs.to_string()))
}

/// Copies an artifact (and, for an index, its children) from repository `from` into `to`
/// without moving bytes: links its blobs into `to` and stores the same manifest there, tagged
/// with `tag` when given. Returns the digest.
pub async fn copy(app: &App, from: &str, src: &crate::meta::ArtifactRow, to: &RepoName, tag: Option<&str>, audit: Audit) -> Result<Digest> {
    let m = Manifest::parse(&src.content, &src.media_type).map_err(|e| Error::Internal(format!("stored manifest does not parse: {e}")))?;
    let from_repo = app.meta.repository(from).await?.ok_or_else(|| Error::NotFound(format!("repository {from} not found")))?;
    for child in &m.manifests {
        let c = app
            .meta
            .artifact_by_digest(from_repo.id, &child.digest.to_string())
            .await?
            .ok_or_else(|| Error::NotFound(format!("manifest {} of the index is missing from {from}", child.digest)))?;
        Box::pin(copy(app, from, &c, to, None, audit.clone())).await?;
    }
    for b in m.blobs() {
        if !app.meta.link_blob(to.as_str(), &b.digest.to_string()).await? {
            return Err(Error::NotFound(format!("blob {} of the artifact is not stored", b.digest)));
        }
    }
    let reference = match tag {
        Some(t) => Reference::Tag(t.parse().map_err(|_| Error::Invalid(format!("invalid tag {t:?}")))?),
        None => Reference::Digest(src.digest.parse().map_err(Error::internal)?),
    };
    let stored = super::manifests::put(app, to, &reference, &src.media_type, &src.content, audit).await?;
    Ok(stored.digest)
}

/// The additions an artifact of this type has (for `addition_links`).
pub fn additions(kind: &str) -> &'static [&'static str] {
    match kind {
        "IMAGE" => &["build_history"],
        "CHART" => &["readme.md", "values.yaml", "dependencies"],
        _ => &[],
    }
}

/// One addition, with its content type: `build_history` of an image, or a chart's
/// `readme.md`, `values.yaml` and `dependencies`.
pub async fn addition(app: &App, content: &[u8], media_type: &str, kind: &str, name: &str) -> Result<(&'static str, Vec<u8>)> {
    if !additions(kind).contains(&name) {
        return Err(Error::NotFound(format!("addition {name} is not available for an artifact of type {kind}")));
    }
    let m = Manifest::parse(content, media_type).map_err(|e| Error::Internal(format!("stored manifest does not parse: {e}")))?;
    match name {
        "build_history" => {
            let config = config_json(app, &m).await?;
            let history = config.get("history").cloned().unwrap_or_else(|| json!([]));
            Ok(("application/json; charset=utf-8", serde_json::to_vec(&history).map_err(Error::internal)?))
        }
        "dependencies" => {
            let config = config_json(app, &m).await?;
            let deps = config.get("dependencies").cloned().unwrap_or_else(|| json!([]));
            Ok(("application/json; charset=utf-8", serde_json::to_vec(&deps).map_err(Error::internal)?))
        }
        "readme.md" | "values.yaml" => {
            let file = if name == "readme.md" { "README.md" } else { "values.yaml" };
            let layer = m
                .layers
                .iter()
                .find(|l| l.media_type == media::HELM_CHART)
                .ok_or_else(|| Error::NotFound("the chart has no chart archive layer".into()))?;
            if layer.size > MAX_CHART {
                return Err(Error::Unprocessable(format!("the chart archive is larger than {MAX_CHART} bytes")));
            }
            let archive = app
                .blobs
                .read_small(&layer.digest, MAX_CHART)
                .await?
                .ok_or_else(|| Error::NotFound("the chart archive is not in the store".into()))?;
            let found = tokio::task::spawn_blocking(move || chart_file(&archive, file)).await.map_err(Error::internal)??;
            let body = found.ok_or_else(|| Error::NotFound(format!("the chart has no {file}")))?;
            let ty = if name == "readme.md" { "text/markdown; charset=utf-8" } else { "text/plain; charset=utf-8" };
            Ok((ty, body))
        }
        _ => Err(Error::NotFound(format!("addition {name} is not available"))),
    }
}

async fn config_json(app: &App, m: &Manifest) -> Result<Value> {
    let Some(config) = m.config.as_ref() else { return Ok(json!({})) };
    let bytes = app
        .blobs
        .read_small(&config.digest, MAX_CONFIG)
        .await?
        .ok_or_else(|| Error::NotFound("the artifact's config is not available".into()))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Unprocessable(format!("the artifact's config is not JSON: {e}")))
}

/// A file at the top of a chart directory (`<chart>/<file>`) inside a gzipped tar archive.
fn chart_file(archive: &[u8], file: &str) -> Result<Option<Vec<u8>>> {
    let gz = flate2::read::GzDecoder::new(archive);
    let mut tar = tar::Archive::new(gz);
    let entries = tar.entries().map_err(|e| Error::Unprocessable(format!("the chart archive is not a tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Unprocessable(format!("the chart archive is damaged: {e}")))?;
        let path = entry.path().map_err(Error::internal)?.to_string_lossy().into_owned();
        let mut parts = path.trim_start_matches("./").splitn(2, '/');
        let (_, rest) = (parts.next(), parts.next());
        if rest == Some(file) {
            if entry.size() > MAX_CHART_FILE {
                return Err(Error::Unprocessable(format!("{file} in the chart is larger than {MAX_CHART_FILE} bytes")));
            }
            let mut out = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut out).map_err(|e| Error::Unprocessable(format!("the chart archive is damaged: {e}")))?;
            return Ok(Some(out));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(v: serde_json::Value) -> Manifest {
        Manifest::parse(&serde_json::to_vec(&v).unwrap(), media::OCI_MANIFEST).unwrap()
    }

    const D: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn kinds() {
        let m = |config: &str, layer: &str, at: Option<&str>| {
            let mut v = json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": config, "digest": D, "size": 2},
                "layers": [{"mediaType": layer, "digest": D, "size": 2}]});
            if let Some(a) = at {
                v["artifactType"] = json!(a);
            }
            kind(&manifest(v))
        };
        assert_eq!(m(media::OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+gzip", None), "IMAGE");
        assert_eq!(m(media::DOCKER_CONFIG, "application/vnd.docker.image.rootfs.diff.tar.gzip", None), "IMAGE");
        assert_eq!(m(media::HELM_CONFIG, media::HELM_CHART, None), "CHART");
        assert_eq!(m(CNAB_CONFIG, "x", None), "CNAB");
        assert_eq!(m("application/vnd.wasm.config.v1+json", "application/wasm", None), "WASM");
        assert_eq!(m(media::OCI_CONFIG, COSIGN_SIMPLESIGNING, None), "SIGNATURE");
        assert_eq!(m(media::OCI_EMPTY, "application/spdx+json", Some("application/spdx+json")), "SBOM");
        assert_eq!(m(media::OCI_EMPTY, "text/plain", Some("application/vnd.example.thing")), "application/vnd.example.thing");
        assert_eq!(m("application/vnd.example.config", "text/plain", None), "application/vnd.example.config");
    }

    #[test]
    fn cosign_tags() {
        let hex = &D[7..];
        assert_eq!(accessory_of_tag(&format!("sha256-{hex}.sig")), Some((D.to_string(), "signature.cosign")));
        assert_eq!(accessory_of_tag(&format!("sha256-{hex}.att")), Some((D.to_string(), "attestation.cosign")));
        assert_eq!(accessory_of_tag(&format!("sha256-{hex}.sbom")), Some((D.to_string(), "sbom.cosign")));
        assert_eq!(accessory_of_tag("v1.2"), None);
        assert_eq!(accessory_of_tag("sha256-abc.sig"), None);
        assert_eq!(accessory_of_tag(&format!("sha256-{hex}.tar")), None);
    }

    #[test]
    fn subjects() {
        let v = json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": NOTATION_SIGNATURE,
            "config": {"mediaType": media::OCI_EMPTY, "digest": D, "size": 2},
            "layers": [], "subject": {"mediaType": media::OCI_MANIFEST, "digest": D, "size": 10}});
        assert_eq!(accessory_of_subject(&manifest(v)), Some((D.to_string(), "signature.notation")));
        let v = json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": "application/vnd.example",
            "config": {"mediaType": media::OCI_EMPTY, "digest": D, "size": 2},
            "layers": [], "subject": {"mediaType": media::OCI_MANIFEST, "digest": D, "size": 10}});
        assert_eq!(accessory_of_subject(&manifest(v)), Some((D.to_string(), "subject.accessory")));
    }
}
