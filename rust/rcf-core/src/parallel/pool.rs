//! The process-wide pool of batch calls (one-point calls use [`super::helpers`]): one rayon
//! pool with one thread per core, shared by every forest, started on first use and started
//! again in a forked child (which inherits no threads). A call with `threads = k` below the
//! number of cores splits its items into `k` parts, so it keeps at most `k` pool threads busy.
//! Without the `parallel` feature every map is serial.
#[cfg(feature = "parallel")]
use std::sync::{Arc, Mutex, TryLockError};

/// The pool and the process that started it.
#[cfg(feature = "parallel")]
static POOL: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

/// The pool of this process, or `None` (serial) for one thread or when it cannot be had
/// without waiting long: `try_lock` also means that a child forked while another thread held
/// the lock never hangs on it.
#[cfg(feature = "parallel")]
fn shared(threads: Option<usize>) -> Option<Arc<rayon::ThreadPool>> {
    if threads.unwrap_or_else(super::cores).min(super::cores()) <= 1 {
        return None;
    }
    let mut guard = None;
    for i in 0..64 {
        match POOL.try_lock() {
            Ok(g) => {
                guard = Some(g);
                break;
            }
            Err(TryLockError::Poisoned(p)) => {
                guard = Some(p.into_inner());
                break;
            }
            Err(TryLockError::WouldBlock) if i < 16 => std::hint::spin_loop(),
            Err(TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
    let mut guard = guard?;
    let pid = std::process::id();
    if let Some((owner, pool)) = guard.as_ref() {
        if *owner == pid {
            return Some(Arc::clone(pool));
        }
        // A forked child: the parent's threads do not exist here and cannot be joined.
        std::mem::forget(guard.take());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(super::cores())
        .thread_name(|i| format!("rcf-fast-{i}"))
        .build()
        .ok()
        .map(Arc::new)?;
    *guard = Some((pid, Arc::clone(&pool)));
    Some(pool)
}

/// Items per part so that `threads` parts (all cores for `None`) cover `n` items; `None` when
/// the call may use every pool thread (then rayon balances item by item).
#[cfg(feature = "parallel")]
fn part_size(threads: Option<usize>, n: usize) -> Option<usize> {
    match threads {
        Some(k) if k < super::cores() => Some(n.div_ceil(k.max(1)).max(1)),
        _ => None,
    }
}

/// `f` over `items`, in parallel when more than one thread is allowed; results in order.
pub fn map<T: Sync, R: Send>(
    threads: Option<usize>,
    items: &[T],
    f: impl Fn(&T) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(feature = "parallel")]
    if let Some(pool) = shared(threads) {
        use rayon::prelude::*;
        return pool.install(|| match part_size(threads, items.len()) {
            None => items.par_iter().map(&f).collect(),
            Some(per) => items
                .par_chunks(per)
                .map(|part| part.iter().map(&f).collect::<Vec<R>>())
                .collect::<Vec<Vec<R>>>()
                .into_iter()
                .flatten()
                .collect(),
        });
    }
    let _ = threads;
    items.iter().map(f).collect()
}

/// `f` over mutable `items`, in parallel when allowed; results in order.
pub fn map_mut<T: Send, R: Send>(
    threads: Option<usize>,
    items: &mut [T],
    f: impl Fn(&mut T) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(feature = "parallel")]
    if let Some(pool) = shared(threads) {
        use rayon::prelude::*;
        let per = part_size(threads, items.len());
        return pool.install(|| match per {
            None => items.par_iter_mut().map(&f).collect(),
            Some(per) => items
                .par_chunks_mut(per)
                .map(|part| part.iter_mut().map(&f).collect::<Vec<R>>())
                .collect::<Vec<Vec<R>>>()
                .into_iter()
                .flatten()
                .collect(),
        });
    }
    let _ = threads;
    items.iter_mut().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order_for_every_thread_count() {
        let items: Vec<u32> = (0..37).collect();
        for threads in [None, Some(1), Some(2), Some(3), Some(1024)] {
            assert_eq!(
                map(threads, &items, |x| x * 2),
                (0..37).map(|x| x * 2).collect::<Vec<_>>()
            );
            let mut m = items.clone();
            let out = map_mut(threads, &mut m, |x| {
                *x += 1;
                *x
            });
            assert_eq!(out, (1..38).collect::<Vec<_>>());
        }
    }
}
