//! Access versions as this node last read them, so that revocations reach credentials
//! already handed out.
//!
//! Every user and robot has an `access_version` in the database, raised by triggers in the
//! transaction of any change that takes access away (migration 0011). A registry token
//! carries its holder's version (`auth::token::Holder`), and so does each entry of the Basic
//! credential cache; both are accepted only while the holder's current version is the same.
//! Current versions are read from the shared database at most once per holder per `TTL` on
//! each node (concurrent requests share one read), so a change made on any node takes effect
//! everywhere within about `TTL`, and at once on the node that made it (it calls `forget`).

use crate::error::Result;
use crate::meta::Meta;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long a version read from the database is trusted.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most (each is a few dozen bytes).
const MAX: usize = 100_000;

/// Whose version: a user or a robot, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    User(i64),
    Robot(i64),
}

type Slot = Arc<OnceCell<Option<i64>>>;

#[derive(Default)]
pub struct Versions {
    read: Mutex<HashMap<Holder, (Instant, Slot)>>,
}

impl Versions {
    /// The holder's current version (None: it no longer exists), read at most once per `TTL`.
    pub async fn current(&self, meta: &Meta, holder: Holder) -> Result<Option<i64>> {
        let slot = {
            let mut read = self.read.lock().expect("versions lock");
            let now = Instant::now();
            match read.get(&holder) {
                Some((at, slot)) if now.duration_since(*at) < TTL => slot.clone(),
                _ => {
                    if read.len() >= MAX {
                        read.retain(|_, (at, _)| now.duration_since(*at) < TTL);
                        if read.len() >= MAX {
                            read.clear();
                        }
                    }
                    let slot = Slot::default();
                    read.insert(holder, (now, slot.clone()));
                    slot
                }
            }
        };
        let (robot, id) = match holder {
            Holder::User(id) => (false, id),
            Holder::Robot(id) => (true, id),
        };
        // A failed read leaves the slot empty: the next request tries again.
        slot.get_or_try_init(|| meta.access_version(robot, id)).await.copied()
    }

    /// Forgets every version read (after a change on this node, which is then seen at once).
    pub fn forget(&self) {
        self.read.lock().expect("versions lock").clear();
    }
}
