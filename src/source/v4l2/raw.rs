//! The V4L2 ioctls that the `v4l` crate does not cover: multi-planar formats and buffers
//! (its mmap arena queries buffers without a planes array and gets EINVAL, `v4l` issue #121),
//! and a capability query that cannot panic on odd driver strings.
//!
//! Everything here is a thin, checked wrapper over one ioctl; policy lives in the callers.

use std::io;
use std::mem;
use std::os::raw::{c_int, c_void};
use v4l::v4l2::{self as ioctls, vidioc};
use v4l::v4l_sys::{
    v4l2_buffer, v4l2_capability, v4l2_fmtdesc, v4l2_format, v4l2_plane, v4l2_requestbuffers,
    v4l2_streamparm,
};

/// The most planes a V4L2 buffer can have (`VIDEO_MAX_PLANES`).
pub const MAX_PLANES: usize = 8;

pub const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
pub const CAP_VIDEO_CAPTURE_MPLANE: u32 = 0x0000_1000;
pub const CAP_STREAMING: u32 = 0x0400_0000;
pub const CAP_DEVICE_CAPS: u32 = 0x8000_0000;

const MEMORY_MMAP: u32 = 1;
/// The buffer holds data the driver flagged as damaged (a USB transfer error, say).
pub const BUF_FLAG_ERROR: u32 = 0x0000_0040;
const BUF_FLAG_TIMESTAMP_MASK: u32 = 0x0000_e000;
const BUF_FLAG_TIMESTAMP_MONOTONIC: u32 = 0x0000_2000;
/// `V4L2_FMT_FLAG_COMPRESSED`
pub const FMT_FLAG_COMPRESSED: u32 = 0x0001;

/// Single- or multi-planar capture: the two buffer types a camera can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    Capture,
    CaptureMplane,
}

impl BufferType {
    pub fn raw(self) -> u32 {
        match self {
            BufferType::Capture => 1,
            BufferType::CaptureMplane => 9,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BufferType::Capture => "single-planar",
            BufferType::CaptureMplane => "multi-planar",
        }
    }
}

/// What `VIDIOC_QUERYCAP` says of a device.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub driver: String,
    pub card: String,
    pub bus: String,
    /// The capabilities of this node (`device_caps` when the driver reports it).
    pub caps: u32,
}

impl Capabilities {
    /// The capture buffer type this node supports, preferring single-planar.
    pub fn capture_type(&self) -> Option<BufferType> {
        if self.caps & CAP_VIDEO_CAPTURE != 0 {
            Some(BufferType::Capture)
        } else if self.caps & CAP_VIDEO_CAPTURE_MPLANE != 0 {
            Some(BufferType::CaptureMplane)
        } else {
            None
        }
    }

    pub fn can_stream(&self) -> bool {
        self.caps & CAP_STREAMING != 0
    }
}

