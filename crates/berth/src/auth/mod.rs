//! Authentication: password hashing, Basic credential checks (cached), registry
//! tokens, and the access policy (`policy::allows`).
//!
//! Invariants: passwords are stored only as argon2 hashes; argon2 runs on the
//! blocking pool with bounded concurrency; a verified Basic credential is cached
//! under a keyed hash (never in clear) for a short time; no secret is logged.
//!
//! Failed logins are slowed down per user name: after `LoginThrottle::max_failures` wrong
//! passwords within `window`, every attempt for that name is refused, without checking the
//! password, for a cool-down that doubles with each consecutive lock-out up to
//! `max_cooldown`. Each wrong password writes one audit row (operation `login`, resource type
//! `user`, failed; Harbor's `login_user` event) with the client's address and user agent, never
//! the password. The counters live
//! in memory on each node (like the credential cache): with several nodes behind a load
//! balancer each node counts on its own, so an attacker gets up to one allowance per node,
//! while the audit rows, in the shared database, record every failure.

pub mod policy;
pub mod token;

use crate::error::{Error, Result};
use crate::meta::{Audit, Meta, UserRow};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use policy::Principal;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a verified Basic credential is trusted without argon2.
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(60);
const CREDENTIAL_CACHE_MAX: usize = 10_000;
/// How many user names the failed-login counters track at most.
const FAILED_LOGINS_MAX: usize = 10_000;

/// Authentication state shared by all requests.
pub struct Auth {
    pub tokens: token::TokenKeys,
    cache_key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
    argon: Semaphore,
    /// Failed Basic logins per user name, on this node only.
    failed_logins: Mutex<FailedLogins>,
}

/// Where a login attempt comes from, for the audit row of a failure.
#[derive(Clone, Debug, Default)]
pub struct LoginFrom {
    pub client_ip: String,
    pub user_agent: String,
}

/// How repeated failed logins for one user name are slowed down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Wrong passwords within `window` that start a lock-out.
    pub max_failures: usize,
    pub window: Duration,
    /// The first lock-out; each consecutive one doubles it.
    pub cooldown: Duration,
    pub max_cooldown: Duration,
}

impl Default for LoginThrottle {
    /// 5 failures within 5 minutes lock the name for 30 s, then 1, 2, 4 and at most 5 minutes.
    fn default() -> LoginThrottle {
        LoginThrottle {
            max_failures: 5,
            window: Duration::from_secs(300),
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(300),
        }
    }
}

#[derive(Default)]
struct FailedLogins {
    policy: LoginThrottle,
    /// Keyed by a keyed hash of the user name: the memory per entry is bounded whatever the name.
    by_name: HashMap<[u8; 32], Failures>,
}

/// Whether an entry no longer matters: not locked and quiet for longer than any cool-down.
fn stale(policy: &LoginThrottle, f: &Failures, now: Instant) -> bool {
    f.locked_until.is_none_or(|until| until <= now) && now.duration_since(f.last_failure) > policy.window + policy.max_cooldown
}

struct Failures {
    /// Wrong passwords inside the window, oldest first.
    recent: VecDeque<Instant>,
    locked_until: Option<Instant>,
    /// Consecutive lock-outs so far: the next one lasts `cooldown * 2^lockouts`.
    lockouts: u32,
    last_failure: Instant,
}

impl FailedLogins {
    fn locked(&self, key: &[u8; 32], now: Instant) -> bool {
        self.by_name.get(key).and_then(|f| f.locked_until).is_some_and(|until| now < until)
    }

