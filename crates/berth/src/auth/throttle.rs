//! Slowing down credential guessing: per client address, and per (account, client address).
//!
//! Every credential check (password, robot secret, personal access token) is admitted here
//! first, and every failed one is charged after it:
//! - each client address has a budget of `address_burst` failures, regained at one every
//!   `address_refill` (a generic cell rate: the address's "theoretical arrival time" moves
//!   forward by `address_refill` per failure, and checks are refused while it is more than
//!   `address_burst` failures ahead of now); successful checks cost nothing, so a client
//!   sending the right credentials many times at once is never slowed;
//! - each (account, address) pair is refused for a cool-down once `max_failures` checks
//!   failed within `window`, doubling with each consecutive cool-down up to `max_cooldown`;
//!   a success forgets the pair.
//!
//! Failures are charged when they are known, so attempts already in flight when a budget runs
//! out (at most the address's open connections, which the server caps) still run; each of them
//! moves the address's time further ahead, so an overrun is paid back by waiting as long.
//! An account is never locked for everyone: a refusal only ever concerns the address that
//! failed. A refused attempt is not checked at all (no argon2, no database read), so the work
//! one address causes is bounded by its budget.
//!
//! Memory is bounded: at most `ADDRESSES_MAX` addresses (when full, idle ones are dropped,
//! then the quietest, the one whose budget is fullest), and at most `NAMES_PER_ADDRESS_MAX`
//! account entries under each address. Names only ever go under the address that sent them,
//! so many distinct names cannot evict anyone else, nor the sending address's own budget.
//! IPv6 addresses are counted per /64, the block one client usually holds.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How many client addresses are tracked at most.
const ADDRESSES_MAX: usize = 10_000;
/// How many accounts are tracked at most under one address.
const NAMES_PER_ADDRESS_MAX: usize = 64;

/// How failed credential checks are slowed down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failures of one (account, address) within `window` that start a cool-down of that pair.
    pub max_failures: usize,
    pub window: Duration,
    /// The first cool-down of a pair; each consecutive one doubles it.
    pub cooldown: Duration,
    pub max_cooldown: Duration,
    /// Failed checks one address may make at once, whatever the names...
    pub address_burst: u32,
    /// ...and how often it regains one.
    pub address_refill: Duration,
}

impl Default for LoginThrottle {
    /// Per pair: 5 failures within 5 minutes start 30 s, then 1, 2, 4 and at most 5 minutes.
    /// Per address: 30 failures at once, then one a second.
    fn default() -> LoginThrottle {
        LoginThrottle {
            max_failures: 5,
            window: Duration::from_secs(300),
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(300),
            address_burst: 30,
            address_refill: Duration::from_secs(1),
        }
    }
}

/// Why an attempt was refused without being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The address spent its budget.
    Address,
    /// This account failed too often from this address.
    Pair,
}

#[derive(Default)]
pub struct Throttle {
    pub policy: LoginThrottle,
    by_address: HashMap<IpAddr, Address>,
}

struct Address {
    /// When the budget is full again; the address may be up to `burst * refill` ahead of now.
    tat: Instant,
    names: HashMap<[u8; 32], Failures>,
}

struct Failures {
    /// Failed checks inside the window, oldest first.
    recent: VecDeque<Instant>,
    locked_until: Option<Instant>,
    /// Consecutive cool-downs so far: the next one lasts `cooldown * 2^lockouts`.
    lockouts: u32,
    last_failure: Instant,
}

/// The key an address is counted under: IPv4 as it is, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
        v4 => v4,
    }
}

impl LoginThrottle {
    /// Whether a pair's entry no longer matters: not cooling down and quiet for longer than any cool-down.
    fn stale(&self, f: &Failures, now: Instant) -> bool {
        f.locked_until.is_none_or(|until| until <= now) && now.saturating_duration_since(f.last_failure) > self.window + self.max_cooldown
    }

    fn ahead(&self) -> Duration {
        self.address_refill.saturating_mul(self.address_burst.max(1))
    }
}

impl Address {
    fn idle(&self, policy: &LoginThrottle, now: Instant) -> bool {
        self.tat <= now && self.names.values().all(|f| policy.stale(f, now))
    }
}