/// Runs one ioctl on a zero-initialised-or-filled argument.
///
/// # Safety
/// `request` must be an ioctl whose argument type is `T`.
unsafe fn ioctl<T>(fd: c_int, request: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
    ioctls::ioctl(fd, request, arg as *mut T as *mut c_void)
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

pub fn query_caps(fd: c_int) -> io::Result<Capabilities> {
    // SAFETY: QUERYCAP fills a v4l2_capability, which is plain data.
    let mut cap: v4l2_capability = unsafe { mem::zeroed() };
    unsafe { ioctl(fd, vidioc::VIDIOC_QUERYCAP, &mut cap)? };
    let caps = if cap.capabilities & CAP_DEVICE_CAPS != 0 {
        cap.device_caps
    } else {
        cap.capabilities
    };
    Ok(Capabilities {
        driver: c_string(&cap.driver),
        card: c_string(&cap.card),
        bus: c_string(&cap.bus_info),
        caps,
    })
}

/// One entry of `VIDIOC_ENUM_FMT`.
#[derive(Debug, Clone)]
pub struct FormatDesc {
    pub fourcc: [u8; 4],
    pub description: String,
    pub compressed: bool,
}

/// The pixel formats a node offers for `buffer_type` (works for both types, unlike `v4l`'s
/// `enum_formats`, which asks for single-planar only).
pub fn enum_formats(fd: c_int, buffer_type: BufferType) -> io::Result<Vec<FormatDesc>> {
    let mut formats = Vec::new();
    for index in 0.. {
        // SAFETY: plain data, filled by the driver.
        let mut desc: v4l2_fmtdesc = unsafe { mem::zeroed() };
        desc.index = index;
        desc.type_ = buffer_type.raw();
        match unsafe { ioctl(fd, vidioc::VIDIOC_ENUM_FMT, &mut desc) } {
            Ok(()) => formats.push(FormatDesc {
                fourcc: desc.pixelformat.to_le_bytes(),
                description: c_string(&desc.description),
                compressed: desc.flags & FMT_FLAG_COMPRESSED != 0,
            }),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(formats)
}

/// A format as the driver set it: what edgevit uses, whatever was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixFormat {
    pub width: u32,
    pub height: u32,
    pub fourcc: [u8; 4],
    /// Bytes per line of each plane (the first is the luma or packed plane).
    pub bytes_per_line: [u32; MAX_PLANES],
    pub size_image: [u32; MAX_PLANES],
    pub planes: usize,
}

/// `VIDIOC_S_FMT`: asks for a format and returns what the driver chose.
pub fn set_format(
    fd: c_int,
    buffer_type: BufferType,
    width: u32,
    height: u32,
    fourcc: [u8; 4],
) -> io::Result<PixFormat> {
    // SAFETY: v4l2_format is plain data; the union member written matches `type_`.
    let mut format: v4l2_format = unsafe { mem::zeroed() };
    format.type_ = buffer_type.raw();
    let code = u32::from_le_bytes(fourcc);
    match buffer_type {
        BufferType::Capture => {
            format.fmt.pix.width = width;
            format.fmt.pix.height = height;
            format.fmt.pix.pixelformat = code;
            format.fmt.pix.field = 1; // V4L2_FIELD_NONE: progressive frames
        }
        BufferType::CaptureMplane => {
            format.fmt.pix_mp.width = width;
            format.fmt.pix_mp.height = height;
            format.fmt.pix_mp.pixelformat = code;
            format.fmt.pix_mp.field = 1;
        }
    }
    unsafe { ioctl(fd, vidioc::VIDIOC_S_FMT, &mut format)? };
    Ok(read_format(&format, buffer_type))
}

fn read_format(format: &v4l2_format, buffer_type: BufferType) -> PixFormat {
    let mut out = PixFormat {
        width: 0,
        height: 0,
        fourcc: [0; 4],
        bytes_per_line: [0; MAX_PLANES],
        size_image: [0; MAX_PLANES],
        planes: 1,
    };
    // SAFETY: the driver filled the union member matching the buffer type.
    unsafe {
        match buffer_type {
            BufferType::Capture => {
                let pix = format.fmt.pix;
                out.width = pix.width;
                out.height = pix.height;
                out.fourcc = pix.pixelformat.to_le_bytes();
                out.bytes_per_line[0] = pix.bytesperline;
                out.size_image[0] = pix.sizeimage;
            }
            BufferType::CaptureMplane => {
                let pix = format.fmt.pix_mp;
                out.width = pix.width;
                out.height = pix.height;
                out.fourcc = pix.pixelformat.to_le_bytes();
                out.planes = (pix.num_planes as usize).clamp(1, MAX_PLANES);
                let planes = pix.plane_fmt;
                for (i, plane) in planes.iter().take(out.planes).enumerate() {
                    out.bytes_per_line[i] = plane.bytesperline;
                    out.size_image[i] = plane.sizeimage;
                }
            }
        }
    }
    out
}

/// `VIDIOC_S_PARM`: asks for a frame interval of `1 / fps`; returns the rate the driver chose,
/// or `None` when it does not support setting one.
pub fn set_frame_rate(fd: c_int, buffer_type: BufferType, fps: u32) -> io::Result<Option<f64>> {
    // SAFETY: plain data; `capture` is the member for capture types.
    let mut parm: v4l2_streamparm = unsafe { mem::zeroed() };
    parm.type_ = buffer_type.raw();
    parm.parm.capture.timeperframe.numerator = 1;
    parm.parm.capture.timeperframe.denominator = fps;
    match unsafe { ioctl(fd, vidioc::VIDIOC_S_PARM, &mut parm) } {
        Ok(()) => {}
        Err(e)
            if e.raw_os_error() == Some(libc::ENOTTY) || e.raw_os_error() == Some(libc::EINVAL) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    }
    let interval = unsafe { parm.parm.capture.timeperframe };
    Ok((interval.numerator > 0 && interval.denominator > 0)
        .then(|| interval.denominator as f64 / interval.numerator as f64))
}

/// `VIDIOC_REQBUFS` for mmap buffers; returns how many the driver allocated.
pub fn request_buffers(fd: c_int, buffer_type: BufferType, count: u32) -> io::Result<u32> {
    // SAFETY: plain data.
    let mut request: v4l2_requestbuffers = unsafe { mem::zeroed() };
    request.count = count;
    request.type_ = buffer_type.raw();
    request.memory = MEMORY_MMAP;
    unsafe { ioctl(fd, vidioc::VIDIOC_REQBUFS, &mut request)? };
    Ok(request.count)
}

/// A buffer as the driver describes it: where each plane is mapped and how much it holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferInfo {
    pub index: u32,
    pub planes: usize,
    /// Offset for mmap and mapped length of each plane.
    pub offset: [u32; MAX_PLANES],
    pub length: [u32; MAX_PLANES],
    /// Bytes of data in each plane, and where the data starts in it.
    pub bytes_used: [u32; MAX_PLANES],
    pub data_offset: [u32; MAX_PLANES],
    pub flags: u32,
    pub sequence: u32,
    pub timestamp: libc::timeval,
}

impl BufferInfo {
    /// Whether the timestamp is `CLOCK_MONOTONIC` (the only clock we can map to wall time).
    pub fn monotonic_timestamp(&self) -> bool {
        self.flags & BUF_FLAG_TIMESTAMP_MASK == BUF_FLAG_TIMESTAMP_MONOTONIC
    }
}

/// A `v4l2_buffer` with room for planes, kept together because the kernel is handed a pointer
/// to the planes array.
struct BufferArg {
    buffer: v4l2_buffer,
    planes: [v4l2_plane; MAX_PLANES],
}

impl BufferArg {
    fn new(buffer_type: BufferType, index: u32) -> Box<Self> {
        // SAFETY: plain data.
        let mut arg: Box<BufferArg> = Box::new(unsafe { mem::zeroed() });
        arg.buffer.type_ = buffer_type.raw();
        arg.buffer.memory = MEMORY_MMAP;
        arg.buffer.index = index;
        if buffer_type == BufferType::CaptureMplane {
            arg.buffer.length = MAX_PLANES as u32;
            arg.buffer.m.planes = arg.planes.as_mut_ptr();
        }
        arg
    }

    fn info(&self, buffer_type: BufferType) -> BufferInfo {
        let b = &self.buffer;
        let mut info = BufferInfo {
            index: b.index,
            flags: b.flags,
            sequence: b.sequence,
            timestamp: libc::timeval {
                tv_sec: b.timestamp.tv_sec as libc::time_t,
                tv_usec: b.timestamp.tv_usec as libc::suseconds_t,
            },
            ..BufferInfo::default()
        };
        match buffer_type {
            BufferType::Capture => {
                info.planes = 1;
                // SAFETY: for mmap single-planar buffers the driver fills `m.offset`.
                info.offset[0] = unsafe { b.m.offset };
                info.length[0] = b.length;
                info.bytes_used[0] = b.bytesused;
            }
            BufferType::CaptureMplane => {
                info.planes = (b.length as usize).clamp(1, MAX_PLANES);
                for (i, plane) in self.planes.iter().take(info.planes).enumerate() {
                    // SAFETY: for mmap planes the driver fills `m.mem_offset`.
                    info.offset[i] = unsafe { plane.m.mem_offset };
                    info.length[i] = plane.length;
                    info.bytes_used[i] = plane.bytesused;
                    info.data_offset[i] = plane.data_offset;
                }
            }
        }
        info
    }
}

pub fn query_buffer(fd: c_int, buffer_type: BufferType, index: u32) -> io::Result<BufferInfo> {
    let mut arg = BufferArg::new(buffer_type, index);
    unsafe { ioctl(fd, vidioc::VIDIOC_QUERYBUF, &mut arg.buffer)? };
    Ok(arg.info(buffer_type))
}

pub fn queue_buffer(fd: c_int, buffer_type: BufferType, index: u32) -> io::Result<()> {
    let mut arg = BufferArg::new(buffer_type, index);
    unsafe { ioctl(fd, vidioc::VIDIOC_QBUF, &mut arg.buffer) }
}

pub fn dequeue_buffer(fd: c_int, buffer_type: BufferType) -> io::Result<BufferInfo> {
    let mut arg = BufferArg::new(buffer_type, 0);
    unsafe { ioctl(fd, vidioc::VIDIOC_DQBUF, &mut arg.buffer)? };
    Ok(arg.info(buffer_type))
}

pub fn stream_on(fd: c_int, buffer_type: BufferType) -> io::Result<()> {
    let mut raw = buffer_type.raw() as c_int;
    unsafe { ioctl(fd, vidioc::VIDIOC_STREAMON, &mut raw) }
}

pub fn stream_off(fd: c_int, buffer_type: BufferType) -> io::Result<()> {
    let mut raw = buffer_type.raw() as c_int;
    unsafe { ioctl(fd, vidioc::VIDIOC_STREAMOFF, &mut raw) }
}
