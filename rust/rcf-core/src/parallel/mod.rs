//! Every thread the crate starts, in one place, shared by all forests of the process.
//!
//! How `threads` works (`ForestConfig::threads`, the Python `threads=` argument): it is the
//! most threads one call of one forest works on at once, the calling thread included; `None`
//! means one per core. It never changes results. Two engines serve it:
//! - one-point calls (`score`, `update`, `score_update`) hand shares of the trees to
//!   [`helpers`]: at most [`helpers::MAX_HELPERS`] spinning threads for the whole process;
//! - batch calls (`*_many`) run on [`pool`]: one rayon pool for the whole process with one
//!   thread per core, started on first use.
//!
//! So a process holds at most `cores + MAX_HELPERS` worker threads, however many forests it
//! has and whatever their `threads`; values above the number of cores act as the number of
//! cores. Both engines start again in a forked child (which inherits no threads).
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

pub mod helpers;
pub mod pool;

/// Set in a forked child by the handler that [`watch_forks`] registers: the helpers that the
/// parent started do not run there.
pub(crate) static FORKED: AtomicBool = AtomicBool::new(false);

/// Forks since the handler was registered, as seen by this process (0 in the first process,
/// incremented in each child).
static FORK_GENERATION: AtomicU32 = AtomicU32::new(0);

/// Registers (once per process; a child inherits it) the fork handler that sets [`FORKED`]
/// and counts [`fork_generation`]. False when that failed.
pub fn watch_forks() -> bool {
    #[cfg(unix)]
    {
        extern "C" fn in_child() {
            FORKED.store(true, Ordering::Relaxed);
            FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
        }
        static WATCHING: OnceLock<bool> = OnceLock::new();
        // SAFETY: registers a handler that only stores to atomics (async-signal-safe); no
        // handler runs before or after the fork in the parent.
        *WATCHING.get_or_init(|| unsafe { libc::pthread_atfork(None, None, Some(in_child)) } == 0)
    }
    #[cfg(not(unix))]
    true
}

/// Number of forks between the process that called [`watch_forks`] first and this one. A lock
/// taken in an older generation belongs to a thread that does not exist in this process.
pub fn fork_generation() -> u32 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Cores of this machine, read once (the call reads cgroup files).
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}
