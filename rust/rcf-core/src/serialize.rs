//! Saved state: `MAGIC`, format version, payload length, CRC-32, then the forest encoded with
//! bincode. Point ids are renumbered canonically before saving, so equal forests give equal
//! bytes whatever order their points were allocated in. Restoring checks every invariant; bad
//! bytes give `RcfError::Corrupt`, never a panic. Format 1 (before the sampler planned its next
//! keep) is still read and upgraded.
use bincode::Options;

use crate::error::{RcfError, Result};
use crate::forest::Forest;
use crate::point_store::PointStore;

const MAGIC: &[u8; 8] = b"RCFFAST\0";
/// Version of the saved format written by this build.
pub const FORMAT_VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8 + 4;

fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
}

/// Frames `payload` as saved state: `magic`, `version` (u32), payload length (u64), CRC-32 of
/// the payload (u32), all little-endian, then the payload.
pub(crate) fn seal(magic: &[u8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a frame made by [`seal`]: the header and `magic` (else "not an rcf_fast `what`"),
/// the version (by `check_version`), the payload's length and checksum; returns the version and
/// the payload.
pub(crate) fn unseal<'a>(
    bytes: &'a [u8],
    magic: &[u8],
    what: &str,
    check_version: impl FnOnce(u32) -> Result<()>,
) -> Result<(u32, &'a [u8])> {
    if bytes.len() < HEADER || &bytes[..8] != magic {
        return Err(RcfError::Corrupt(format!(
            "these bytes are not an rcf_fast {what} (missing header)"
        )));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    check_version(version)?;
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(RcfError::Corrupt(format!(
            "expected {len} bytes of payload, found {} (truncated or padded)",
            payload.len()
        )));
    }
    if crc32fast::hash(payload) != crc {
        return Err(RcfError::Corrupt(
            "checksum mismatch: the bytes are damaged".into(),
        ));
    }
    Ok((version, payload))
}

impl Forest {
    /// The forest's full state (generators included) as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut canonical = self.clone();
        canonical.canonicalize();
        let payload = codec()
            .serialize(&canonical)
            .expect("in-memory serialization cannot fail");
        seal(MAGIC, FORMAT_VERSION, &payload)
    }

    /// Restores a forest saved by [`Forest::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Forest> {
        let (version, payload) = unseal(bytes, MAGIC, "forest", |version| {
            if version != FORMAT_VERSION && version != 1 {
                return Err(RcfError::Corrupt(format!(
                    "saved format version {version} is not supported (this build reads versions 1 to {FORMAT_VERSION})"
                )));
            }
            Ok(())
        })?;
        let len = payload.len() as u64;
        let limit = len.saturating_mul(2).max(1024);
        let undecodable =
            |e: bincode::Error| RcfError::Corrupt(format!("undecodable payload: {e}"));
        let mut forest: Forest = if version == 1 {
            let old: v1::Forest = codec()
                .with_limit(limit)
                .deserialize(payload)
                .map_err(undecodable)?;
            old.upgrade()
        } else {
            codec()
                .with_limit(limit)
                .deserialize(payload)
                .map_err(undecodable)?
        };
        forest.check().map_err(RcfError::Corrupt)?;
        for c in &mut forest.components {
            c.tree.reserve_one_more();
        }
        Ok(forest)
    }

    /// Verifies every invariant of the forest (used after restoring, and by tests).
    pub fn check(&self) -> std::result::Result<(), String> {
        let c = &self.config;
        c.validate().map_err(|e| e.to_string())?;
        let dim = c.point_dimensions();
        if self.store.dim() != dim || self.components.len() != c.num_trees {
            return Err("sizes disagree with the configuration".into());
        }
        if !self.shingle.is_valid(c.dimensions, c.shingle_size) {
            return Err("shingle history is inconsistent".into());
        }
        if self.points_seen > self.entries_seen {
            return Err("more points learned than observations seen".into());
        }
        // The store's sizes first: the trees' checks read its points.
        self.store.check_shape()?;
        let mut refs = vec![0u32; self.store_len_slots()];
        let window = c.sampler == crate::config::SamplerKind::Window;
        for comp in &self.components {
            if comp.tree.dim() != dim {
                return Err("a tree has the wrong dimension".into());
            }
            if window != matches!(comp.sampler, crate::sampler::Sampler::Window { .. }) {
                return Err("a sampler has the wrong kind".into());
            }
            comp.check(&self.store, &mut refs, c.sample_size)?;
        }
        self.store.check_refs(&refs)
    }

    fn store_len_slots(&self) -> usize {
        self.store.len() + self.store.free_len()
    }

    /// Renumbers live points in order of first use (tree by tree, leaf slot by leaf slot) and
    /// drops free slots.
    fn canonicalize(&mut self) {
        let slots = self.store_len_slots();
        let mut map = vec![u32::MAX; slots];
        let mut order: Vec<u32> = Vec::new();
        for comp in &self.components {
            let mut leaves = comp.tree.leaf_slots_with_mass();
            leaves.sort_unstable_by_key(|&(s, _)| s);
            for (slot, _) in leaves {
                let p = comp.tree.leaf_point(crate::tree::LEAF | slot);
                if map[p as usize] == u32::MAX {
                    map[p as usize] = order.len() as u32;
                    order.push(p);
                }
            }
        }
        let mut store = PointStore::new(self.store.dim());
        for &p in &order {
            let id = store.add(self.store.point(p));
            for _ in 0..self.store.ref_count(p) {
                store.inc(id);
            }
        }
        store.shrink();
        for comp in &mut self.components {
            comp.tree.remap_points(&map);
        }
        self.store = store;
    }
}

