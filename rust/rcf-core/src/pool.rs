//! Worker threads for batch calls. Each forest owns its pool, built on first use and rebuilt
//! after a `fork` (a child process inherits no threads), so forests stay usable under
//! multiprocessing. Without the `parallel` feature every map is serial.
use std::sync::{Arc, Mutex};

/// Lazily built thread pool; `threads == Some(1)` never builds one.
#[derive(Default)]
pub struct Pool {
    #[cfg(feature = "parallel")]
    inner: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>>,
    #[cfg(not(feature = "parallel"))]
    _inner: Mutex<Option<Arc<()>>>,
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        Pool::default()
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool")
    }
}

impl Pool {
    #[cfg(feature = "parallel")]
    fn get(&self, threads: Option<usize>) -> Option<Arc<rayon::ThreadPool>> {
        // available_parallelism reads cgroup files on every call (tens of microseconds): once.
        static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let n = threads.unwrap_or_else(|| {
            *CORES.get_or_init(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
        });
        if n <= 1 {
            return None;
        }
        let pid = std::process::id();
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((owner, pool)) = guard.as_ref() {
            if *owner == pid {
                return Some(Arc::clone(pool));
            }
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("rcf-fast-{i}"))
            .build()
            .ok()
            .map(Arc::new)?;
        *guard = Some((pid, Arc::clone(&pool)));
        Some(pool)
    }

    /// `f` over `items`, in parallel when more than one thread is allowed; results in order.
    pub fn map<T: Sync, R: Send>(
        &self,
        threads: Option<usize>,
        items: &[T],
        f: impl Fn(&T) -> R + Sync + Send,
    ) -> Vec<R> {
        #[cfg(feature = "parallel")]
        if let Some(pool) = self.get(threads) {
            use rayon::prelude::*;
            return pool.install(|| items.par_iter().map(&f).collect());
        }
        let _ = threads;
        items.iter().map(f).collect()
    }

    /// `f` over shares of `items`, one share per thread, for short calls (one point): the
    /// calling thread works on the first share itself while the pool takes the others. `f`
    /// returns one result per item of its share; results come back in item order.
    pub fn map_shares_inline<T: Send, R: Send>(
        &self,
        threads: Option<usize>,
        items: &mut [T],
        f: impl Fn(&mut [T]) -> Vec<R> + Sync + Send,
    ) -> Vec<R> {
        #[cfg(feature = "parallel")]
        if items.len() >= 8 {
            if let Some(pool) = self.get(threads) {
                let shares = pool.current_num_threads().min(items.len());
                let per = items.len().div_ceil(shares);
                let mut results: Vec<Vec<R>> =
                    std::iter::repeat_with(Vec::new).take(shares).collect();
                let f = &f;
                let mut work = items.chunks_mut(per).zip(results.iter_mut());
                let first = work.next();
                pool.in_place_scope(|s| {
                    for (share, out) in work {
                        s.spawn(move |_| *out = f(share));
                    }
                    if let Some((share, out)) = first {
                        *out = f(share);
                    }
                });
                return results.into_iter().flatten().collect();
            }
        }
        let _ = threads;
        f(items)
    }

    /// `f` over mutable `items`, in parallel when allowed; results in order.
    pub fn map_mut<T: Send, R: Send>(
        &self,
        threads: Option<usize>,
        items: &mut [T],
        f: impl Fn(&mut T) -> R + Sync + Send,
    ) -> Vec<R> {
        #[cfg(feature = "parallel")]
        if let Some(pool) = self.get(threads) {
            use rayon::prelude::*;
            return pool.install(|| items.par_iter_mut().map(&f).collect());
        }
        let _ = threads;
        items.iter_mut().map(f).collect()
    }
}