    /// Counts a wrong password; returns the cool-down when this failure starts a lock-out.
    fn note_failure(&mut self, key: [u8; 32], now: Instant) -> Option<Duration> {
        let policy = self.policy;
        if !self.by_name.contains_key(&key) && self.by_name.len() >= FAILED_LOGINS_MAX {
            self.by_name.retain(|_, f| !stale(&policy, f, now));
            if self.by_name.len() >= FAILED_LOGINS_MAX {
                // Full of live entries: names already tracked stay tracked; argon2 still paces the rest.
                return None;
            }
        }
        if self.by_name.get(&key).is_some_and(|f| stale(&policy, f, now)) {
            self.by_name.remove(&key);
        }
        let f = self.by_name.entry(key).or_insert_with(|| Failures {
            recent: VecDeque::new(),
            locked_until: None,
            lockouts: 0,
            last_failure: now,
        });
        f.last_failure = now;
        while f.recent.front().is_some_and(|t| now.duration_since(*t) > policy.window) {
            f.recent.pop_front();
        }
        f.recent.push_back(now);
        if f.recent.len() < policy.max_failures.max(1) {
            return None;
        }
        let cooldown = policy.cooldown.saturating_mul(1u32.checked_shl(f.lockouts).unwrap_or(u32::MAX)).min(policy.max_cooldown);
        f.recent.clear();
        f.locked_until = Some(now + cooldown);
        f.lockouts = f.lockouts.saturating_add(1);
        Some(cooldown)
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
            failed_logins: Mutex::new(FailedLogins::default()),
        })
    }

    /// Replaces how failed logins are slowed down (tests use short cool-downs).
    pub fn set_login_throttle(&self, policy: LoginThrottle) {
        self.failed_logins.lock().expect("failed-login lock").policy = policy;
    }

    fn name_slot(&self, username: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.cache_key);
        h.update(b"failed-login");
        h.update(username.as_bytes());
        h.finalize().into()
    }

    /// Counts a wrong password for `username` and records it in the audit log (one insert).
    async fn login_failed(&self, meta: &Meta, username: &str, slot: [u8; 32], from: &LoginFrom) {
        let locked_for = self.failed_logins.lock().expect("failed-login lock").note_failure(slot, Instant::now());
        let name: String = username.chars().take(255).collect();
        if let Some(cooldown) = locked_for {
            let secs = cooldown.as_secs_f64();
            tracing::warn!(username = %name, cooldown_secs = secs, "repeated failed logins: refusing this user name for a while");
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

    /// Checks a username and password; `Ok(None)` when they are wrong, or when the name is
    /// locked out after repeated failures (then the password is not even checked).
    pub async fn verify_password(&self, meta: &Meta, username: &str, password: &str) -> Result<Option<Principal>> {
        self.verify_password_from(meta, username, password, &LoginFrom::default()).await
    }

    /// `verify_password` for a login attempt from a client, which a failure's audit row names.
    pub async fn verify_password_from(&self, meta: &Meta, username: &str, password: &str, from: &LoginFrom) -> Result<Option<Principal>> {
        let name_slot = self.name_slot(username);
        let had_failures = {
            let failed = self.failed_logins.lock().expect("failed-login lock");
            if failed.locked(&name_slot, Instant::now()) {
                return Ok(None);
            }
            failed.by_name.contains_key(&name_slot)
        };
        // A success forgets the name's failures and lock-out history.
        let succeeded = || {
            if had_failures {
                self.failed_logins.lock().expect("failed-login lock").by_name.remove(&name_slot);
            }
        };
        let slot = self.cache_slot(username, password);
        let cached =
            self.cache.lock().expect("cache lock").get(&slot).filter(|(_, at)| at.elapsed() < CREDENTIAL_CACHE_TTL).map(|(p, _)| p.clone());
        if let Some(p) = cached {
            succeeded();
            return Ok(Some(p));
        }
        let Some(user) = meta.user_by_name(username).await? else {
            // Spend the same work as a real check so that timing does not reveal which names exist.
            let _ = self.argon_verify(DUMMY_HASH.to_string(), password.to_owned()).await;
            self.login_failed(meta, username, name_slot, from).await;
            return Ok(None);
        };
        let UserRow { id, username, password_hash, sysadmin } = user;
        if !self.argon_verify(password_hash, password.to_owned()).await? {
            self.login_failed(meta, &username, name_slot, from).await;
            return Ok(None);
        }
        succeeded();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_logins_lock_out_with_doubling_cooldowns() {
        let mut f = FailedLogins::default();
        let (key, other) = ([1u8; 32], [2u8; 32]);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        for i in 0..4 {
            assert_eq!(f.note_failure(key, t0 + s(i)), None);
        }
        assert!(!f.locked(&key, t0 + s(4)));
        assert_eq!(f.note_failure(key, t0 + s(4)), Some(s(30)));
        assert!(f.locked(&key, t0 + s(33)));
        assert!(!f.locked(&other, t0 + s(33)), "other names are not affected");
        assert!(!f.locked(&key, t0 + s(35)));
        // The next lock-out doubles, up to the cap.
        let mut t = t0 + s(35);
        let mut cooldowns = Vec::new();
        for _ in 0..5 {
            for _ in 0..4 {
                assert_eq!(f.note_failure(key, t), None);
            }
            let c = f.note_failure(key, t).expect("locked");
            cooldowns.push(c.as_secs());
            t += c;
        }
        assert_eq!(cooldowns, [60, 120, 240, 300, 300]);
        // Failures older than the window do not count.
        let mut g = FailedLogins::default();
        for i in 0..4 {
            g.note_failure(key, t0 + s(i * 100));
        }
        assert_eq!(g.note_failure(key, t0 + s(400)), None);
        // A long quiet period forgets the lock-out history.
        let quiet = t + s(301 + 300);
        for _ in 0..4 {
            f.note_failure(key, quiet);
        }
        assert_eq!(f.note_failure(key, quiet), Some(s(30)));
    }
}
