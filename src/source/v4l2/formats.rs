//! Camera pixel formats edgevit understands, and how a driver buffer becomes a tightly packed
//! [`Frame`](crate::frame::Frame) payload (drivers may pad lines and split planes).

use super::raw::PixFormat;
use crate::frame::PixelFormat;

/// A V4L2 format edgevit can capture, with its four-character code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraFormat {
    Yuyv,
    /// NV12 in one plane (`NV12`) or two (`NM12`, multi-planar drivers).
    Nv12,
    Nv12TwoPlanes,
    Grey,
    Rgb24,
    Bgr24,
    Mjpeg,
}

/// The order formats are tried in when the configuration names none: raw formats first
/// (no decode cost), MJPEG last (what UVC cameras offer at high resolutions).
pub const PREFERENCE: [CameraFormat; 7] = [
    CameraFormat::Yuyv,
    CameraFormat::Nv12,
    CameraFormat::Nv12TwoPlanes,
    CameraFormat::Rgb24,
    CameraFormat::Bgr24,
    CameraFormat::Grey,
    CameraFormat::Mjpeg,
];

impl CameraFormat {
    pub fn fourcc(self) -> [u8; 4] {
        *match self {
            CameraFormat::Yuyv => b"YUYV",
            CameraFormat::Nv12 => b"NV12",
            CameraFormat::Nv12TwoPlanes => b"NM12",
            CameraFormat::Grey => b"GREY",
            CameraFormat::Rgb24 => b"RGB3",
            CameraFormat::Bgr24 => b"BGR3",
            CameraFormat::Mjpeg => b"MJPG",
        }
    }

    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        match &code {
            b"JPEG" => Some(CameraFormat::Mjpeg),
            _ => PREFERENCE.into_iter().find(|f| f.fourcc() == code),
        }
    }

    /// Parses a configured name: a four-character code or a friendly name.
    pub fn parse(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "MJPEG" | "JPEG" => Some(CameraFormat::Mjpeg),
            "RGB24" => Some(CameraFormat::Rgb24),
            "BGR24" => Some(CameraFormat::Bgr24),
            "GRAY" | "GRAY8" | "GREY" => Some(CameraFormat::Grey),
            "NV12M" => Some(CameraFormat::Nv12TwoPlanes),
            _ => {
                let bytes: [u8; 4] = upper.as_bytes().try_into().ok()?;
                Self::from_fourcc(bytes)
            }
        }
    }

    pub fn pixel_format(self) -> PixelFormat {
        match self {
            CameraFormat::Yuyv => PixelFormat::Yuyv,
            CameraFormat::Nv12 | CameraFormat::Nv12TwoPlanes => PixelFormat::Nv12,
            CameraFormat::Grey => PixelFormat::Gray8,
            CameraFormat::Rgb24 => PixelFormat::Rgb24,
            CameraFormat::Bgr24 => PixelFormat::Bgr24,
            CameraFormat::Mjpeg => PixelFormat::Mjpeg,
        }
    }

    /// Bytes of one line of pixels without padding (of the luma plane for NV12).
    fn line_bytes(self, width: u32) -> usize {
        let width = width as usize;
        match self {
            CameraFormat::Yuyv => width * 2,
            CameraFormat::Rgb24 | CameraFormat::Bgr24 => width * 3,
            CameraFormat::Nv12 | CameraFormat::Nv12TwoPlanes | CameraFormat::Grey => width,
            CameraFormat::Mjpeg => 0,
        }
    }
}

/// A buffer too short for the negotiated format: a damaged frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} frame of {width}x{height} needs {needed} bytes in plane {plane}, the driver gave {got}")]
pub struct ShortFrame {
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    pub plane: usize,
    pub needed: usize,
    pub got: usize,
}

