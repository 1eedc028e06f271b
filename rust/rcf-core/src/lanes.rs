//! The state of a lockstep walk: up to [`GROUP`] descents (of several trees with one point, or
//! of one tree with several points) advanced together, so that their chains of dependent loads
//! overlap. [`Lanes`] keeps each lane's path and leaf behind methods: the group scores
//! (`lockstep`) fill it, and an insertion that follows resumes from a lane's walk instead of
//! descending again. This module uses nothing else of the crate.

/// Lanes walked together.
pub(crate) const GROUP: usize = 8;

/// Paths and leaves of the lanes of the last lockstep walk of a thread.
#[derive(Default)]
pub struct Lanes {
    /// Node path of each lane (root first); only the first `depth[j]` entries are meaningful.
    paths: [Vec<u16>; GROUP],
    /// The reference each lane stopped at.
    leaf: [u16; GROUP],
    /// The length of each lane's path.
    depth: [usize; GROUP],
}

impl Lanes {
    /// Descends the first `n` lanes (at most [`GROUP`]) in lockstep: lane `j` starts at
    /// `start[j]` and moves from an internal node `r` to `step(j, r)` until it reaches a
    /// reference for which `stops` holds (a leaf, or "none" for an empty tree); a lane that
    /// has stopped waits for the others. `bound` exceeds every path's length. Lanes from `n` on
    /// keep their `start` as their leaf and an empty path.
    #[inline(always)]
    pub(crate) fn descend(
        &mut self,
        n: usize,
        bound: usize,
        start: [u16; GROUP],
        stops: impl Fn(u16) -> bool,
        step: impl Fn(usize, u16) -> u16,
    ) {
        // Buffers sized once, written by index in the loop.
        for p in &mut self.paths[..n] {
            if p.len() < bound {
                p.resize(bound, 0);
            }
        }
        let mut node = start;
        let mut depth = [0usize; GROUP];
        loop {
            let mut moving = false;
            for j in 0..n {
                let r = node[j];
                if !stops(r) {
                    self.paths[j][depth[j]] = r;
                    depth[j] += 1;
                    node[j] = step(j, r);
                    moving = true;
                }
            }
            if !moving {
                break;
            }
        }
        self.leaf = node;
        self.depth = depth;
    }

    /// The reference lane `j` stopped at.
    #[inline(always)]
    pub(crate) fn leaf(&self, j: usize) -> u16 {
        self.leaf[j]
    }

    /// The internal nodes lane `j` passed, root first.
    #[inline(always)]
    pub(crate) fn path(&self, j: usize) -> &[u16] {
        &self.paths[j][..self.depth[j]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_of_different_lengths_stop_on_their_own() {
        // A toy "tree": references >= 100 stop; lane j goes r -> r + 1 from j * 10 and stops at
        // 100 after the reference j * 10 + 2, i.e. paths of three nodes... except lane 1,
        // which starts stopped.
        let mut lanes = Lanes::default();
        let mut start = [u16::MAX; GROUP];
        start[0] = 0;
        start[1] = 100;
        start[2] = 20;
        lanes.descend(
            3,
            8,
            start,
            |r| r >= 100,
            |j, r| {
                if r % 10 == 2 || (j == 2 && r == 21) {
                    100
                } else {
                    r + 1
                }
            },
        );
        assert_eq!(lanes.path(0), &[0, 1, 2]);
        assert_eq!(lanes.path(1), &[] as &[u16]);
        assert_eq!(lanes.path(2), &[20, 21]);
        assert_eq!(lanes.leaf(1), 100);
        assert_eq!(lanes.leaf(3), u16::MAX);
    }
}
