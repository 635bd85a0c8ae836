//! A bounded pool of scoped worker threads over a list of items, for the commands that work
//! on several hosts at once (`run --jobs`, reap's destroys).
//!
//! Workers take the next item from a shared counter, so no lock is held while an item is
//! worked on, and a panic while working on one item is caught and returned as that item's
//! outcome: the worker goes on with the next item, and the caller reports the item as failed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The `--jobs` default when neither the command line nor the config sets one: one host per
/// CPU, at most four. A backup mostly waits on disks and the network, but every job also costs
/// the pool's I/O and a client's ssh connection, so the default stays small.
pub fn default_jobs(cpus: usize) -> usize {
    cpus.clamp(1, 4)
}

/// The CPUs this process may use, as the scheduler reports them; 1 when unknown.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Calls `work` on every item, with up to `jobs` items at a time, and returns each item's
/// outcome in the order of `items`: `Err` with the panic's message when `work` panicked.
pub fn map<T, R, F>(items: &[T], jobs: usize, work: F) -> Vec<Result<R, String>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<R, String>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                // The counter is the only thing shared while an item is worked on.
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let outcome = catch_unwind(AssertUnwindSafe(|| work(item))).map_err(|payload| {
                    payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".to_string())
                });
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err("never ran".to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn outcomes_come_back_in_order() {
        let items: Vec<u32> = (0..20).collect();
        let out = map(&items, 3, |n| n * 2);
        let doubled: Vec<u32> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(doubled, (0..20).map(|n| n * 2).collect::<Vec<_>>());
        assert!(map(&Vec::<u32>::new(), 4, |n| *n).is_empty());
    }

    #[test]
    fn jobs_run_at_the_same_time() {
        // Three items that each wait for the other two: only three workers at once get past.
        let barrier = Barrier::new(3);
        let out = map(&[1, 2, 3], 3, |_| {
            barrier.wait();
        });
        assert!(out.iter().all(Result::is_ok));
    }

    #[test]
    fn a_panic_fails_its_item_and_the_others_still_run() {
        let items = ["a", "boom", "c", "d"];
        for jobs in [1, 2, 4] {
            let out = map(&items, jobs, |s| {
                if *s == "boom" {
                    panic!("exploded on {s}");
                }
                s.to_uppercase()
            });
            assert_eq!(out[0].as_deref(), Ok("A"));
            assert_eq!(out[1], Err("exploded on boom".to_string()));
            assert_eq!(out[2].as_deref(), Ok("C"));
            assert_eq!(out[3].as_deref(), Ok("D"), "jobs {jobs}");
        }
    }

    #[test]
    fn the_default_suits_a_fleet() {
        assert_eq!(default_jobs(0), 1);
        assert_eq!(default_jobs(1), 1);
        assert_eq!(default_jobs(2), 2);
        assert_eq!(default_jobs(64), 4);
    }
}
