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
/// Version of the collection format written by this build.
pub const KEYED_FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    config: KeyedConfig,
    entries: Vec<(String, Vec<u8>)>,
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
        let (_, payload) = unseal(bytes, MAGIC, "KeyedForests state", |version| {
            if version != KEYED_FORMAT_VERSION {
                return Err(RcfError::Corrupt(format!(
                    "KeyedForests format version {version} is not supported (this build reads \
                     version {KEYED_FORMAT_VERSION})"
                )));
            }
            Ok(())
        })?;
        let len = payload.len() as u64;
        let saved: Saved = codec()
            .with_limit(len.saturating_mul(2).max(1024))
            .deserialize(payload)
            .map_err(|e| RcfError::Corrupt(format!("undecodable payload: {e}")))?;
        if saved.config.forest.seed.is_none() {
            return Err(RcfError::Corrupt("the saved collection has no seed".into()));
        }
        let mut k = KeyedForests::new(saved.config, has_store)?;
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
