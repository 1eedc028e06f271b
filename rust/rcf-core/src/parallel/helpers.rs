//! Helper threads for one-point calls. A point's work is ~20-50 us, the same order as waking a
//! sleeping pool thread, so a rayon hand-off gained little (1.1-1.3x on 2 cores). Helpers here
//! spin for a while after each job and are handed work through atomics: a caller that finds a
//! helper free gives it a share of the trees and works on its own share meanwhile; a caller that
//! finds them all busy (other threads, other forests) does the whole job itself. A job its
//! helper has not started by the time the caller is done with its own share is taken back and
//! run by the caller: a helper that is asleep or not scheduled (every core busy with other
//! processes) never makes the caller wait. Before that, such waits made one-point calls with
//! the default `threads` 2.5-13x slower than `threads=1` on a busy 2-core machine.
//!
//! Helpers are process-wide (one per extra core, at most [`MAX_HELPERS`]), started on first use
//! and restarted in a forked child (which inherits no threads): the fork handler of
//! [`super::watch_forks`] marks the child, so that a call costs a flag check instead of a
//! `getpid` system call (~150 ns here, on every one-point call). Idle helpers sleep on a condvar.
//!
//! The one unsafe step: a helper runs a job that lives on the caller's stack. The caller waits
//! for the helper to finish that job before the job goes out of scope, also when the caller's
//! own share panics (a drop guard waits), which makes the borrow sound.
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::{cores, watch_forks, FORKED};
use std::time::{Duration, Instant};

/// Helpers started at most (shares of a one-point call: this many + the caller).
pub const MAX_HELPERS: usize = 3;
/// How long an idle helper spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// A job as the helper sees it.
struct Job<'a> {
    run: &'a (dyn Fn() + Sync),
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

/// One helper's mailbox.
struct Slot {
    /// Held by the caller that hands this helper work.
    claimed: AtomicBool,
    /// Number of jobs posted; the helper runs the job when this moves.
    posted: AtomicU64,
    /// Number of jobs finished.
    finished: AtomicU64,
    /// Number of the last job taken: by the helper to run it, or by the poster to take it
    /// back (revoke) when the helper had not started it by the time the poster was done.
    taken: AtomicU64,
    job: AtomicPtr<Job<'static>>,
    sleeping: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Slot {
    fn new() -> Self {
        Slot {
            claimed: AtomicBool::new(false),
            posted: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            sleeping: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    fn serve(&self) {
        let mut seen = 0u64;
        loop {
            let mut since = Instant::now();
            let mut spins = 0u32;
            loop {
                let p = self.posted.load(Ordering::Acquire);
                if p != seen {
                    seen = p;
                    break;
                }
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins % 256 == 0 && since.elapsed() > SPIN {
                    let mut g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
                    self.sleeping.store(true, Ordering::SeqCst);
                    while self.posted.load(Ordering::SeqCst) == seen {
                        g = self.wake.wait(g).unwrap_or_else(PoisonError::into_inner);
                    }
                    self.sleeping.store(false, Ordering::SeqCst);
                    since = Instant::now();
                }
            }
            // Take job `seen` unless its poster took it back first (then it is not ours to
            // touch: the poster ran it and may already have dropped it).
            if self
                .taken
                .compare_exchange(seen - 1, seen, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            // SAFETY: the poster stored a job that stays alive until `finished` reaches `seen`
            // (see `Claim::finish`: once the helper has taken a job the poster can no longer
            // revoke it and waits), and posts again only after that.
            let job = unsafe { &*self.job.load(Ordering::Acquire) };
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| (job.run)())) {
                *job.panic.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
            }
            self.finished.store(seen, Ordering::Release);
        }
    }
}

/// Jobs taken back from their helper (tests only).
#[cfg(test)]
static REVOKED: AtomicU64 = AtomicU64::new(0);

/// A claimed helper with (possibly) a job in flight.
struct Claim<'s> {
    slot: &'s Slot,
    waiting_for: Option<u64>,
}

impl Claim<'_> {
    fn post(&mut self, job: &Job<'_>) {
        let ptr = std::ptr::from_ref(job).cast_mut().cast::<Job<'static>>();
        self.slot.job.store(ptr, Ordering::Release);
        let seq = self.slot.posted.fetch_add(1, Ordering::SeqCst) + 1;
        self.waiting_for = Some(seq);
        if self.slot.sleeping.load(Ordering::SeqCst) {
            let _g = self
                .slot
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.slot.wake.notify_one();
        }
    }

