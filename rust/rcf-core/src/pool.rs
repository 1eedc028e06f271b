//! Worker threads for batch calls (one-point calls use [`crate::helpers`]). Each forest owns its pool, built on first use and rebuilt
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
        let n = threads.unwrap_or_else(crate::helpers::cores);
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
