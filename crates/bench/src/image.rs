//! Small OCI test images (config blob, a few random KiB-sized layers, image
//! manifest) and pushing them the way docker does.

use bytes::Bytes;

use crate::client::{Registry, Res};
use crate::data::{self, XorShift};

pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// An in-memory blob and its digest.
#[derive(Clone)]
pub struct Small {
    pub data: Bytes,
    pub digest: String,
}

impl Small {
    pub fn new(data: Bytes) -> Self {
        let digest = data::digest_of(&data);
        Small { data, digest }
    }

    /// Random blob of `len` bytes.
    pub fn random(seed: u64, len: usize) -> Self {
        Small::new(data::small(seed, len))
    }
}

pub struct Image {
    pub config: Small,
    pub layers: Vec<Small>,
    pub manifest: Bytes,
    pub digest: String,
}

fn descriptor(media_type: &str, b: &Small) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": b.digest, "size": b.data.len()})
}

impl Image {
    /// An image made of the given layers and a config that names them.
    pub fn with_layers(layers: Vec<Small>, label: &str) -> Self {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"berth-bench": label}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = Small::new(Bytes::from(config.to_string()));
        Image::from_parts(config, layers)
    }

    /// An image from an existing config and layers.
    pub fn from_parts(config: Small, layers: Vec<Small>) -> Self {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::client::OCI_MANIFEST,
            "config": descriptor(CONFIG_TYPE, &config),
            "layers": layers.iter().map(|l| descriptor(LAYER_TYPE, l)).collect::<Vec<_>>(),
        });
        let manifest = Bytes::from(manifest.to_string());
        let digest = data::digest_of(&manifest);
        Image { config, layers, manifest, digest }
    }

    /// A unique image with `min..=max` random layers of 1–8 KiB.
    pub fn random(seed: u64, min: u64, max: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let n = rng.range(min, max);
        let layers = (0..n).map(|i| Small::random(data::seed(&[seed, i]), rng.range(1024, 8192) as usize)).collect();
        Image::with_layers(layers, &format!("{seed:016x}"))
    }

    /// Config first, then the layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Small> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }

    /// Push like docker: HEAD each blob, upload (POST+PUT) the missing ones,
    /// then PUT the manifest by tag. Returns the number of requests made.
    pub async fn push(&self, reg: &Registry, name: &str, tag: &str) -> Res<u64> {
        let mut requests = 1;
        for b in self.blobs() {
            requests += 1;
            if !reg.blob_exists(name, &b.digest).await? {
                reg.upload_small(name, &b.digest, &b.data).await?;
                requests += 2;
            }
        }
        reg.put_manifest(name, tag, &self.manifest).await?;
        Ok(requests)
    }
}
