//! Bounded memory: which keys leave (least recently used first), saving them, and idle keys.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{batch, Entry, KeyedError, KeyedForests, Store};

/// Keys serialized at once when saving: bounds the bytes in flight.
pub(crate) const SAVE_CHUNK: usize = 8;

impl KeyedForests {
    /// True when `extra_keys` more keys and `extra_bytes` more bytes break a limit.
    fn over(&self, extra_keys: usize, extra_bytes: usize) -> bool {
        let keys = self.resident.len() + extra_keys;
        let bytes = self.resident_bytes + extra_bytes;
        self.config.max_keys.is_some_and(|m| keys > m)
            || self.config.memory_limit.is_some_and(|m| bytes > m)
    }

    /// Evicts least recently used keys (never one of `keep`) until `extra_keys` more keys and
    /// `extra_bytes` more bytes fit the limits, or nothing else can leave.
    pub(crate) fn enforce_room<S: Store>(
        &mut self,
        store: &mut S,
        keep: &HashSet<&str>,
        extra_keys: usize,
        extra_bytes: usize,
    ) -> Result<(), KeyedError<S::Error>> {
        if !self.over(extra_keys, extra_bytes) {
            return Ok(());
        }
        let mut order: Vec<(u64, &String, usize)> = self
            .resident
            .iter()
            .filter(|(k, _)| !keep.contains(k.as_str()))
            .map(|(k, e)| (e.tick, k, e.bytes))
            .collect();
        order.sort_unstable_by_key(|t| t.0);
        let (mut keys, mut bytes) = (
            self.resident.len() + extra_keys,
            self.resident_bytes + extra_bytes,
        );
        let mut victims = Vec::new();
        for (_, k, b) in order {
            let fits = self.config.max_keys.is_none_or(|m| keys <= m)
                && self.config.memory_limit.is_none_or(|m| bytes <= m);
            if fits {
                break;
            }
            victims.push(k.clone());
            keys -= 1;
            bytes = bytes.saturating_sub(b);
        }
        self.evict(store, &victims)
    }

    /// Evicts keys until the limits hold (never one of `keep`).
    pub(crate) fn enforce_limits<S: Store>(
        &mut self,
        store: &mut S,
        keep: &HashSet<&str>,
    ) -> Result<(), KeyedError<S::Error>> {
        self.enforce_room(store, keep, 0, 0)
    }

    /// Saves (when changed) and drops `keys`, in order. Without a store they are forgotten. A
    /// store error stops there: the key that failed and those after it stay resident.
    pub(crate) fn evict<S: Store>(
        &mut self,
        store: &mut S,
        keys: &[String],
    ) -> Result<(), KeyedError<S::Error>> {
        for chunk in keys.chunks(SAVE_CHUNK) {
            if self.has_store {
                let saved = self.serialize(chunk);
                for (k, b) in &saved {
                    store.put(k, b).map_err(KeyedError::Store)?;
                    if let Some(e) = self.resident.get_mut(k.as_str()) {
                        e.dirty = false;
                    }
                }
            }
            for k in chunk {
                if let Some((k, e)) = self.resident.remove_entry(k.as_str()) {
                    self.resident_bytes -= e.bytes;
                    if self.has_store {
                        self.stored.insert(k);
                    }
                }
            }
        }
        Ok(())
    }

    /// The saved bytes of those of `keys` that changed since they were last saved.
    pub(crate) fn serialize(&self, keys: &[String]) -> Vec<(String, Vec<u8>)> {
        let mut todo: Vec<(&String, &Entry, Vec<u8>)> = keys
            .iter()
            .filter_map(|k| self.resident.get(k.as_str()).map(|e| (k, e)))
            .filter(|(_, e)| e.dirty)
            .map(|(k, e)| (k, e, Vec::new()))
            .collect();
        batch::for_each_chunk(self.config.forest.threads, &mut todo, |part| {
            for (_, e, out) in part {
                *out = e.forest.to_bytes();
            }
        });
        todo.into_iter().map(|(k, _, b)| (k.clone(), b)).collect()
    }

    /// Drops keys untouched for `idle_ttl` seconds (saved first when there is a store). Looks
    /// at most every `min(idle_ttl / 2, 1 s)` unless `force`, so that one-row calls stay cheap.
    pub(crate) fn expire_idle<S: Store>(
        &mut self,
        store: &mut S,
        force: bool,
    ) -> Result<(), KeyedError<S::Error>> {
        let Some(ttl) = self.config.idle_ttl else {
            return Ok(());
        };
        let now = Instant::now();
        let every = Duration::from_secs_f64((ttl / 2.0).min(1.0));
        if !force && now.duration_since(self.last_idle_scan) < every {
            return Ok(());
        }
        self.last_idle_scan = now;
        let ttl = Duration::from_secs_f64(ttl);
        let mut idle: Vec<(u64, String)> = self
            .resident
            .iter()
            .filter(|(_, e)| now.duration_since(e.used) >= ttl)
            .map(|(k, e)| (e.tick, k.clone()))
            .collect();
        idle.sort_unstable();
        let idle: Vec<String> = idle.into_iter().map(|(_, k)| k).collect();
        self.evict(store, &idle)
    }
}
