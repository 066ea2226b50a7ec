//! Authentication: password hashing, Basic credential checks (cached), registry
//! tokens, and the access policy (`policy::allows`).
//!
//! Invariants: passwords are stored only as argon2 hashes; argon2 runs on the
//! blocking pool with bounded concurrency; a verified Basic credential is cached
//! under a keyed hash (never in clear) for a short time; no secret is logged.

pub mod policy;
pub mod token;

use crate::error::{Error, Result};
use crate::meta::{Meta, UserRow};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use policy::Principal;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a verified Basic credential is trusted without argon2.
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(60);
const CREDENTIAL_CACHE_MAX: usize = 10_000;

/// Authentication state shared by all requests.
pub struct Auth {
    pub tokens: token::TokenKeys,
    cache_key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
    argon: Semaphore,
}

/// Hashes a password with argon2id and a random salt.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(Error::internal)?;
        let salt = SaltString::encode_b64(&salt).map_err(Error::internal)?;
        argon2::Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

/// A random secret of `n` bytes, URL-safe base64 without padding.
pub fn random_secret(n: usize) -> Result<String> {
    use base64::Engine as _;
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(Error::internal)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

impl Auth {
    pub fn new(tokens: token::TokenKeys) -> Result<Auth> {
        let mut cache_key = [0u8; 32];
        getrandom::fill(&mut cache_key).map_err(Error::internal)?;
        let permits = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Auth { tokens, cache_key, cache: Mutex::new(HashMap::new()), argon: Semaphore::new(permits) })
    }

    fn cache_slot(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.cache_key);
        h.update((username.len() as u64).to_le_bytes());
        h.update(username.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Checks a username and password; `Ok(None)` when they are wrong.
    pub async fn verify_password(&self, meta: &Meta, username: &str, password: &str) -> Result<Option<Principal>> {
        let slot = self.cache_slot(username, password);
        if let Some((p, at)) = self.cache.lock().expect("cache lock").get(&slot)
            && at.elapsed() < CREDENTIAL_CACHE_TTL
        {
            return Ok(Some(p.clone()));
        }
        let Some(user) = meta.user_by_name(username).await? else {
            // Spend the same work as a real check so that timing does not reveal which names exist.
            let _ = self.argon_verify(DUMMY_HASH.to_string(), password.to_owned()).await;
            return Ok(None);
        };
        let UserRow { id, username, password_hash, sysadmin } = user;
        if !self.argon_verify(password_hash, password.to_owned()).await? {
            return Ok(None);
        }
        let principal = Principal::User { id, name: username, sysadmin };
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CREDENTIAL_CACHE_MAX {
            cache.retain(|_, (_, at)| at.elapsed() < CREDENTIAL_CACHE_TTL);
            if cache.len() >= CREDENTIAL_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(slot, (principal.clone(), Instant::now()));
        Ok(Some(principal))
    }

    /// Forgets every cached credential (after a password, account or role change).
    pub fn forget_credentials(&self) {
        self.cache.lock().expect("cache lock").clear();
    }

    async fn argon_verify(&self, hash: String, password: String) -> Result<bool> {
        let _permit = self.argon.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else { return false };
            argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
        })
        .await
        .map_err(Error::internal)
    }
}

/// An argon2id hash of a random password, verified against when a user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$6tPpSn3h0yS3TsFkKoqDtVRNJWAuVY1wE0ZDLs2ZOPM";
