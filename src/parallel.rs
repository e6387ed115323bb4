//! The one worker pool of the library's experiments: jobs `0..n` over a number of threads,
//! results in job order whatever the thread count (the reproducibility contract at the crate
//! root). Used by the modularity sweep, its reanalysis, the probes and chip evaluation. The
//! engine's parallel stepping of a timestep's cores is not a pool of jobs but a fixed
//! partition per timestep (`emulator::engine`), and stays with the engine.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `job(0..n)` spread over `threads` threads (at least one, at most `n`), the results in index
/// order. The first job to fail stops the workers from taking new jobs; the error of the
/// earliest failed index is returned. A panicking job is re-raised on the caller's thread.
///
/// # Errors
/// The first error (by index) a job returned.
pub fn try_map<T: Send, E: Send>(
    threads: usize,
    n: usize,
    job: &(dyn Fn(usize) -> Result<T, E> + Sync),
) -> Result<Vec<T>, E> {
    if threads <= 1 || n <= 1 {
        return (0..n).map(job).collect();
    }
    let slots: Mutex<Vec<Option<Result<T, E>>>> = Mutex::new((0..n).map(|_| None).collect());
    let panicked: Mutex<Option<Box<dyn std::any::Any + Send>>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(n) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= n {
                        break;
                    }
                    let out = match std::panic::catch_unwind(AssertUnwindSafe(|| job(k))) {
                        Ok(out) => out,
                        Err(payload) => {
                            // Keep the first panic's payload for the caller; stop the others.
                            panicked
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(payload);
                            next.store(n, Ordering::Relaxed);
                            break;
                        }
                    };
                    let failed = out.is_err();
                    slots.lock().unwrap_or_else(|e| e.into_inner())[k] = Some(out);
                    if failed {
                        // Let the other workers stop early.
                        next.store(n, Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    if let Some(payload) = panicked.into_inner().unwrap_or_else(|e| e.into_inner()) {
        std::panic::resume_unwind(payload);
    }
    let slots = slots.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(n);
    let mut gap = false;
    for slot in slots {
        match slot {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => return Err(e),
            // Jobs left untaken after a failure (the failure comes later in the list).
            None => gap = true,
        }
    }
    assert!(!gap, "every job runs unless one failed");
    Ok(out)
}

/// `f` over `0..n` on `threads` threads, the results in index order.
pub fn map<T: Send>(threads: usize, n: usize, f: &(dyn Fn(usize) -> T + Sync)) -> Vec<T> {
    match try_map::<T, std::convert::Infallible>(threads, n, &|k| Ok(f(k))) {
        Ok(v) => v,
        Err(e) => match e {},
    }
}

/// `f` over `items` on `threads` threads, the results in input order.
pub fn over<T: Sync, R: Send>(items: &[T], threads: usize, f: &(dyn Fn(&T) -> R + Sync)) -> Vec<R> {
    map(threads, items.len(), &|k| f(&items[k]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_job_order_at_any_thread_count() {
        let one = map(1, 100, &|k| k * k);
        for t in [2, 3, 8, 200] {
            assert_eq!(map(t, 100, &|k| k * k), one);
        }
        assert!(map(4, 0, &|k| k).is_empty());
        assert_eq!(over(&[3, 1, 2], 2, &|x| x * 10), vec![30, 10, 20]);
    }

    #[test]
    fn the_earliest_failure_is_returned() {
        for t in [1, 2, 4] {
            let r = try_map(t, 50, &|k| if k % 7 == 3 { Err(k) } else { Ok(k) });
            assert_eq!(r, Err(3), "{t} threads");
        }
        assert_eq!(try_map::<_, ()>(2, 5, &Ok), Ok(vec![0, 1, 2, 3, 4]));
    }

    #[test]
    fn a_panicking_job_panics_the_caller_with_its_own_message() {
        let r = std::panic::catch_unwind(|| {
            map(2, 8, &|k| {
                assert!(k != 5, "job five failed");
                k
            })
        });
        let payload = r.unwrap_err();
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(msg.contains("job five failed"), "{msg}");
    }
}
