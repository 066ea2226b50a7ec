//! Business rules of the registry, one file per aggregate. Functions here take
//! validated protocol types, talk to `meta` and `blob`, and return domain errors;
//! they know nothing of HTTP. Authorization has been decided before they run.

pub mod artifacts;
pub mod blobs;
pub mod labels;
pub mod manifests;
pub mod members;
pub mod projects;
pub mod pulls;
pub mod robots;
pub mod tokens;
pub mod uploads;
pub mod users;
