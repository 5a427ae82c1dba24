//! Resident memory of a long-running process on glibc.
//!
//! glibc's allocator gives each thread that allocates its own arena (up to 8 per core) and
//! keeps freed memory in it. edgevit's threads (reader, workers, collector) each allocate
//! per frame, so without a limit every one of them holds its own high-water mark: measured
//! here, ViT-Tiny on tract took 98 MB at 1080p with the default arenas and 83 MB with two,
//! at the same speed (one arena cost up to 10% in frames per second on a small model).
//! Loading a model also leaves the parsed graph's memory free but resident until something
//! returns it to the system.
//!
//! Both are settings of the C library, so they do nothing elsewhere (musl, other systems).

/// Arenas the allocator may use, unless the user chose (`MALLOC_ARENA_MAX`, or
/// `glibc.malloc.arena_max` in `GLIBC_TUNABLES`).
pub const DEFAULT_ARENAS: i32 = 2;

/// Limits glibc's allocator to [`DEFAULT_ARENAS`] arenas, unless the environment already
/// sets a limit. Call it first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    let arena_max = std::env::var_os("MALLOC_ARENA_MAX");
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    if !user_limits_arenas(arena_max.is_some(), tunables.as_deref()) {
        set_arena_max(DEFAULT_ARENAS);
    }
}

/// Whether the environment limits the arenas already: `MALLOC_ARENA_MAX` is set, or
/// `GLIBC_TUNABLES` names `glibc.malloc.arena_max`.
fn user_limits_arenas(arena_max_set: bool, tunables: Option<&str>) -> bool {
    arena_max_set
        || tunables.is_some_and(|t| {
            t.split(':')
                .any(|item| item.split('=').next() == Some("glibc.malloc.arena_max"))
        })
}

/// Returns the allocator's free memory to the system: worth it once after loading a model,
/// whose parsing and optimisation leave tens of megabytes free.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A field of /proc/self/status given in kB (`"VmRSS:"`, `"VmHWM:"`); `None` off Linux.
pub fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: i32) {
    // SAFETY: mallopt with M_ARENA_MAX only records a limit; it takes no pointer.
    let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    if accepted != 1 {
        log::debug!("the C library refused M_ARENA_MAX = {arenas}");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) {}

#[cfg(test)]
mod tests {
    use super::{status_kb, user_limits_arenas};

    #[test]
    fn the_users_own_limit_wins() {
        assert!(!user_limits_arenas(false, None));
        assert!(user_limits_arenas(true, None));
        assert!(user_limits_arenas(
            false,
            Some("glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=4")
        ));
        assert!(!user_limits_arenas(
            false,
            Some("glibc.malloc.trim_threshold=131072")
        ));
    }

    fn resident_kb() -> u64 {
        status_kb("VmRSS:").expect("VmRSS in /proc/self/status")
    }

    /// Freed memory below the arena's top stays resident until it is released.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn releasing_returns_freed_memory_to_the_system() {
        let chunks: Vec<Vec<u8>> = (0..2048).map(|i| vec![i as u8; 32 << 10]).collect();
        // Held, so that the freed chunks lie below it and glibc cannot trim them on its own.
        let pin = vec![1u8; 32 << 10];
        drop(chunks);
        let before = resident_kb();
        super::release_free();
        let after = resident_kb();
        assert!(
            before.saturating_sub(after) > 32 << 10,
            "64 MB freed, resident {before} kB before and {after} kB after"
        );
        assert_eq!(pin[0], 1);
    }
}
