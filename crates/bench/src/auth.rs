//! Registry authentication as docker clients do it: parse the
//! `WWW-Authenticate` challenge, run the Bearer token flow against the realm
//! (Basic credentials if given), and cache tokens per scope set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::Url;
use tokio::sync::OnceCell;

/// What the registry asked for.
#[derive(Clone, Debug)]
pub enum Challenge {
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

/// Parse a `WWW-Authenticate` value; the realm is resolved against `base`.
pub fn parse_challenge(value: &str, base: &Url) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    let realm = base.join(params.get("realm")?).ok()?;
    Some(Challenge::Bearer { realm, service: params.get("service").cloned() })
}

/// `key="value",key2=value2` → map (keys lower-cased).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (val, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, val.to_string());
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Token cache keyed by the scope set; concurrent misses for the same key
/// share one token request.
#[derive(Default)]
pub struct Tokens {
    map: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
}

impl Tokens {
    pub fn cell(&self, key: &str) -> Arc<OnceCell<String>> {
        let mut map = self.map.lock().expect("token cache poisoned");
        map.entry(key.to_string()).or_default().clone()
    }

    /// Drop `cell` if it is still the cached entry for `key`.
    pub fn invalidate(&self, key: &str, cell: &Arc<OnceCell<String>>) {
        let mut map = self.map.lock().expect("token cache poisoned");
        if map.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            map.remove(key);
        }
    }
}

/// Ask the realm for a token covering `scopes`.
pub async fn fetch_token(
    http: &reqwest::Client,
    realm: &Url,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&(String, String)>,
) -> Result<String, String> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = service {
        query.push(("service", s));
    }
    for s in scopes {
        query.push(("scope", s));
    }
    let mut rb = http.get(realm.clone()).query(&query);
    if let Some((u, p)) = creds {
        rb = rb.basic_auth(u, Some(p));
    }
    let resp = rb.send().await.map_err(|e| format!("token request: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("token request: HTTP {status}: {}", clip(&body)));
    }
    let v: serde_json::Value = resp.json().await.map_err(|e| format!("token answer: {e}"))?;
    ["token", "access_token"]
        .iter()
        .find_map(|k| v.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
        .map(str::to_string)
        .ok_or_else(|| "token answer has neither token nor access_token".to_string())
}

/// First 200 characters of an error body.
pub fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer() {
        let base = Url::parse("http://127.0.0.1:5000/").unwrap();
        let c = parse_challenge(r#"Bearer realm="http://127.0.0.1:5000/service/token",service="berth",scope="x:y:pull""#, &base).unwrap();
        match c {
            Challenge::Bearer { realm, service } => {
                assert_eq!(realm.as_str(), "http://127.0.0.1:5000/service/token");
                assert_eq!(service.as_deref(), Some("berth"));
            }
            _ => panic!("not bearer"),
        }
        assert!(matches!(parse_challenge(r#"Basic realm="x""#, &base), Some(Challenge::Basic)));
    }
}
