//! Authentication: password hashing, Basic credential checks (cached), registry
//! tokens, and the access policy (`policy::allows`).
//!
//! Invariants: passwords are stored only as argon2 hashes; argon2 runs on the
//! blocking pool with bounded concurrency (in all, and two at a time per client address,
//! each looking at that address's budget again when its turn comes); a verified Basic credential is cached
//! under a keyed hash (never in clear) for a short time; no secret is logged.
//!
//! Credential guessing is slowed per client address and per (account, client address)
//! (`throttle`), never by locking an account for everyone: every check of a password, robot
//! secret or personal access token is admitted there first, and a refused attempt is answered
//! like a wrong password (401) without being checked. Each wrong credential that was checked
//! writes one audit row (operation `login`, resource type `user`, failed; Harbor's
//! `login_user` event) with the client's address and user agent, never the secret. The
//! counters live in memory on each node (like the credential cache): with several nodes behind
//! a load balancer each node counts on its own, while the audit rows, in the shared database,
//! record every failure.
//!
//! Revocation: a cached credential is only used while its user's access version is the one it
//! was cached with (`versions`, read from the database at most once a second per user), so a
//! change on any node reaches the caches of every node within about a second.

pub mod policy;
pub mod throttle;
pub mod token;
pub mod versions;

use crate::error::{Error, Result};
use crate::meta::{Audit, Meta, UserRow};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use policy::Principal;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a verified Basic credential is trusted without argon2.
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(60);
const CREDENTIAL_CACHE_MAX: usize = 10_000;
/// Password checks one client address may have running at once; the rest wait their turn.
const ARGON_PER_ADDRESS: usize = 2;
/// Addresses with password checks in progress tracked at most (idle ones are dropped first).
const ARGON_ADDRESSES_MAX: usize = 10_000;

pub use throttle::LoginThrottle;
use versions::{Holder, Versions};

/// Authentication state shared by all requests.
pub struct Auth {
    pub tokens: token::TokenKeys,
    cache_key: [u8; 32],
    /// Verified passwords: the principal, when, and the user's access version then.
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant, i64)>>,
    argon: Semaphore,
    /// Password checks (argon2) run one address at most `ARGON_PER_ADDRESS` at a time.
    argon_by_address: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
    /// Failed credential checks per client address and per (account, address), on this node only.
    throttle: Mutex<throttle::Throttle>,
    /// Users' and robots' access versions as last read.
    pub versions: Versions,
}

/// Where a login attempt comes from, for the audit row of a failure.
#[derive(Clone, Debug, Default)]
pub struct LoginFrom {
    pub client_ip: String,
    pub user_agent: String,
}

impl LoginFrom {
    /// The client's address; one shared "unknown" address when it has none.
    fn addr(&self) -> IpAddr {
        self.client_ip.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
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
        Ok(Auth {
            tokens,
            cache_key,
            cache: Mutex::new(HashMap::new()),
            argon: Semaphore::new(permits),
            argon_by_address: Mutex::new(HashMap::new()),
            throttle: Mutex::new(throttle::Throttle::default()),
            versions: Versions::default(),
        })
    }

    /// Replaces how failed credential checks are slowed down (tests use short cool-downs).
    pub fn set_login_throttle(&self, policy: LoginThrottle) {
        self.throttle.lock().expect("throttle lock").policy = policy;
    }