/// Copies the planes of a driver buffer into one packed frame payload, in `out`'s memory
/// (whatever it held is replaced; it grows if it is too small).
pub fn pack(
    format: CameraFormat,
    pix: &PixFormat,
    planes: &[&[u8]],
    mut out: Vec<u8>,
) -> Result<Vec<u8>, ShortFrame> {
    let (width, height) = (pix.width, pix.height);
    let short = |plane: usize, needed: usize, got: usize| ShortFrame {
        format: format.pixel_format().name(),
        width,
        height,
        plane,
        needed,
        got,
    };
    let plane = |i: usize| planes.get(i).copied().unwrap_or(&[]);
    if format == CameraFormat::Mjpeg {
        let data = plane(0);
        if data.is_empty() {
            return Err(short(0, 1, 0));
        }
        out.clear();
        out.extend_from_slice(data);
        return Ok(out);
    }
    let line = format.line_bytes(width);
    // Never more than the driver gave: the size comes from the driver, the bytes are real.
    let given: usize = planes.iter().map(|p| p.len()).sum();
    out.clear();
    out.reserve(
        format
            .pixel_format()
            .raw_len(width, height)
            .unwrap_or_default()
            .min(given),
    );
    let stride = |i: usize| (pix.bytes_per_line[i] as usize).max(line);
    let height = height as usize;
    let chroma_rows = height.div_ceil(2);
    let chroma_line = 2 * (width as usize).div_ceil(2);
    match format {
        CameraFormat::Nv12 => {
            // One plane: luma lines, then interleaved chroma lines, both at the same stride.
            let chroma_start = stride(0).saturating_mul(height);
            if !copy_rows(&mut out, plane(0), 0, stride(0), line, height)
                || !copy_rows(
                    &mut out,
                    plane(0),
                    chroma_start,
                    stride(0),
                    chroma_line,
                    chroma_rows,
                )
            {
                let needed = needed_bytes(chroma_start, stride(0), chroma_line, chroma_rows);
                return Err(short(0, needed, plane(0).len()));
            }
        }
        CameraFormat::Nv12TwoPlanes => {
            if !copy_rows(&mut out, plane(0), 0, stride(0), line, height) {
                return Err(short(
                    0,
                    needed_bytes(0, stride(0), line, height),
                    plane(0).len(),
                ));
            }
            let chroma_stride = (pix.bytes_per_line[1] as usize).max(chroma_line);
            if !copy_rows(
                &mut out,
                plane(1),
                0,
                chroma_stride,
                chroma_line,
                chroma_rows,
            ) {
                let needed = needed_bytes(0, chroma_stride, chroma_line, chroma_rows);
                return Err(short(1, needed, plane(1).len()));
            }
        }
        _ => {
            if !copy_rows(&mut out, plane(0), 0, stride(0), line, height) {
                return Err(short(
                    0,
                    needed_bytes(0, stride(0), line, height),
                    plane(0).len(),
                ));
            }
        }
    }
    Ok(out)
}

/// Bytes `count` lines of `line` bytes, `stride` apart from `start`, reach to (saturating: a
/// size no buffer can hold is simply more than the buffer has).
fn needed_bytes(start: usize, stride: usize, line: usize, count: usize) -> usize {
    match count {
        0 => start,
        n => start
            .saturating_add(stride.saturating_mul(n - 1))
            .saturating_add(line),
    }
}

