//! The OCI Distribution protocol, with no I/O: digests and streaming hashers,
//! repository names, tags and references, media types, manifest parsing and
//! validation, `/v2` route parsing, and the spec's error codes.
//!
//! Invariant: every value of a newtype here has been validated; code that holds a
//! `Digest`, `RepoName` or `Tag` never checks it again.

pub mod digest;
pub mod error;
pub mod manifest;
pub mod media;
pub mod name;
pub mod route;

pub use digest::{Algorithm, Digest, Hasher};
pub use error::ErrorCode;
pub use manifest::{Descriptor, Manifest, ManifestError, ManifestKind};
pub use name::{NameError, Reference, RepoName, Tag};
pub use route::Route;
