//! A captured frame and what is known about it before preprocessing.

use std::path::PathBuf;
use std::time::SystemTime;

/// How the bytes of a [`Frame`] are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// A compressed file (PNG, JPEG, BMP) that preprocessing decodes.
    Encoded,
    /// Packed 8-bit R, G, B.
    Rgb24,
    /// Packed 8-bit B, G, R.
    Bgr24,
    /// 8-bit luma.
    Gray8,
    /// Packed 4:2:2, Y0 U Y1 V (BT.601 limited range).
    Yuyv,
    /// Planar 4:2:0: a Y plane, then an interleaved U V plane at half resolution.
    Nv12,
    /// One Motion-JPEG frame from a camera: a baseline JPEG, often without its Huffman tables
    /// (the standard ones are assumed). Width and height are the size the camera was set to;
    /// a frame that decodes to another size is an error.
    Mjpeg,
}

impl Frame {
    /// Frame `seq` 0 of camera `cam0`, captured now, from a source named `source` (for tests,
    /// benchmarks and synthetic frames).
    pub fn in_memory(
        source: &str,
        data: Vec<u8>,
        width: u32,
        height: u32,
        format: PixelFormat,
    ) -> Frame {
        Frame {
            meta: FrameMeta {
                seq: 0,
                captured_at: std::time::SystemTime::now(),
                source: source.into(),
                camera: "cam0".into(),
                camera_index: 0,
                path: None,
                width,
                height,
                format,
            },
            data,
        }
    }
}

impl PixelFormat {
    /// The name used in logs and result records.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Encoded => "encoded",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Bgr24 => "bgr24",
            PixelFormat::Gray8 => "gray8",
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::Nv12 => "nv12",
            PixelFormat::Mjpeg => "mjpeg",
        }
    }

    /// Bytes a raw frame of this size must hold; `None` for encoded (and MJPEG) frames, and for
    /// sizes beyond memory.
    pub fn raw_len(self, width: u32, height: u32) -> Option<usize> {
        // Checked: a size read from a damaged header or driver must not wrap around.
        let pixels = (width as usize).checked_mul(height as usize)?;
        match self {
            PixelFormat::Encoded | PixelFormat::Mjpeg => None,
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => pixels.checked_mul(3),
            PixelFormat::Gray8 => Some(pixels),
            PixelFormat::Yuyv => pixels.checked_mul(2),
            PixelFormat::Nv12 => (width as usize)
                .div_ceil(2)
                .checked_mul((height as usize).div_ceil(2))?
                .checked_mul(2)?
                .checked_add(pixels),
        }
    }
}

/// Where a frame came from and when.
#[derive(Debug, Clone)]
pub struct FrameMeta {
    /// Per-source sequence number, starting at 0, counting every frame the source produced
    /// (including those that failed), so gaps are visible downstream.
    pub seq: u64,
    /// Wall-clock capture time.
    pub captured_at: SystemTime,
    /// Human-readable description of the source (a path, a device, `pattern`).
    pub source: String,
    /// Camera id configured for the source.
    pub camera: String,
    /// The camera's position in the configuration (a ReID model with SIE takes it).
    pub camera_index: usize,
    /// The file the frame was read from, when it came from one.
    pub path: Option<PathBuf>,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
}

/// One frame: metadata plus its bytes in [`FrameMeta::format`].
#[derive(Debug, Clone)]
pub struct Frame {
    pub meta: FrameMeta,
    pub data: Vec<u8>,
}

/// Pixel buffers of frames no stage reads any more, kept so that later frames are copied into
/// them rather than into new allocations; at most `limit`, since more than the frames that can
/// be in flight would only hold memory. Shared between threads.
#[derive(Debug, Default)]
pub struct SpareBuffers {
    buffers: std::sync::Mutex<Vec<Vec<u8>>>,
    limit: usize,
}

impl SpareBuffers {
    pub fn new(limit: usize) -> Self {
        SpareBuffers {
            buffers: std::sync::Mutex::new(Vec::new()),
            limit,
        }
    }

    fn buffers(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // Plain buffers: a thread that panicked while holding them leaves nothing half-done.
        crate::sync::lock(&self.buffers)
    }

    /// Keeps `data` unless enough are kept already (or it holds no memory).
    pub fn put(&self, data: Vec<u8>) {
        let mut buffers = self.buffers();
        if data.capacity() > 0 && buffers.len() < self.limit {
            buffers.push(data);
        }
    }

    /// A kept buffer (its contents are stale), else an empty one.
    pub fn take(&self) -> Vec<u8> {
        self.buffers().pop().unwrap_or_default()
    }

    /// Every kept buffer, leaving none.
    pub fn take_all(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.buffers())
    }

    pub fn len(&self) -> usize {
        self.buffers().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