/// Appends `count` lines of `line` bytes, `stride` apart from `start`; false if `data` is short.
fn copy_rows(
    out: &mut Vec<u8>,
    data: &[u8],
    start: usize,
    stride: usize,
    line: usize,
    count: usize,
) -> bool {
    if data.len() < needed_bytes(start, stride, line, count) {
        return false;
    }
    for row in 0..count {
        let at = start + row * stride;
        out.extend_from_slice(&data[at..at + line]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::v4l2::raw::MAX_PLANES;

    fn pix(width: u32, height: u32, strides: &[u32]) -> PixFormat {
        let mut bytes_per_line = [0; MAX_PLANES];
        bytes_per_line[..strides.len()].copy_from_slice(strides);
        PixFormat {
            width,
            height,
            fourcc: *b"YUYV",
            bytes_per_line,
            size_image: [0; MAX_PLANES],
            planes: strides.len(),
        }
    }

    #[test]
    fn padded_lines_are_packed() {
        // 2x2 YUYV with 2 bytes of padding per line.
        let data = [1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0];
        let packed = pack(CameraFormat::Yuyv, &pix(2, 2, &[6]), &[&data], Vec::new()).unwrap();
        assert_eq!(packed, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_given_buffer_is_filled_in_place() {
        let data = [1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0];
        let stale = vec![9u8; 32];
        let at = stale.as_ptr();
        let packed = pack(CameraFormat::Yuyv, &pix(2, 2, &[6]), &[&data], stale).unwrap();
        assert_eq!(
            packed,
            [1, 2, 3, 4, 5, 6, 7, 8],
            "nothing of the old contents"
        );
        assert_eq!(packed.as_ptr(), at, "no new allocation");
        let jpeg = [0xff, 0xd8, 0xff, 0xd9];
        let packed = pack(CameraFormat::Mjpeg, &pix(2, 2, &[0]), &[&jpeg], packed).unwrap();
        assert_eq!((packed.as_slice(), packed.as_ptr()), (&jpeg[..], at));
    }

    #[test]
    fn two_plane_nv12_is_joined_into_one() {
        let luma = [10, 11, 0, 12, 13, 0]; // 2x2, stride 3
        let chroma = [20, 21, 0, 0]; // one chroma line, stride 4
        let packed = pack(
            CameraFormat::Nv12TwoPlanes,
            &pix(2, 2, &[3, 4]),
            &[&luma, &chroma],
            Vec::new(),
        )
        .unwrap();
        assert_eq!(packed, [10, 11, 12, 13, 20, 21]);
        assert_eq!(packed.len(), PixelFormat::Nv12.raw_len(2, 2).unwrap());
    }

    #[test]
    fn single_plane_nv12_takes_chroma_after_the_padded_luma() {
        let data = [1, 2, 9, 3, 4, 9, 5, 6, 9];
        let packed = pack(CameraFormat::Nv12, &pix(2, 2, &[3]), &[&data], Vec::new()).unwrap();
        assert_eq!(packed, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn short_buffers_are_errors_not_panics() {
        let error = pack(
            CameraFormat::Rgb24,
            &pix(4, 4, &[12]),
            &[&[0; 40]],
            Vec::new(),
        )
        .unwrap_err();
        assert_eq!((error.needed, error.got), (48, 40));
        assert!(pack(
            CameraFormat::Nv12TwoPlanes,
            &pix(4, 4, &[4, 4]),
            &[&[0; 16]],
            Vec::new()
        )
        .is_err());
        assert!(pack(CameraFormat::Mjpeg, &pix(4, 4, &[0]), &[&[]], Vec::new()).is_err());
        assert!(pack(CameraFormat::Grey, &pix(4, 4, &[4]), &[], Vec::new()).is_err());
    }

    #[test]
    fn format_names_parse() {
        assert_eq!(CameraFormat::parse("yuyv"), Some(CameraFormat::Yuyv));
        assert_eq!(CameraFormat::parse("MJPEG"), Some(CameraFormat::Mjpeg));
        assert_eq!(CameraFormat::parse("RGB3"), Some(CameraFormat::Rgb24));
        assert_eq!(
            CameraFormat::from_fourcc(*b"JPEG"),
            Some(CameraFormat::Mjpeg)
        );
        assert_eq!(CameraFormat::parse("H264"), None);
        assert_eq!(CameraFormat::parse("é"), None);
    }

    mod fuzz {
        use super::*;
        use crate::model::{ColorOrder, InputSpec, ResizePolicy};
        use crate::preprocess::{Preprocess, Preprocessor};
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

        /// Driver buffers of every format with any size, stride and plane length: packing
        /// gives a frame of exactly the format's size, or a short-frame error; the packed
        /// frame goes through preprocessing without a panic.
        #[test]
        fn any_driver_buffer_packs_or_is_refused() {
            let size = prop_oneof![
                4 => 0u32..48,
                1 => Just(u32::MAX),
                1 => any::<u32>(),
            ];
            let stride = prop_oneof![3 => 0u32..160, 1 => any::<u32>()];
            let strategy = (
                0..PREFERENCE.len(),
                size.clone(),
                size,
                (stride.clone(), stride),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4000), 0..3),
            );
            let mut runner = TestRunner::new_with_rng(
                Config {
                    cases: 2000,
                    failure_persistence: None,
                    ..Config::default()
                },
                TestRng::deterministic_rng(RngAlgorithm::ChaCha),
            );
            let spec = InputSpec {
                name: "input".into(),
                shape: [1, 3, 8, 8],
                color: ColorOrder::Rgb,
                scale: 255.0,
                mean: vec![],
                std: vec![],
                resize: ResizePolicy::Letterbox,
                layout: Default::default(),
            };
            let packed = std::cell::Cell::new(0u32);
            runner
                .run(&strategy, |(format, width, height, (s0, s1), planes)| {
                    let format = PREFERENCE[format];
                    let mut p = pix(width, height, &[s0, s1]);
                    p.fourcc = format.fourcc();
                    let views: Vec<&[u8]> = planes.iter().map(Vec::as_slice).collect();
                    if let Ok(data) = pack(format, &p, &views, Vec::new()) {
                        packed.set(packed.get() + 1);
                        let pixel_format = format.pixel_format();
                        if let Some(len) = pixel_format.raw_len(width, height) {
                            prop_assert_eq!(data.len(), len);
                        }
                        let frame = crate::frame::Frame {
                            meta: crate::frame::FrameMeta {
                                seq: 0,
                                captured_at: std::time::SystemTime::now(),
                                source: "fuzz".into(),
                                camera: "cam0".into(),
                                camera_index: 0,
                                path: None,
                                width,
                                height,
                                format: pixel_format,
                            },
                            data,
                        };
                        let _ = Preprocessor::new(&spec).prepare(&frame);
                    }
                    Ok(())
                })
                .expect("no driver buffer makes packing or preprocessing panic");
            // Both sides are exercised: buffers that pack (and are preprocessed) and ones refused.
            eprintln!("fuzz: driver buffers: 2000 cases, {} packed", packed.get());
            assert!(
                (100..1900).contains(&packed.get()),
                "{} packed",
                packed.get()
            );
        }
    }
}
