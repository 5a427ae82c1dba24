//! What `edgevit::memory` hands back to the kernel, measured on this test process's own
//! resident set and mappings. In a test binary of their own, and one test, run in sequence:
//! in the library's unit tests other tests' threads allocated and mapped beside them, and a
//! code-page release paged out the mappings those tests were using.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use edgevit::memory::{release_cold_code, release_free, status_kb};
use std::io::Write;

/// The resident kB of the mapping that starts at `start`, from /proc/self/smaps.
fn mapping_resident_kb(start: usize) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
    let header = format!("\n{start:x}-");
    let at = smaps
        .find(&header)
        .unwrap_or_else(|| panic!("no mapping at {start:x} in smaps"));
    smaps[at..]
        .lines()
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("an Rss line")
}

fn resident_kb() -> u64 {
    status_kb("VmRSS:").expect("VmRSS in /proc/self/status")
}

/// A file's pages mapped read-only, all of them touched, are resident; once released, the
/// kernel has taken them back, and reading them again still gives the file's bytes.
fn releasing_cold_code_takes_back_file_pages() {
    // Beside the test binary, on the disk's file system: a tmpfs file's pages are not
    // reclaimed this way.
    let dir = std::env::current_exe().expect("the test binary's path");
    let dir = dir.parent().expect("its folder");
    let mut file = tempfile::NamedTempFile::new_in(dir).expect("a file beside the test binary");
    let pages = 256;
    let bytes: Vec<u8> = (0..pages * 4096).map(|i| (i % 251) as u8).collect();
    file.write_all(&bytes).expect("written");
    // Written back, so that its pages are clean: dirty pages are not reclaimed.
    file.as_file().sync_all().expect("synced");
    let len = bytes.len();
    // SAFETY: a fresh read-only private mapping of a file this test owns, unmapped below.
    let start = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(file.as_file()),
            0,
        )
    };
    assert_ne!(start, libc::MAP_FAILED);
    // SAFETY: `start` maps `len` readable bytes until the munmap below.
    let mapped = unsafe { std::slice::from_raw_parts(start as *const u8, len) };
    let sum = |m: &[u8]| m.iter().step_by(4096).map(|&b| u64::from(b)).sum::<u64>();
    let expected = sum(&bytes);
    assert_eq!(sum(mapped), expected);
    let before = mapping_resident_kb(start as usize);
    let advised = release_cold_code();
    let after = mapping_resident_kb(start as usize);
    assert_eq!(before, 1024, "all 256 pages resident after reading them");
    assert!(advised >= len, "{advised} bytes advised");
    // Pages still in a CPU's batch on their way to the LRU lists escape reclaim.
    assert!(after * 8 <= before, "resident after releasing: {after} kB");
    assert_eq!(sum(mapped), expected, "the file's bytes read back");
    // SAFETY: unmaps the mapping made above; `mapped` is not used after this.
    assert_eq!(unsafe { libc::munmap(start, len) }, 0);
}

/// Freed memory below the arena's top stays resident until it is released.
fn releasing_returns_freed_memory_to_the_system() {
    let chunks: Vec<Vec<u8>> = (0..2048).map(|i| vec![i as u8; 32 << 10]).collect();
    // Held, so that the freed chunks lie below it and glibc cannot trim them on its own.
    let pin = vec![1u8; 32 << 10];
    drop(chunks);
    let before = resident_kb();
    release_free();
    let after = resident_kb();
    assert!(
        before.saturating_sub(after) > 32 << 10,
        "64 MB freed, resident {before} kB before and {after} kB after"
    );
    assert_eq!(pin[0], 1);
}

#[test]
fn memory_goes_back_to_the_kernel() {
    releasing_returns_freed_memory_to_the_system();
    releasing_cold_code_takes_back_file_pages();
}