    /// Ends the posted job, if any: takes it back when the helper has not started it (true:
    /// the caller must run it itself), otherwise waits until the helper has finished it.
    /// A helper that was not scheduled in time (busy cores, or asleep) so costs no wait.
    fn finish(&mut self) -> bool {
        let Some(seq) = self.waiting_for.take() else {
            return false;
        };
        if self
            .slot
            .taken
            .compare_exchange(seq - 1, seq, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            #[cfg(test)]
            REVOKED.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let mut spins = 0u32;
        while self.slot.finished.load(Ordering::Acquire) != seq {
            spins = spins.wrapping_add(1);
            if spins < 1 << 14 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        false
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // Only reached with a job in flight when the caller is unwinding: a job taken back here
        // is simply not run.
        self.finish();
        self.slot.claimed.store(false, Ordering::Release);
    }
}

struct Helpers {
    slots: Vec<Arc<Slot>>,
}

/// A helper's share of the items and its results.
type Cell<'a, T, R> = Mutex<(Option<&'a mut [T]>, Vec<R>)>;

/// A block of items and of their results, taken by whichever thread gets there first.
type Block<'a, T, R> = Mutex<Option<(&'a mut [T], &'a mut [R])>>;

static HELPERS: Mutex<Option<Arc<Helpers>>> = Mutex::new(None);

/// The helpers of this process, or `None` when another thread is looking them up right now (the
/// caller then works alone; `try_lock` also means that a child forked while another thread held
/// the lock never hangs on it).
fn helpers() -> Option<Arc<Helpers>> {
    let mut g = match HELPERS.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return None,
    };
    if let Some(h) = g.as_ref() {
        if !FORKED.swap(false, Ordering::Relaxed) {
            return Some(Arc::clone(h));
        }
        // A forked child: the parent's helpers do not exist here. Leak them (their threads
        // cannot be joined) and start new ones.
        std::mem::forget(g.take());
    }
    // Without the fork handler a child could not tell that it has no helpers: work alone.
    if !watch_forks() {
        return None;
    }
    FORKED.store(false, Ordering::Relaxed);
    let n = (cores() - 1).min(MAX_HELPERS);
    let mut slots = Vec::with_capacity(n);
    for i in 0..n {
        let slot = Arc::new(Slot::new());
        let s = Arc::clone(&slot);
        let started = std::thread::Builder::new()
            .name(format!("rcf-fast-helper-{i}"))
            .spawn(move || s.serve());
        if started.is_err() {
            break;
        }
        slots.push(slot);
    }
    let h = Arc::new(Helpers { slots });
    *g = Some(Arc::clone(&h));
    Some(h)
}

