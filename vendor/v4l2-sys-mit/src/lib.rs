//! Raw V4L2 bindings, generated ahead of time by `bindgen` 0.65.1 from `wrapper.h`
//! (`#include <linux/videodev2.h>`) with Debian 12's kernel headers (Linux 6.1), one file per
//! 64-bit target: see `regenerate.sh`. The original crate generates them at build time.
#![allow(clippy::all)]
#![allow(deref_nullptr)]
#![allow(non_camel_case_types)]
#![allow(non_snake_case)]
#![allow(non_upper_case_globals)]

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
include!("x86_64.rs");

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
include!("aarch64.rs");

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
compile_error!(
    "edgevit's v4l2-sys-mit carries bindings for 64-bit Linux on x86_64 and aarch64 only: \
     run vendor/v4l2-sys-mit/regenerate.sh for another target"
);
