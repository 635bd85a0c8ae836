//! The process-wide alarm: a thread that ends zbk when a bound on the whole process passes,
//! for the waits no child's deadline covers (zbk's own reads and writes on a pool that stopped
//! answering, its config included). `zbk check -t` bounds its whole run; `zbk run` is ended
//! only when it stops making progress for the `[zfs] timeout`, so a long healthy run goes on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How a watchdog measures the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// From the moment it is armed (a Nagios plugin's `-t`).
    Total,
    /// Since the last `beat`: every supervised wait for a child beats, as does a wait for
    /// another run's lock, so only a thread stuck in a call of its own goes silent.
    Stall,
}

/// What ends the process when the bound passes: it is told what zbk was doing and for how
/// long it waited, prints, and exits.
pub type Fire = Box<dyn FnOnce(&str, Duration) + Send>;

struct Armed {
    bound: Bound,
    limit: Duration,
    fire: Option<Fire>,
}

fn armed() -> &'static Mutex<Option<Armed>> {
    static ARMED: OnceLock<Mutex<Option<Armed>>> = OnceLock::new();
    ARMED.get_or_init(|| Mutex::new(None))
}

fn doing_now() -> &'static Mutex<String> {
    static DOING: OnceLock<Mutex<String>> = OnceLock::new();
    DOING.get_or_init(|| Mutex::new(String::new()))
}

/// Milliseconds since `epoch()` of the last beat.
static LAST_BEAT: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Says what zbk is about to wait for, for the watchdog's message, until dropped: then what
/// was said before holds again.
pub struct Doing(Option<String>);

impl Doing {
    pub fn new(what: String) -> Doing {
        Doing(
            doing_now()
                .lock()
                .ok()
                .map(|mut slot| std::mem::replace(&mut *slot, what)),
        )
    }
}

impl Drop for Doing {
    fn drop(&mut self) {
        if let (Some(before), Ok(mut slot)) = (self.0.take(), doing_now().lock()) {
            *slot = before;
        }
    }
}

/// Says what zbk waits for from now on, when no scope ends it (reading its config).
pub fn doing(what: String) {
    if let Ok(mut slot) = doing_now().lock() {
        *slot = what;
    }
}

/// A sign of life: zbk is not stuck.
pub fn beat() {
    LAST_BEAT.store(millis_since_epoch(), Ordering::Relaxed);
}

/// Arms the process's watchdog (one per process; arming again replaces it).
pub fn arm(bound: Bound, limit: Duration, fire: Fire) {
    let armed_at = Instant::now();
    beat();
    if let Ok(mut slot) = armed().lock() {
        *slot = Some(Armed {
            bound,
            limit,
            fire: Some(fire),
        });
    }
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(mut slot) = armed().lock() else { return };
        let Some(state) = slot.as_mut() else { return };
        let waited = match state.bound {
            Bound::Total => armed_at.elapsed(),
            Bound::Stall => Duration::from_millis(
                millis_since_epoch().saturating_sub(LAST_BEAT.load(Ordering::Relaxed)),
            ),
        };
        if waited >= state.limit {
            let what = doing_now().lock().map(|d| d.clone()).unwrap_or_default();
            if let Some(fire) = state.fire.take() {
                // Under the lock: `disarm` cannot slip in between, and the process ends here.
                fire(&what, state.limit);
            }
            return;
        }
    });
}

/// Changes the armed watchdog's limit (once the config that sets it has been read).
pub fn set_limit(limit: Duration) {
    beat();
    if let Ok(mut slot) = armed().lock() {
        if let Some(state) = slot.as_mut() {
            state.limit = limit;
        }
    }
}

/// Disarms it: the command has its answer and prints it itself.
pub fn disarm() {
    if let Ok(mut slot) = armed().lock() {
        *slot = None;
    }
}
