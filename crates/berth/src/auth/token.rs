//! Docker registry tokens: signed JWTs carrying the `access` claim.
//!
//! Tokens are HS256-signed with a key kept in the metadata database, so every
//! node signs and verifies with the same key; only the registry verifies them.
//! A token names its holder and the holder's access version when it was issued
//! (`berth_holder`); `/v2` refuses it once that version has moved on (`auth::versions`).
//! Tokens without it (issued by Berth before it recorded versions) are refused too: clients
//! answer the 401 by asking for a new token.

use crate::error::{Error, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "harbor-token-issuer";

/// One entry of the `access` claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<Access>,
    #[serde(default, rename = "berth_holder", skip_serializing_if = "Option::is_none")]
    pub holder: Option<TokenHolder>,
}

/// Who a token was issued to and the holder's access version at the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TokenHolder {
    /// Anonymous callers hold nothing that can be revoked.
    Anonymous,
    User {
        id: i64,
        version: i64,
    },
    Robot {
        id: i64,
        version: i64,
    },
}

impl Claims {
    /// Whether the token grants `action` on `kind:name`.
    pub fn grants(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| a.kind == kind && a.name == name && a.actions.iter().any(|x| x == action || x == "*"))
    }
}

/// Signing and verification keys.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub service: String,
    pub expiry: u64,
}

fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl TokenKeys {
    pub fn new(secret: &[u8], service: &str, expiry: u64) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[service]);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 1;
        validation.validate_nbf = true;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            service: service.to_string(),
            expiry,
        }
    }

    /// Issues a token for `subject`; returns it with its issue time (seconds).
    pub fn issue(&self, subject: &str, access: Vec<Access>, holder: TokenHolder) -> Result<(String, u64)> {
        let now = now_s();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: subject.into(),
            aud: self.service.clone(),
            exp: now + self.expiry,
            nbf: now.saturating_sub(1),
            iat: now,
            jti: super::random_secret(12)?,
            access,
            holder: Some(holder),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)?;
        Ok((token, now))
    }

    /// Verifies signature, audience, issuer and expiry.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok().map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "harbor-registry", 60);
        let access = vec![Access { kind: "repository".into(), name: "library/a".into(), actions: vec!["pull".into()] }];
        let holder = TokenHolder::User { id: 7, version: 3 };
        let (t, _) = keys.issue("alice", access, holder).unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!(c.holder, Some(holder));
        assert!(c.grants("repository", "library/a", "pull"));
        assert!(!c.grants("repository", "library/a", "push"));
        assert!(!c.grants("repository", "library/b", "pull"));
        let other = TokenKeys::new(b"another-key-another-key-another!!", "harbor-registry", 60);
        assert!(other.verify(&t).is_none());
        let other_service = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "elsewhere", 60);
        assert!(other_service.verify(&t).is_none());
        let now = now_s();
        let stale = Claims {
            iss: ISSUER.into(),
            sub: "a".into(),
            aud: "harbor-registry".into(),
            exp: now - 100,
            nbf: now - 200,
            iat: now - 200,
            jti: "x".into(),
            access: vec![],
            holder: None,
        };
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &stale, &keys.encoding).unwrap();
        assert!(keys.verify(&t).is_none());
    }
}
