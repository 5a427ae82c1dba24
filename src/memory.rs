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

/// Hands the kernel back the pages of code and read-only data that this process has mapped
/// from files (the executable and its libraries, ONNX Runtime's among them), so that only
/// what runs afterwards comes back. Call it once the models are loaded.
///
/// Loading runs code that the loop never runs again: tract's ONNX parser and optimiser, ONNX
/// Runtime's graph transformers, the self-test. Their pages stay mapped and count in the
/// resident set (for ViT-Tiny, a third of it) until memory runs short. `MADV_PAGEOUT` (Linux
/// 5.4) reclaims them now: pages that other processes also map are left alone, and the
/// loop's own pages are read back from the file at their next use. Returns the bytes advised.
pub fn release_cold_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return 0;
        };
        let mut advised = 0;
        let mut refused = None;
        for (start, len) in file_mappings_read_only(&maps) {
            // SAFETY: the range is one of this process's own mappings, read-only and backed by
            // a file: reclaimed pages are read back from that file, so no content changes.
            let done =
                unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
            if done == 0 {
                advised += len;
            } else {
                refused.get_or_insert_with(std::io::Error::last_os_error);
            }
        }
        if let Some(why) = refused {
            // EINVAL before Linux 5.4: those pages simply stay.
            log::debug!("madvise(MADV_PAGEOUT) refused on some mappings: {why}");
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// The ranges (start, length) of `/proc/self/maps` that a regular file backs and that are
/// neither writable nor shared: code and read-only data. Devices (a camera's buffers) and
/// anonymous memory are left out.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn file_mappings_read_only(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let _offset = fields.next()?;
            let _device = fields.next()?;
            let inode = fields.next()?;
            let path = fields.next()?;
            let private_read_only = matches!(perms.as_bytes(), [b'r', b'-', _, b'p']);
            let regular_file = inode != "0" && path.starts_with('/') && !path.starts_with("/dev/");
            if !(private_read_only && regular_file) {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            let len = end.checked_sub(start).filter(|&len| len > 0)?;
            Some((start, len))
        })
        .collect()
}

/// A field of /proc/self/status given in kB (`"VmRSS:"`, `"VmHWM:"`); `None` off Linux.
pub fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    field_kb(&status, field)
}

/// The first `field` of a /proc listing (`status`, `smaps`) given in kB.
fn field_kb(listing: &str, field: &str) -> Option<u64> {
    listing
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
    use super::user_limits_arenas;

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

    #[test]
    fn only_read_only_mappings_of_files_are_released() {
        let maps = "\
55d0c0a00000-55d0c0a40000 r--p 00000000 fe:01 1317 /usr/bin/edgevit
55d0c0a40000-55d0c2a40000 r-xp 00040000 fe:01 1317 /usr/bin/edgevit
55d0c2a40000-55d0c2b00000 rw-p 02040000 fe:01 1317 /usr/bin/edgevit
55d0c3000000-55d0c3100000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000400000 rw-s 00000000 00:06 512 /dev/video0
7f0000400000-7f0000600000 r--s 00000000 00:06 512 /dev/video0
7f0000600000-7f0000800000 r-xp 00000000 fe:01 2001 /usr/lib/libonnxruntime.so.1.31.1
7f0000800000-7f0000810000 r--p 00000000 00:00 0
7f0000810000-7f0000820000 r--s 00000000 fe:01 77 /var/lib/shared.bin
7fff00000000-7fff00001000 r-xp 00000000 00:00 0 [vdso]
";
        assert_eq!(
            super::file_mappings_read_only(maps),
            vec![
                (0x55d0c0a00000, 0x40000),
                (0x55d0c0a40000, 0x2000000),
                (0x7f0000600000, 0x200000),
            ]
        );
        assert!(super::file_mappings_read_only("garbage\n\n1-0 r--p 0 0 1 /x").is_empty());
    }
}
