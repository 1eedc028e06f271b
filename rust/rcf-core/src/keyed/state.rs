//! A whole collection as bytes: `MAGIC`, format version, payload length, CRC-32, then (bincode)
//! the collection's parameters and every key with its forest's own saved bytes
//! ([`Forest::to_bytes`](crate::Forest::to_bytes), versioned and checksummed in turn), keys
//! sorted. Evicted keys are read back from the store, so the bytes hold every key.
use bincode::Options;
use serde::{Deserialize, Serialize};

use super::{KeyedConfig, KeyedError, KeyedForests, Store};
use crate::error::{RcfError, Result};
use crate::forest::Forest;
use crate::serialize::{seal, unseal};

const MAGIC: &[u8; 8] = b"RCFKEYS\0";
/// Version of the collection format written by this build when no key has an adopted seed
/// (version 2 adds the keys' seed overrides, and is written only when there are some).
pub const KEYED_FORMAT_VERSION: u32 = 1;
const KEYED_FORMAT_VERSION_SEEDS: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Saved {
    config: KeyedConfig,
    entries: Vec<(String, Vec<u8>)>,
}

#[derive(Serialize, Deserialize)]
struct SavedSeeds {
    config: KeyedConfig,
    entries: Vec<(String, Vec<u8>)>,
    seeds: Vec<(String, u64)>,
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
}

impl KeyedForests {
    /// Every key's forest (evicted ones read from `store`) and the parameters, as bytes.
    pub fn to_bytes<S: Store>(
        &self,
        store: &mut S,
    ) -> std::result::Result<Vec<u8>, KeyedError<S::Error>> {
        let mut resident: Vec<(&String, &Forest, Vec<u8>)> = self
            .resident
            .iter()
            .map(|(k, e)| (k, &e.forest, Vec::new()))
            .collect();
        super::batch::for_each_chunk(self.config.forest.threads, &mut resident, |part| {
            for (_, f, out) in part {
                *out = f.to_bytes();
            }
        });
        let mut entries: Vec<(String, Vec<u8>)> = resident
            .into_iter()
            .map(|(k, _, b)| (k.clone(), b))
            .collect();
        for k in &self.stored {
            let b = store.get(k).map_err(KeyedError::Store)?.ok_or_else(|| {
                RcfError::Corrupt(format!(
                    "key {k:?} was saved to the store, which no longer has it"
                ))
            })?;
            entries.push((k.clone(), b));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let seeds = self.seed_overrides();
        if !seeds.is_empty() {
            let payload = codec()
                .serialize(&SavedSeeds {
                    config: self.config.clone(),
                    entries,
                    seeds,
                })
                .expect("in-memory serialization cannot fail");
            return Ok(seal(MAGIC, KEYED_FORMAT_VERSION_SEEDS, &payload));
        }
        let payload = codec()
            .serialize(&Saved {
                config: self.config.clone(),
                entries,
            })
            .expect("in-memory serialization cannot fail");
        Ok(seal(MAGIC, KEYED_FORMAT_VERSION, &payload))
    }

    /// Restores a collection from [`KeyedForests::to_bytes`]; every key is resident and counts
    /// as changed (not yet saved to this collection's store). Bad bytes give
    /// `RcfError::Corrupt`.
    pub fn from_bytes(bytes: &[u8], has_store: bool) -> Result<KeyedForests> {
        let (version, payload) = unseal(bytes, MAGIC, "KeyedForests state", |version| {
            if version != KEYED_FORMAT_VERSION && version != KEYED_FORMAT_VERSION_SEEDS {
                return Err(RcfError::Corrupt(format!(
                    "KeyedForests format version {version} is not supported (this build reads \
                     versions {KEYED_FORMAT_VERSION} and {KEYED_FORMAT_VERSION_SEEDS})"
                )));
            }
            Ok(())
        })?;
        let len = payload.len() as u64;
        let limited = codec().with_limit(len.saturating_mul(2).max(1024));
        let bad = |e: bincode::Error| RcfError::Corrupt(format!("undecodable payload: {e}"));
        let (saved, seeds) = if version == KEYED_FORMAT_VERSION_SEEDS {
            let s: SavedSeeds = limited.deserialize(payload).map_err(bad)?;
            (
                Saved {
                    config: s.config,
                    entries: s.entries,
                },
                s.seeds,
            )
        } else {
            (limited.deserialize(payload).map_err(bad)?, Vec::new())
        };
        if saved.config.forest.seed.is_none() {
            return Err(RcfError::Corrupt("the saved collection has no seed".into()));
        }
        let mut k = KeyedForests::new(saved.config, has_store)?;
        for (key, seed) in seeds {
            k.set_key_seed(&key, seed)?;
        }
        let mut last: Option<&str> = None;
        for (key, b) in &saved.entries {
            if last.is_some_and(|l| l >= key.as_str()) {
                return Err(RcfError::Corrupt(format!(
                    "keys out of order or repeated at {key:?}"
                )));
            }
            last = Some(key);
            let f = k.decode(key, b)?;
            k.insert(key.clone(), f, true);
        }
        Ok(k)
    }
}
