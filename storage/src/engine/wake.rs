//! How the engine's background threads (flusher, compactor) are woken and told to stop.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Flags {
    requested: bool,
    stop: bool,
}

/// A background thread's wake-up flags and the condition variable it waits on.
#[derive(Default)]
pub(super) struct Signal {
    flags: Mutex<Flags>,
    cvar: Condvar,
}

impl Signal {
    /// Asks the thread to run now (and, with `stop`, to end for good).
    pub(super) fn wake(&self, stop: bool) {
        if let Ok(mut flags) = self.flags.lock() {
            flags.requested = true;
            flags.stop |= stop;
        }
        self.cvar.notify_all();
    }

    /// Waits up to `timeout` for a wake-up: `Some(true)` when asked to run, `Some(false)` when the
    /// timeout passed, `None` when told to stop.
    pub(super) fn wait(&self, timeout: Duration) -> Option<bool> {
        let guard = self.flags.lock().ok()?;
        let (mut guard, _) = self
            .cvar
            .wait_timeout_while(guard, timeout, |f| !f.requested && !f.stop)
            .ok()?;
        if guard.stop {
            return None;
        }
        Some(std::mem::take(&mut guard.requested))
    }
}