    fn name_slot(&self, username: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.cache_key);
        h.update(b"failed-login");
        h.update(username.as_bytes());
        h.finalize().into()
    }

    /// Whether a credential check for `username` from this client may run now (nothing is
    /// charged until a check fails: `login_failed`). A refused attempt must be answered as a
    /// wrong credential, without checking it.
    pub fn admit(&self, from: &LoginFrom, username: &str) -> bool {
        let refused = self.throttle.lock().expect("throttle lock").admit(from.addr(), self.name_slot(username), Instant::now());
        if let Err(why) = refused {
            tracing::debug!(client = %from.client_ip, ?why, "credential check refused: too many failures");
        }
        refused.is_ok()
    }

    /// A check `admit` let through succeeded.
    pub fn login_succeeded(&self, from: &LoginFrom, username: &str) {
        self.throttle.lock().expect("throttle lock").succeeded(from.addr(), self.name_slot(username));
    }

    /// Records a wrong credential that was checked in the audit log (one insert).
    pub async fn login_failed(&self, meta: &Meta, username: &str, from: &LoginFrom) {
        let cooling = self.throttle.lock().expect("throttle lock").failed(from.addr(), self.name_slot(username), Instant::now());
        let name: String = username.chars().take(255).collect();
        if let Some(cooldown) = cooling {
            let secs = cooldown.as_secs_f64();
            tracing::warn!(username = %name, client = %from.client_ip, cooldown_secs = secs, "repeated failed logins: refusing this user name from this client for a while");
        }
        let a = Audit {
            operator: name.clone(),
            resource: name,
            resource_type: "user",
            operation: "login",
            client_ip: from.client_ip.clone(),
            user_agent: from.user_agent.clone(),
            ..Default::default()
        };
        if let Err(e) = meta.record(&a, false).await {
            tracing::error!("cannot record a failed login: {e}");
        }
    }

    fn cache_slot(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.cache_key);
        h.update((username.len() as u64).to_le_bytes());
        h.update(username.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Checks a username and password; `Ok(None)` when they are wrong, or when this client
    /// is being slowed down (then the password is not even checked).
    pub async fn verify_password(&self, meta: &Meta, username: &str, password: &str, from: &LoginFrom) -> Result<Option<Principal>> {
        Ok(self.verify_password_from(meta, username, password, from).await?.map(|(p, _)| p))
    }

    /// `verify_password`, with the user's access version read with the user (for the tokens
    /// issued on the strength of this check).
    pub async fn verify_password_from(
        &self,
        meta: &Meta,
        username: &str,
        password: &str,
        from: &LoginFrom,
    ) -> Result<Option<(Principal, i64)>> {
        if !self.admit(from, username) {
            return Ok(None);
        }
        let slot = self.cache_slot(username, password);
        let cached = self
            .cache
            .lock()
            .expect("cache lock")
            .get(&slot)
            .filter(|(_, at, _)| at.elapsed() < CREDENTIAL_CACHE_TTL)
            .map(|(p, _, v)| (p.clone(), *v));
        if let Some((p, version)) = cached {
            let id = p.user_id().unwrap_or_default();
            if self.versions.current(meta, Holder::User(id)).await? == Some(version) {
                self.login_succeeded(from, username);
                return Ok(Some((p, version)));
            }
            // Changed since (on any node): check afresh.
            self.cache.lock().expect("cache lock").remove(&slot);
        }
        // One address's password checks run a few at a time, so the argon2 work an address
        // causes is bounded at every moment; a check that waited looks again at the budget
        // (failures meanwhile may have spent it) and at the cache (a success meanwhile may have
        // filled it, as when many jobs behind one address log in at once).
        let _turn = self.argon_turn(from.addr()).await?;
        if !self.admit(from, username) {
            return Ok(None);
        }
        let cached = self.cache.lock().expect("cache lock").get(&slot).filter(|(_, at, _)| at.elapsed() < CREDENTIAL_CACHE_TTL).cloned();
        if let Some((p, _, version)) = cached
            && self.versions.current(meta, Holder::User(p.user_id().unwrap_or_default())).await? == Some(version)
        {
            self.login_succeeded(from, username);
            return Ok(Some((p, version)));
        }
        let Some(user) = meta.user_by_name(username).await? else {
            // Spend the same work as a real check so that timing does not reveal which names exist.
            let _ = self.argon_verify(DUMMY_HASH.to_string(), password.to_owned()).await;
            self.login_failed(meta, username, from).await;
            return Ok(None);
        };
        let UserRow { id, username: name, password_hash, sysadmin, access_version } = user;
        if !self.argon_verify(password_hash, password.to_owned()).await? {
            self.login_failed(meta, &name, from).await;
            return Ok(None);
        }
        self.login_succeeded(from, username);
        let principal = Principal::User { id, name, sysadmin };
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CREDENTIAL_CACHE_MAX {
            cache.retain(|_, (_, at, _)| at.elapsed() < CREDENTIAL_CACHE_TTL);
            if cache.len() >= CREDENTIAL_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(slot, (principal.clone(), Instant::now(), access_version));
        Ok(Some((principal, access_version)))
    }

    /// Forgets every cached credential and access version (after a password, account or role
    /// change on this node; other nodes notice within a second through the versions).
    pub fn forget_credentials(&self) {
        self.cache.lock().expect("cache lock").clear();
        self.versions.forget();
    }

    /// Waits for a turn to check a password from `addr` (at most `ARGON_PER_ADDRESS` at once).
    async fn argon_turn(&self, addr: IpAddr) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let gate = {
            let mut gates = self.argon_by_address.lock().expect("argon gates lock");
            if gates.len() >= ARGON_ADDRESSES_MAX && !gates.contains_key(&throttle::address_key(addr)) {
                // Gates nobody holds or waits for are idle.
                gates.retain(|_, g| Arc::strong_count(g) > 1);
            }
            gates.entry(throttle::address_key(addr)).or_insert_with(|| Arc::new(Semaphore::new(ARGON_PER_ADDRESS))).clone()
        };
        gate.acquire_owned().await.map_err(Error::internal)
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