/// Format 1 (before the decay sampler planned its next keep): the same forest but for the
/// sampler's fields. Read and upgraded so that saved forests survive the update.
mod v1 {
    use std::collections::VecDeque;

    use serde::Deserialize;

    use crate::config::ForestConfig;
    use crate::point_store::PointStore;
    use crate::rng::Rng;
    use crate::sampler::{Component as NewComponent, Sampler as NewSampler};
    use crate::shingle::Shingle;
    use crate::tree::Tree;

    #[derive(Deserialize)]
    pub(super) struct Forest {
        config: ForestConfig,
        store: PointStore,
        components: Vec<Component>,
        shingle: Shingle,
        entries_seen: u64,
        points_seen: u64,
    }

    #[derive(Deserialize)]
    struct Component {
        tree: Tree,
        sampler: Sampler,
        rng: Rng,
    }

    #[derive(Deserialize)]
    enum Sampler {
        Decay { weights: Vec<f32>, leaves: Vec<u16> },
        Window { fifo: VecDeque<u16> },
    }

    impl Forest {
        /// The forest in the current form; each full decay sampler plans its next keep with its
        /// tree's generator (so the stream goes on with the same law, not the same draws).
        pub(super) fn upgrade(self) -> crate::forest::Forest {
            let lambda = self.config.effective_time_decay();
            let capacity = self.config.sample_size;
            let seen = self.points_seen;
            let components = self
                .components
                .into_iter()
                .map(|c| {
                    let mut rng = c.rng;
                    let sampler = match c.sampler {
                        Sampler::Decay { weights, leaves } => NewComponent::resume_decay(
                            weights, leaves, &mut rng, capacity, lambda, seen,
                        ),
                        Sampler::Window { fifo } => NewSampler::Window { fifo },
                    };
                    NewComponent {
                        tree: c.tree,
                        sampler,
                        rng,
                    }
                })
                .collect();
            crate::forest::Forest {
                config: self.config,
                store: self.store,
                components,
                shingle: self.shingle,
                entries_seen: self.entries_seen,
                points_seen: self.points_seen,
            }
        }
    }
}
