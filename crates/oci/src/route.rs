//! `/v2` route parsing: one function turns a method and path into a `Route`.
//!
//! Repository names contain slashes, so a path is read from its end: the last
//! segments decide the endpoint and everything before them is the name.

use crate::digest::Digest;
use crate::name::{NameError, Reference, RepoName};

/// Every `/v2` endpoint of the OCI Distribution Spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    ListTags { name: RepoName },
    GetManifest { name: RepoName, reference: Reference, head: bool },
    PutManifest { name: RepoName, reference: Reference },
    DeleteManifest { name: RepoName, reference: Reference },
    GetBlob { name: RepoName, digest: Digest, head: bool },
    DeleteBlob { name: RepoName, digest: Digest },
    StartUpload { name: RepoName },
    UploadStatus { name: RepoName, id: String },
    PatchUpload { name: RepoName, id: String },
    PutUpload { name: RepoName, id: String },
    CancelUpload { name: RepoName, id: String },
    Referrers { name: RepoName, digest: Digest },
}

/// Why a path is not a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed,
    Name(NameError),
}

impl From<NameError> for RouteError {
    fn from(e: NameError) -> Self {
        RouteError::Name(e)
    }
}

impl Route {
    /// The repository a route addresses, if any.
    pub fn name(&self) -> Option<&RepoName> {
        use Route::*;
        match self {
            Base | Catalog => None,
            ListTags { name }
            | GetManifest { name, .. }
            | PutManifest { name, .. }
            | DeleteManifest { name, .. }
            | GetBlob { name, .. }
            | DeleteBlob { name, .. }
            | StartUpload { name }
            | UploadStatus { name, .. }
            | PatchUpload { name, .. }
            | PutUpload { name, .. }
            | CancelUpload { name, .. }
            | Referrers { name, .. } => Some(name),
        }
    }

    /// Whether the route changes the repository (needs push), as opposed to reading it.
    pub fn writes(&self) -> bool {
        use Route::*;
        matches!(
            self,
            PutManifest { .. } | StartUpload { .. } | UploadStatus { .. } | PatchUpload { .. } | PutUpload { .. } | CancelUpload { .. }
        )
    }

    /// Whether the route deletes content (needs delete).
    pub fn deletes(&self) -> bool {
        matches!(self, Route::DeleteManifest { .. } | Route::DeleteBlob { .. })
    }

    /// Parses `method` and `path` (without query string).
    pub fn parse(method: &str, path: &str) -> Result<Route, RouteError> {
        let rest = path.strip_prefix("/v2").ok_or(RouteError::NotFound)?;
        let is_get = method == "GET";
        let head = method == "HEAD";
        if rest.is_empty() || rest == "/" {
            return if is_get || head { Ok(Route::Base) } else { Err(RouteError::MethodNotAllowed) };
        }
        let rest = rest.strip_prefix('/').ok_or(RouteError::NotFound)?;
        if rest == "_catalog" {
            return if is_get { Ok(Route::Catalog) } else { Err(RouteError::MethodNotAllowed) };
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let name_of = |k: usize| -> Result<RepoName, RouteError> {
            if k == 0 {
                return Err(RouteError::NotFound);
            }
            Ok(segs[..k].join("/").parse()?)
        };
        if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
            let name = name_of(n - 2)?;
            return if is_get || head { Ok(Route::ListTags { name }) } else { Err(RouteError::MethodNotAllowed) };
        }
        if n >= 3 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
            let name = name_of(n - 3)?;
            let id = segs[n - 1];
            if id.is_empty() {
                return if method == "POST" { Ok(Route::StartUpload { name }) } else { Err(RouteError::MethodNotAllowed) };
            }
            let id = id.to_string();
            return match method {
                "GET" => Ok(Route::UploadStatus { name, id }),
                "PATCH" => Ok(Route::PatchUpload { name, id }),
                "PUT" => Ok(Route::PutUpload { name, id }),
                "DELETE" => Ok(Route::CancelUpload { name, id }),
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
            let name = name_of(n - 2)?;
            return if method == "POST" { Ok(Route::StartUpload { name }) } else { Err(RouteError::MethodNotAllowed) };
        }
        if n >= 3 && segs[n - 2] == "manifests" {
            let name = name_of(n - 2)?;
            let reference: Reference = segs[n - 1].parse()?;
            return match method {
                "GET" | "HEAD" => Ok(Route::GetManifest { name, reference, head }),
                "PUT" => Ok(Route::PutManifest { name, reference }),
                "DELETE" => Ok(Route::DeleteManifest { name, reference }),
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        if n >= 3 && segs[n - 2] == "blobs" {
            let name = name_of(n - 2)?;
            let digest: Digest = segs[n - 1].parse().map_err(NameError::from)?;
            return match method {
                "GET" | "HEAD" => Ok(Route::GetBlob { name, digest, head }),
                "DELETE" => Ok(Route::DeleteBlob { name, digest }),
                _ => Err(RouteError::MethodNotAllowed),
            };
        }
        if n >= 3 && segs[n - 2] == "referrers" {
            let name = name_of(n - 2)?;
            let digest: Digest = segs[n - 1].parse().map_err(NameError::from)?;
            return if is_get || head { Ok(Route::Referrers { name, digest }) } else { Err(RouteError::MethodNotAllowed) };
        }
        Err(RouteError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(Route::parse("GET", "/v2/"), Ok(Route::Base));
        assert_eq!(Route::parse("GET", "/v2"), Ok(Route::Base));
        assert_eq!(Route::parse("GET", "/v2/_catalog"), Ok(Route::Catalog));
        let name: RepoName = "library/a/manifests".parse().unwrap();
        assert_eq!(
            Route::parse("PUT", "/v2/library/a/manifests/manifests/v1"),
            Ok(Route::PutManifest { name: name.clone(), reference: "v1".parse().unwrap() })
        );
        assert!(matches!(Route::parse("HEAD", &format!("/v2/p/r/blobs/{D}")), Ok(Route::GetBlob { head: true, .. })));
        assert!(matches!(Route::parse("POST", "/v2/p/r/blobs/uploads/"), Ok(Route::StartUpload { .. })));
        assert!(matches!(Route::parse("POST", "/v2/p/r/blobs/uploads"), Ok(Route::StartUpload { .. })));
        assert!(matches!(Route::parse("PATCH", "/v2/p/r/blobs/uploads/abc"), Ok(Route::PatchUpload { .. })));
        assert!(matches!(Route::parse("GET", "/v2/p/r/tags/list"), Ok(Route::ListTags { .. })));
        assert!(matches!(Route::parse("GET", &format!("/v2/p/r/referrers/{D}")), Ok(Route::Referrers { .. })));
    }

    #[test]
    fn refuses_bad_paths() {
        assert_eq!(Route::parse("GET", "/v3/"), Err(RouteError::NotFound));
        assert_eq!(Route::parse("POST", "/v2/p/r/manifests/v1"), Err(RouteError::MethodNotAllowed));
        assert!(matches!(Route::parse("GET", "/v2/P/r/manifests/v1"), Err(RouteError::Name(NameError::Repository))));
        assert!(matches!(Route::parse("GET", "/v2/p/r/manifests/-v1"), Err(RouteError::Name(NameError::Tag))));
        assert!(matches!(Route::parse("GET", "/v2/p/r/blobs/sha256:00"), Err(RouteError::Name(NameError::Digest(_)))));
        assert_eq!(Route::parse("GET", "/v2/p/r/other"), Err(RouteError::NotFound));
    }
}