impl Throttle {
    /// Whether a credential check for `name` from `addr` may run now: refused while the pair
    /// cools down or the address has spent its budget. Charges nothing (see `failed`).
    pub fn admit(&self, addr: IpAddr, name: [u8; 32], now: Instant) -> Result<(), Refusal> {
        let Some(a) = self.by_address.get(&address_key(addr)) else { return Ok(()) };
        if a.names.get(&name).and_then(|f| f.locked_until).is_some_and(|until| now < until) {
            return Err(Refusal::Pair);
        }
        if a.tat.saturating_duration_since(now) >= self.policy.ahead() {
            return Err(Refusal::Address);
        }
        Ok(())
    }

    /// A check failed: the address's budget and the pair's failures are charged. Returns the
    /// pair's cool-down when this failure starts one.
    pub fn failed(&mut self, addr: IpAddr, name: [u8; 32], now: Instant) -> Option<Duration> {
        let policy = self.policy;
        let addr = address_key(addr);
        if !self.by_address.contains_key(&addr) && self.by_address.len() >= ADDRESSES_MAX {
            self.make_room(now);
        }
        let a = self.by_address.entry(addr).or_insert_with(|| Address { tat: now, names: HashMap::new() });
        a.tat = a.tat.max(now) + policy.address_refill;
        if !a.names.contains_key(&name) && a.names.len() >= NAMES_PER_ADDRESS_MAX {
            a.names.retain(|_, f| !policy.stale(f, now));
            if a.names.len() >= NAMES_PER_ADDRESS_MAX {
                // The address's own names only: its budget above still bounds it.
                let oldest = a.names.iter().min_by_key(|(_, f)| f.last_failure).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    a.names.remove(&k);
                }
            }
        }
        if a.names.get(&name).is_some_and(|f| policy.stale(f, now)) {
            a.names.remove(&name);
        }
        let f =
            a.names.entry(name).or_insert_with(|| Failures { recent: VecDeque::new(), locked_until: None, lockouts: 0, last_failure: now });
        f.last_failure = now;
        while f.recent.front().is_some_and(|t| now.saturating_duration_since(*t) > policy.window) {
            f.recent.pop_front();
        }
        f.recent.push_back(now);
        if f.recent.len() < policy.max_failures.max(1) {
            return None;
        }
        let factor = 1u32.checked_shl(f.lockouts).unwrap_or(u32::MAX);
        let cooldown = policy.cooldown.saturating_mul(factor).min(policy.max_cooldown);
        f.recent.clear();
        f.locked_until = Some(now + cooldown);
        f.lockouts = f.lockouts.saturating_add(1);
        Some(cooldown)
    }

    /// A check succeeded: the pair's failures and cool-down history are forgotten.
    pub fn succeeded(&mut self, addr: IpAddr, name: [u8; 32]) {
        if let Some(a) = self.by_address.get_mut(&address_key(addr)) {
            a.names.remove(&name);
        }
    }

    /// Whether a pair is cooling down.
    #[cfg(test)]
    fn cooling(&self, addr: IpAddr, name: &[u8; 32], now: Instant) -> Option<Duration> {
        let until = self.by_address.get(&address_key(addr))?.names.get(name)?.locked_until?;
        (now < until).then(|| until - now)
    }

    /// Drops idle addresses; when every address is busy, the quietest one.
    fn make_room(&mut self, now: Instant) {
        let policy = self.policy;
        self.by_address.retain(|_, a| !a.idle(&policy, now));
        if self.by_address.len() >= ADDRESSES_MAX {
            let quietest = self.by_address.iter().min_by_key(|(_, a)| a.tat).map(|(k, _)| *k);
            if let Some(k) = quietest {
                self.by_address.remove(&k);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        (self.by_address.len(), self.by_address.values().map(|a| a.names.len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn name(n: u64) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&n.to_le_bytes());
        k
    }

    #[test]
    fn pairs_cool_down_per_address_with_doubling() {
        let mut t = Throttle::default();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let t0 = Instant::now();
        let s = Duration::from_secs;
        for i in 0..5 {
            assert_eq!(t.admit(a, name(1), t0), Ok(()));
            assert_eq!(t.failed(a, name(1), t0), if i == 4 { Some(s(30)) } else { None });
        }
        assert_eq!(t.admit(a, name(1), t0 + s(1)), Err(Refusal::Pair));
        // The same account from another address, and another account from the same one, are let through.
        assert_eq!(t.admit(b, name(1), t0 + s(1)), Ok(()));
        assert_eq!(t.admit(a, name(2), t0 + s(1)), Ok(()));
        assert_eq!(t.cooling(a, &name(1), t0 + s(1)), Some(s(29)));
        assert_eq!(t.admit(a, name(1), t0 + s(31)), Ok(()));
        for _ in 0..5 {
            t.failed(a, name(1), t0 + s(31));
        }
        // The second cool-down is twice as long.
        assert_eq!(t.cooling(a, &name(1), t0 + s(31)), Some(s(60)));
        // A success forgets the pair.
        t.succeeded(a, name(1));
        assert_eq!(t.cooling(a, &name(1), t0 + s(92)), None);
    }

    #[test]
    fn concurrent_right_credentials_are_never_refused() {
        // Many checks of one account in flight at once, all succeeding: nothing is charged.
        let mut t = Throttle::default();
        let a = ip("10.0.0.1");
        let t0 = Instant::now();
        for _ in 0..1_000 {
            assert_eq!(t.admit(a, name(1), t0), Ok(()));
        }
        for _ in 0..1_000 {
            t.succeeded(a, name(1));
        }
        assert_eq!(t.admit(a, name(1), t0), Ok(()));
    }

    #[test]
    fn an_address_has_a_budget_across_names() {
        let mut t = Throttle::default();
        t.policy.address_burst = 10;
        t.policy.address_refill = Duration::from_millis(500);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let t0 = Instant::now();
        for n in 0..10 {
            assert_eq!(t.admit(a, name(n), t0), Ok(()));
            t.failed(a, name(n), t0);
        }
        assert_eq!(t.admit(a, name(99), t0), Err(Refusal::Address));
        assert_eq!(t.admit(b, name(99), t0), Ok(()), "another address is not affected");
        // One regained every 500 ms: 2 a second.
        assert_eq!(t.admit(a, name(99), t0 + Duration::from_millis(500)), Ok(()));
        t.failed(a, name(99), t0 + Duration::from_millis(500));
        assert_eq!(t.admit(a, name(98), t0 + Duration::from_millis(500)), Err(Refusal::Address));
        // Failures that were already in flight when the budget ran out are paid back by waiting.
        for n in 0..10 {
            t.failed(a, name(200 + n), t0 + Duration::from_millis(500));
        }
        assert_eq!(t.admit(a, name(1), t0 + Duration::from_millis(5_400)), Err(Refusal::Address));
        assert_eq!(t.admit(a, name(1), t0 + Duration::from_millis(6_000)), Ok(()));
    }

    #[test]
    fn many_names_cannot_flush_the_tracking_of_the_address_sending_them() {
        let mut t = Throttle::default();
        t.policy.address_burst = 1_000_000;
        let a = ip("10.0.0.1");
        let t0 = Instant::now();
        for _ in 0..5 {
            t.failed(a, name(0), t0);
        }
        // 100,000 distinct names from the same address, and 20,000 other addresses.
        for n in 1..100_000 {
            t.failed(a, name(n), t0);
        }
        for n in 0..20_000u32 {
            t.failed(IpAddr::from(n.to_be_bytes()), name(7), t0);
        }
        let (addresses, names) = t.len();
        assert!(addresses <= ADDRESSES_MAX, "{addresses}");
        assert!(names <= ADDRESSES_MAX * NAMES_PER_ADDRESS_MAX, "{names}");
        // The busy address's budget is still counted.
        assert!(t.by_address[&a].tat > t0 + Duration::from_secs(90_000));
        let mut small = Throttle::default();
        for n in 0..1_000 {
            small.failed(a, name(n), t0);
        }
        assert_eq!(small.admit(a, name(5_000), t0), Err(Refusal::Address), "names do not reset the budget");
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), address_key(ip("2001:db8:1:2:bbbb::2")));
        assert_ne!(address_key(ip("2001:db8:1:2::1")), address_key(ip("2001:db8:1:3::1")));
        assert_eq!(address_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}
