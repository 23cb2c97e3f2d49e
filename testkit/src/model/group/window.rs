//! SPEC.md §15.8 steps 3 to 7: what a receiver does with an index once the
//! signature verified, and the cache of skipped keys. Generic over the key,
//! so the same rules serve the cryptographic model and the simulation's
//! model of a store's shape.

use std::collections::BTreeMap;

use serde_json::json;

use crate::model::error::{Refusal, refusal, refusal_with};

/// §15.10 `GROUP_SKIP_WINDOW`.
pub const SKIP_WINDOW: u32 = 32;
/// §15.10 `MAX_GROUP_SKIPPED_KEYS`.
pub const MAX_SKIPPED: usize = 256;
/// §15.10 `MAX_GROUP_JUMP`.
pub const MAX_JUMP: u32 = 1 << 24;

/// A receiver's position: the next index and the cached keys below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window<K> {
    /// The lowest index not yet reached.
    pub next: u32,
    /// Cached keys by index, all below `next`.
    pub cache: BTreeMap<u32, K>,
}

/// What an index asks of a receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Step 3: its key is cached.
    Cached,
    /// Step 6: the ratchet moves from `next` to `skip_from`, caches the
    /// keys of `skip_from..index`, and opens with the key of `index`.
    Ratchet {
        /// Where the cached keys start.
        skip_from: u32,
    },
}

impl<K> Window<K> {
    /// A receiver at `next` with nothing cached.
    pub fn at(next: u32) -> Self {
        Self {
            next,
            cache: BTreeMap::new(),
        }
    }

    /// Steps 3 to 6 for index `j`, before any key is derived.
    ///
    /// # Errors
    ///
    /// The model's refusal: the SPEC.md error of the first check the input
    /// fails, in the order SPEC.md fixes.
    pub fn plan(&self, j: u32) -> Result<Step, Refusal> {
        if self.cache.contains_key(&j) {
            return Ok(Step::Cached);
        }
        if j < self.next {
            return Err(refusal("DuplicateMessage"));
        }
        if j == u32::MAX || j - self.next > MAX_JUMP {
            return Err(refusal_with("GroupIndexOutOfRange", json!({ "index": j })));
        }
        Ok(Step::Ratchet {
            skip_from: self.next.max(j.saturating_sub(SKIP_WINDOW)),
        })
    }

    /// Step 7 after a decrypt at `j` by the ratchet: `next = j + 1`, the
    /// skipped keys join the cache, and the lowest indices over
    /// `MAX_GROUP_SKIPPED_KEYS` go. Returns the evicted indices.
    pub fn commit(&mut self, j: u32, skipped: impl IntoIterator<Item = (u32, K)>) -> Vec<u32> {
        self.next = j + 1;
        self.cache.extend(skipped);
        let over = self.cache.len().saturating_sub(MAX_SKIPPED);
        let gone: Vec<u32> = self.cache.keys().take(over).copied().collect();
        for i in &gone {
            self.cache.remove(i);
        }
        gone
    }
}
