//! The V4L2 bindings edgevit builds with (vendor/v4l2-sys-mit, generated ahead of time so
//! that no libclang is needed) against the kernel header installed on this machine: gcc
//! compiles a program that prints the sizes and ioctl numbers edgevit relies on, and each
//! must equal the Rust side's.
//!
//! Without gcc or `<linux/videodev2.h>` the test fails, naming the command that installs them.

mod common;

use std::collections::HashMap;
use std::mem::size_of;
use std::process::Command;
use v4l::v4l2::vidioc;
use v4l::v4l_sys as sys;

const STRUCTS: [&str; 10] = [
    "v4l2_capability",
    "v4l2_format",
    "v4l2_pix_format",
    "v4l2_pix_format_mplane",
    "v4l2_buffer",
    "v4l2_plane",
    "v4l2_requestbuffers",
    "v4l2_fmtdesc",
    "v4l2_frmsizeenum",
    "v4l2_streamparm",
];

const IOCTLS: [&str; 11] = [
    "VIDIOC_QUERYCAP",
    "VIDIOC_ENUM_FMT",
    "VIDIOC_G_FMT",
    "VIDIOC_S_FMT",
    "VIDIOC_REQBUFS",
    "VIDIOC_QUERYBUF",
    "VIDIOC_QBUF",
    "VIDIOC_DQBUF",
    "VIDIOC_STREAMON",
    "VIDIOC_STREAMOFF",
    "VIDIOC_S_PARM",
];

/// `name value` lines from the C side; the test fails where it cannot be built.
fn from_the_header() -> HashMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let mut program =
        String::from("#include <stdio.h>\n#include <linux/videodev2.h>\nint main(void) {\n");
    for s in STRUCTS {
        program.push_str(&format!("printf(\"{s} %zu\\n\", sizeof(struct {s}));\n"));
    }
    for i in IOCTLS {
        program.push_str(&format!("printf(\"{i} %lu\\n\", (unsigned long){i});\n"));
    }
    program.push_str("return 0;\n}\n");
    let source = dir.path().join("sizes.c");
    let binary = dir.path().join("sizes");
    std::fs::write(&source, program).unwrap();
    let compiled = Command::new("gcc")
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .output();
    let compiled = match compiled {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!("gcc: {}", String::from_utf8_lossy(&out.stderr));
            false
        }
        Err(e) => {
            eprintln!("gcc: {e}");
            false
        }
    };
    if !compiled {
        common::missing("gcc with <linux/videodev2.h> (linux-libc-dev)");
    }
    let output = Command::new(&binary).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
#[allow(clippy::unnecessary_cast)] // ioctl numbers are c_ulong on 64-bit Linux, c_int elsewhere
fn the_bundled_bindings_match_the_installed_kernel_header() {
    let header = from_the_header();
    let rust: HashMap<&str, u64> = [
        ("v4l2_capability", size_of::<sys::v4l2_capability>()),
        ("v4l2_format", size_of::<sys::v4l2_format>()),
        ("v4l2_pix_format", size_of::<sys::v4l2_pix_format>()),
        (
            "v4l2_pix_format_mplane",
            size_of::<sys::v4l2_pix_format_mplane>(),
        ),
        ("v4l2_buffer", size_of::<sys::v4l2_buffer>()),
        ("v4l2_plane", size_of::<sys::v4l2_plane>()),
        ("v4l2_requestbuffers", size_of::<sys::v4l2_requestbuffers>()),
        ("v4l2_fmtdesc", size_of::<sys::v4l2_fmtdesc>()),
        ("v4l2_frmsizeenum", size_of::<sys::v4l2_frmsizeenum>()),
        ("v4l2_streamparm", size_of::<sys::v4l2_streamparm>()),
    ]
    .into_iter()
    .map(|(n, s)| (n, s as u64))
    .chain(
        [
            ("VIDIOC_QUERYCAP", vidioc::VIDIOC_QUERYCAP),
            ("VIDIOC_ENUM_FMT", vidioc::VIDIOC_ENUM_FMT),
            ("VIDIOC_G_FMT", vidioc::VIDIOC_G_FMT),
            ("VIDIOC_S_FMT", vidioc::VIDIOC_S_FMT),
            ("VIDIOC_REQBUFS", vidioc::VIDIOC_REQBUFS),
            ("VIDIOC_QUERYBUF", vidioc::VIDIOC_QUERYBUF),
            ("VIDIOC_QBUF", vidioc::VIDIOC_QBUF),
            ("VIDIOC_DQBUF", vidioc::VIDIOC_DQBUF),
            ("VIDIOC_STREAMON", vidioc::VIDIOC_STREAMON),
            ("VIDIOC_STREAMOFF", vidioc::VIDIOC_STREAMOFF),
            ("VIDIOC_S_PARM", vidioc::VIDIOC_S_PARM),
        ]
        .into_iter()
        .map(|(n, v)| (n, v as u64)),
    )
    .collect();
    for name in STRUCTS.iter().chain(IOCTLS.iter()) {
        let c = header
            .get(*name)
            .unwrap_or_else(|| panic!("the C program printed no {name}: {header:?}"));
        assert_eq!(rust[name], *c, "{name}: Rust {} vs C {c}", rust[name]);
    }
    // A few constants the capture code uses.
    assert_eq!(sys::V4L2_CAP_VIDEO_CAPTURE_MPLANE, 0x1000);
    assert_eq!(sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, 9);
}