/// `f` over shares of `items` (at most `threads` shares, `None`: one per core): the calling
/// thread works on the first share, free helpers on the others. `f` returns one result per item
/// of its share; results come back in item order. Fewer free helpers mean fewer shares, never
/// a wait for a busy helper.
pub fn map_shares<T: Send, R: Send>(
    threads: Option<usize>,
    items: &mut [T],
    f: impl Fn(&mut [T]) -> Vec<R> + Sync,
) -> Vec<R> {
    #[cfg(not(feature = "parallel"))]
    let threads = Some(threads.map_or(1, |_| 1));
    let want = threads.unwrap_or_else(cores).min(MAX_HELPERS + 1);
    if want <= 1 || items.len() < 8 {
        return f(items);
    }
    let Some(h) = helpers() else {
        return f(items);
    };
    let claims: Vec<Claim<'_>> = h
        .slots
        .iter()
        .filter(|s| {
            s.claimed
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
        .take(want - 1)
        .map(|s| Claim {
            slot: s,
            waiting_for: None,
        })
        .collect();
    if claims.is_empty() {
        return f(items);
    }
    let shares = claims.len() + 1;
    let per = items.len().div_ceil(shares);
    let mut chunks = items.chunks_mut(per);
    let first = chunks.next().expect("at least one item");
    // Each helper's share and result, behind a lock the helper takes once.
    let cells: Vec<Cell<'_, T, R>> = chunks.map(|c| Mutex::new((Some(c), Vec::new()))).collect();
    let f = &f;
    let runs: Vec<_> = cells
        .iter()
        .map(|cell| {
            move || {
                let mut g = cell.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(share) = g.0.take() {
                    g.1 = f(share);
                }
            }
        })
        .collect();
    let runs: Vec<&(dyn Fn() + Sync)> = runs.iter().map(|r| r as _).collect();
    let mut out = run_posted(claims, &runs, || f(first));
    drop(runs);
    for cell in cells {
        out.extend(cell.into_inner().unwrap_or_else(PoisonError::into_inner).1);
    }
    out
}

/// `f` over blocks of `block` items, each writing the results of its items into the matching
/// block of the output. The calling thread takes blocks from the front while one helper takes
/// them from the back, until they meet: the work balances itself (however long each item takes
/// and however late the helper starts), and an item is nearly always handled by the same thread
/// as on the previous call, which keeps its data in that core's cache. With more than one
/// helper this is [`map_shares`] with equal shares; with none free, a serial loop. `f` always
/// gets at most `block` items.
pub fn map_blocks<T: Send, R: Send + Clone + Default>(
    threads: Option<usize>,
    items: &mut [T],
    block: usize,
    f: impl Fn(&mut [T], &mut [R]) + Sync,
) -> Vec<R> {
    let mut out = vec![R::default(); items.len()];
    #[cfg(not(feature = "parallel"))]
    let threads = Some(threads.map_or(1, |_| 1));
    let want = threads.unwrap_or_else(cores).min(MAX_HELPERS + 1);
    let block = block.max(1);
    let serial = |items: &mut [T], out: &mut [R]| {
        for (a, r) in items.chunks_mut(block).zip(out.chunks_mut(block)) {
            f(a, r);
        }
    };
    if want <= 1 || items.len() < 2 * block {
        serial(items, &mut out);
        return out;
    }
    if want > 2 {
        let serial = &serial;
        return map_shares(threads, items, |share| {
            let mut o = vec![R::default(); share.len()];
            serial(share, &mut o);
            o
        });
    }
    let Some(h) = helpers() else {
        serial(items, &mut out);
        return out;
    };
    let Some(slot) = h.slots.iter().find(|s| {
        s.claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }) else {
        serial(items, &mut out);
        return out;
    };
    let claim = Claim {
        slot,
        waiting_for: None,
    };
    let blocks: Vec<Block<'_, T, R>> = items
        .chunks_mut(block)
        .zip(out.chunks_mut(block))
        .map(|b| Mutex::new(Some(b)))
        .collect();
    // Runs block i unless the other thread already took it.
    // A block whose lock is held is being taken by the other thread: never wait for it (a
    // contended lock can put the thread to sleep in the kernel).
    let take = |i: usize| -> bool {
        let taken = match blocks[i].try_lock() {
            Ok(mut g) => g.take(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        match taken {
            Some((a, r)) => {
                f(a, r);
                true
            }
            None => false,
        }
    };
    let from_back = || {
        for i in (0..blocks.len()).rev() {
            if !take(i) {
                break;
            }
        }
    };
    run_posted(vec![claim], &[&from_back], || {
        for i in 0..blocks.len() {
            if !take(i) {
                break;
            }
        }
    });
    drop(blocks);
    out
}

/// Posts `runs[i]` to `claims[i]`, runs `mine` on the calling thread, waits for every posted
/// job (also when `mine` panics), then returns `mine`'s result or passes on the first panic.
fn run_posted<R>(
    claims: Vec<Claim<'_>>,
    runs: &[&(dyn Fn() + Sync)],
    mine: impl FnOnce() -> R,
) -> R {
    let mut claims = claims;
    let jobs: Vec<Job<'_>> = runs
        .iter()
        .map(|&run| Job {
            run,
            panic: Mutex::new(None),
        })
        .collect();
    for (claim, job) in claims.iter_mut().zip(&jobs) {
        claim.post(job);
    }
    let mine = catch_unwind(AssertUnwindSafe(mine));
    for (claim, job) in claims.iter_mut().zip(&jobs) {
        // A job its helper had not started yet runs here instead of being waited for.
        if claim.finish() {
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| (job.run)())) {
                *job.panic.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
            }
        }
    }
    drop(claims);
    let out = match mine {
        Ok(r) => r,
        Err(e) => resume_unwind(e),
    };
    for job in &jobs {
        if let Some(e) = job
            .panic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            resume_unwind(e);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_back_in_order() {
        let mut items: Vec<u32> = (0..100).collect();
        for threads in [None, Some(1), Some(2), Some(4)] {
            let out = map_shares(threads, &mut items, |s| {
                s.iter_mut().map(|x| u64::from(*x) * 2).collect()
            });
            assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn blocks_fill_every_result_whichever_thread_runs_them() {
        let mut items: Vec<u32> = (0..103).collect();
        for threads in [None, Some(1), Some(2), Some(4)] {
            for block in [1, 4, 8, 200] {
                let out: Vec<u64> = map_blocks(threads, &mut items, block, |a, r| {
                    for (x, o) in a.iter_mut().zip(r.iter_mut()) {
                        *x += 1;
                        *o = u64::from(*x);
                    }
                });
                assert_eq!(out.len(), 103);
                assert!(
                    out.windows(2).all(|w| w[1] == w[0] + 1),
                    "{threads:?} {block}"
                );
            }
        }
        // Every item was visited exactly once per call (16 calls).
        assert_eq!(items[0], 16);
        assert_eq!(items[102], 102 + 16);
    }

    #[test]
    fn a_job_the_helper_has_not_started_is_run_by_the_caller() {
        let mut items: Vec<u32> = (0..64).collect();
        let before = REVOKED.load(Ordering::Relaxed);
        for round in 1..=20u32 {
            // Longer than the helpers spin: they are asleep when the next job is posted, and
            // the caller is done with a trivial job long before a woken helper runs.
            std::thread::sleep(SPIN * 3);
            let out = map_shares(Some(2), &mut items, |s| {
                s.iter_mut()
                    .map(|x| {
                        *x += 1;
                        *x
                    })
                    .collect::<Vec<u32>>()
            });
            assert_eq!(out, (0..64).map(|x| x + round).collect::<Vec<u32>>());
            let mut more: Vec<u32> = (0..64).collect();
            let blocks: Vec<u32> = map_blocks(Some(2), &mut more, 8, |a, r| {
                for (x, o) in a.iter().zip(r.iter_mut()) {
                    *o = x * 3;
                }
            });
            assert_eq!(blocks, (0..64).map(|x| x * 3).collect::<Vec<u32>>());
        }
        if cores() > 1 {
            assert!(
                REVOKED.load(Ordering::Relaxed) > before,
                "no job was ever taken back"
            );
        }
    }

    #[test]
    fn many_callers_at_once_all_finish() {
        std::thread::scope(|s| {
            for t in 0..4u32 {
                s.spawn(move || {
                    let mut items: Vec<u32> = (0..64).collect();
                    for _ in 0..500 {
                        let out = map_shares(None, &mut items, |sh| {
                            sh.iter_mut()
                                .map(|x| {
                                    *x += 1;
                                    *x + t
                                })
                                .collect()
                        });
                        assert_eq!(out.len(), 64);
                    }
                    assert_eq!(items[0], 500);
                    assert_eq!(items[63], 563);
                });
            }
        });
    }

    #[test]
    fn a_panicking_share_reaches_the_caller_and_helpers_stay_usable() {
        let mut items: Vec<u32> = (0..64).collect();
        let r = catch_unwind(AssertUnwindSafe(|| {
            map_shares(Some(2), &mut items, |s| {
                assert!(!s.contains(&40), "boom");
                s.to_vec()
            })
        }));
        assert!(r.is_err());
        let out = map_shares(Some(2), &mut items, |s| s.to_vec());
        assert_eq!(out.len(), 64);
    }
}
