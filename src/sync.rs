//! A lock taken the same way everywhere: past a poisoning. A thread that panicked while holding
//! one of edgevit's locks leaves nothing half-written that matters (plain buffers, counters,
//! the spool, whose files are checked on open), and the rest of the process must go on
//! delivering results, so the poison is ignored rather than spread as a second panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
