//! Striped in-process locks. Committing a blob and sweeping it in GC take the same digest
//! stripe, so a sweep can never delete a file that a concurrent push has just deduplicated
//! against; requests on one upload session are serialised on its id's stripe.

use std::hash::{BuildHasher, Hash};

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

pub struct StripedLocks {
    stripes: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for StripedLocks {
    fn default() -> Self {
        StripedLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }
}

impl StripedLocks {
    pub async fn lock<K: Hash + ?Sized>(&self, key: &K) -> MutexGuard<'_, ()> {
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        let idx = (std::hash::Hasher::finish(&h) as usize) % STRIPES;
        // `idx < STRIPES == stripes.len()` always holds.
        self.stripes[idx].lock().await
    }
}
