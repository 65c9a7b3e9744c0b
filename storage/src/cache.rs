//! One size-bounded cache type for what Lumen keeps between queries: series indexes, parsed segment
//! footers, decoded samples, parsed PromQL texts.
//!
//! A [`SizedCache`] holds values with the bytes each is counted as, and drops the least recently
//! used entries once the total passes its capacity. What it is keyed by is the caller's choice;
//! everything cached per segment file is keyed by [`SegmentKey`], so an entry is never applied to
//! another file that later took the same path (another store in the same process, a rewrite after a
//! crash).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::path::PathBuf;

use parking_lot::Mutex;

use crate::manifest::SegmentMeta;

/// A segment file as caches know it: where it is, and which segment of which size it holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SegmentKey {
    /// The segment file.
    pub path: PathBuf,
    /// The segment's id in its store.
    pub id: u64,
    /// Rows it holds.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

impl SegmentKey {
    /// The key of the segment `meta` describes.
    pub fn of(meta: &SegmentMeta) -> SegmentKey {
        SegmentKey {
            path: meta.path.clone(),
            id: meta.id,
            rows: meta.rows,
            bytes: meta.bytes,
        }
    }
}

/// How far a full cache shrinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// Drop the least recently used entries until the total fits the capacity again; the entry
    /// inserted last always stays (its reader holds it anyway). For few, large entries.
    ToCapacity,
    /// Drop the least recently used quarter of the capacity at once, so that caches of many small
    /// entries sort their entries once per many inserts rather than once per insert.
    ToThreeQuarters,
}

struct Slot<V> {
    value: V,
    bytes: usize,
    used: u64,
}

struct Inner<K, V> {
    entries: HashMap<K, Slot<V>>,
    bytes: usize,
    capacity: usize,
    tick: u64,
}

/// A map bounded by the bytes its values are counted as, least recently used out first.
pub struct SizedCache<K, V> {
    inner: Mutex<Inner<K, V>>,
    eviction: Eviction,
    /// Entries counted as more than this are not kept (0: no limit besides the capacity).
    max_entry: usize,
    /// The gauge (in `/metrics`) that shows the bytes held, if any.
    gauge: Option<&'static str>,
}

impl<K: Hash + Eq + Clone, V: Clone> SizedCache<K, V> {
    /// An empty cache that holds at most `capacity` bytes (0 keeps nothing).
    pub fn new(capacity: usize, eviction: Eviction) -> Self {
        SizedCache {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                bytes: 0,
                capacity,
                tick: 0,
            }),
            eviction,
            max_entry: 0,
            gauge: None,
        }
    }

    /// Refuses entries counted as more than `bytes` (they would push out everything else).
    pub fn with_max_entry(mut self, bytes: usize) -> Self {
        self.max_entry = bytes;
        self
    }

    /// Publishes the bytes held as the gauge `name`.
    pub fn with_gauge(mut self, name: &'static str) -> Self {
        self.gauge = Some(name);
        self
    }

    /// The value under `key`, marked as just used.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let slot = inner.entries.get_mut(key)?;
        slot.used = tick;
        Some(slot.value.clone())
    }

    /// The values under each of `keys` (`None` asks for nothing), taken under one lock.
    pub fn get_many<'k>(&self, keys: impl IntoIterator<Item = Option<&'k K>>) -> Vec<Option<V>>
    where
        K: 'k,
    {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        keys.into_iter()
            .map(|key| {
                let slot = inner.entries.get_mut(key?)?;
                slot.used = tick;
                Some(slot.value.clone())
            })
            .collect()
    }

    /// Whether `key` is cached (does not count as a use).
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.lock().entries.contains_key(key)
    }

    /// Keeps `value` under `key`, counted as `bytes`, replacing what was there.
    pub fn insert(&self, key: K, value: V, bytes: usize) {
        self.insert_many(std::iter::once((key, value, bytes)));
    }

    /// [`SizedCache::insert`] for several entries under one lock.
    pub fn insert_many(&self, entries: impl IntoIterator<Item = (K, V, usize)>) {
        let mut inner = self.inner.lock();
        if inner.capacity == 0 {
            return;
        }
        inner.tick += 1;
        let tick = inner.tick;
        let mut last = None;
        for (key, value, bytes) in entries {
            if self.max_entry > 0 && bytes > self.max_entry {
                continue;
            }
            let slot = Slot {
                value,
                bytes,
                used: tick,
            };
            if let Some(old) = inner.entries.insert(key.clone(), slot) {
                inner.bytes -= old.bytes;
            }
            inner.bytes += bytes;
            last = Some(key);
        }
        let target = match self.eviction {
            Eviction::ToCapacity => inner.capacity,
            Eviction::ToThreeQuarters => inner.capacity / 4 * 3,
        };
        self.evict(&mut inner, target, last.as_ref());
    }

    /// Drops the entry under `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.inner.lock();
        if let Some(old) = inner.entries.remove(key) {
            inner.bytes -= old.bytes;
        }
        self.publish(&inner);
    }

    /// Drops every entry whose key `doomed` picks.
    pub fn remove_where(&self, doomed: impl Fn(&K) -> bool) {
        let mut inner = self.inner.lock();
        let mut freed = 0;
        inner.entries.retain(|k, slot| {
            let drop = doomed(k);
            if drop {
                freed += slot.bytes;
            }
            !drop
        });
        inner.bytes -= freed;
        self.publish(&inner);
    }

    /// Changes the capacity, shrinking the cache at once if it holds more.
    pub fn set_capacity(&self, capacity: usize) {
        let mut inner = self.inner.lock();
        inner.capacity = capacity;
        if capacity == 0 {
            inner.entries.clear();
            inner.bytes = 0;
        }
        self.evict(&mut inner, capacity, None);
    }

    /// The bytes the cached entries are counted as.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// The most bytes kept.
    pub fn capacity(&self) -> usize {
        self.inner.lock().capacity
    }

    /// Runs `f` on the totals (bytes held, capacity) under the cache's lock.
    pub fn with_totals<T>(&self, f: impl FnOnce(usize, usize) -> T) -> T {
        let inner = self.inner.lock();
        f(inner.bytes, inner.capacity)
    }

    /// Once over capacity, drops least recently used entries (never `keep`) until at most
    /// `target` bytes are held; [`Eviction::ToCapacity`] always leaves the last entry.
    fn evict(&self, inner: &mut Inner<K, V>, target: usize, keep: Option<&K>) {
        if inner.bytes > inner.capacity {
            let mut by_age: Vec<(u64, K)> = inner
                .entries
                .iter()
                .filter(|(k, _)| Some(*k) != keep)
                .map(|(k, slot)| (slot.used, k.clone()))
                .collect();
            by_age.sort_unstable_by_key(|(used, _)| *used);
            for (_, key) in by_age {
                if inner.bytes <= target
                    || (self.eviction == Eviction::ToCapacity && inner.entries.len() <= 1)
                {
                    break;
                }
                if let Some(old) = inner.entries.remove(&key) {
                    inner.bytes -= old.bytes;
                }
            }
        }
        self.publish(inner);
    }

    fn publish(&self, inner: &Inner<K, V>) {
        if let Some(name) = self.gauge {
            metrics::gauge!(name).set(inner.bytes as f64);
        }
    }
}

#[cfg(test)]
mod tests;
