//! `App`: everything a request handler needs, built once at start and shared.

use crate::auth::Auth;
use crate::blob::BlobStore;
use crate::config::Config;
use crate::domain::uploads::Hashers;
use crate::meta::Meta;
use std::sync::Arc;

/// Shared state of one Berth process.
pub struct App {
    pub config: Config,
    pub meta: Meta,
    pub blobs: BlobStore,
    pub auth: Auth,
    /// Running hashes of upload sessions in progress on this node.
    pub hashers: Hashers,
    /// Key that signs upload session ids (derived from the shared signing key).
    pub upload_key: [u8; 32],
    /// Pulls not yet written to the database.
    pub pulls: crate::domain::pulls::Pulls,
}

/// The handle handlers receive.
pub type AppState = Arc<App>;
