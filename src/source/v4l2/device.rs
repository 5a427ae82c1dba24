//! Finding, opening and configuring a camera: device path or name, capabilities, the format,
//! size and frame rate the driver agrees to, and its streaming buffers.

use super::config::CameraConfig;
use super::formats::CameraFormat;
use super::raw::{self, BufferType, Capabilities, PixFormat};
use super::stream::{MmapStream, StreamError};
use std::io;
use std::path::PathBuf;

/// Why a camera could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("no video device matches {device:?} (devices: {available})")]
    NotFound { device: String, available: String },
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {op} failed")]
    Ioctl {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{path} ({card}) is not a streaming capture device")]
    NotCapture { path: PathBuf, card: String },
    #[error("{path} offers none of the configured formats {wanted} (it offers {offered})")]
    NoFormat {
        path: PathBuf,
        wanted: String,
        offered: String,
    },
    #[error("{path}: the driver switched to format {fourcc}, which edgevit does not support")]
    FormatChanged { path: PathBuf, fourcc: String },
    #[error("{path}")]
    Stream {
        path: PathBuf,
        #[source]
        source: StreamError,
    },
}

pub fn fourcc_name(code: [u8; 4]) -> String {
    code.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// A video device node found under /dev.
#[derive(Debug, Clone)]
pub struct DeviceNode {
    pub path: PathBuf,
    /// The driver's name for it (`/sys/class/video4linux/videoN/name`).
    pub name: String,
}

/// The /dev/video* nodes, in number order.
pub fn list_nodes() -> Vec<DeviceNode> {
    let mut nodes: Vec<(u32, DeviceNode)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            let number: u32 = file.strip_prefix("video")?.parse().ok()?;
            let name = std::fs::read_to_string(format!("/sys/class/video4linux/{file}/name"))
                .map(|n| n.trim().to_string())
                .unwrap_or_default();
            Some((
                number,
                DeviceNode {
                    path: entry.path(),
                    name,
                },
            ))
        })
        .collect();
    nodes.sort_by_key(|(number, _)| *number);
    nodes.into_iter().map(|(_, node)| node).collect()
}

/// A path as given, or the first capture node whose name contains `device` (ignoring case).
pub fn resolve(device: &str) -> Result<PathBuf, CameraError> {
    if device.starts_with('/') {
        return Ok(PathBuf::from(device));
    }
    let wanted = device.to_lowercase();
    let nodes = list_nodes();
    nodes
        .iter()
        .filter(|node| node.name.to_lowercase().contains(&wanted))
        .find(|node| {
            v4l::Device::with_path(&node.path)
                .ok()
                .and_then(|dev| raw::query_caps(dev.handle().fd()).ok())
                .is_some_and(|caps| caps.capture_type().is_some())
        })
        .map(|node| node.path.clone())
        .ok_or_else(|| CameraError::NotFound {
            device: device.to_string(),
            available: if nodes.is_empty() {
                "none".to_string()
            } else {
                nodes
                    .iter()
                    .map(|n| format!("{} {:?}", n.path.display(), n.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// An open, streaming camera.
pub struct Camera {
    pub path: PathBuf,
    pub caps: Capabilities,
    pub buffer_type: BufferType,
    pub format: CameraFormat,
    pub pix: PixFormat,
    /// The frame rate the driver agreed to, when it reports one.
    pub fps: Option<f64>,
    // Declared before the device so that the buffers are released before the fd is closed.
    pub stream: MmapStream,
    /// Owns the file descriptor the stream uses.
    _device: v4l::Device,
}

impl Camera {
    pub fn open(config: &CameraConfig) -> Result<Camera, CameraError> {
        let path = resolve(&config.device)?;
        let device = v4l::Device::with_path(&path).map_err(|source| CameraError::Open {
            path: path.clone(),
            source,
        })?;
        let fd = device.handle().fd();
        let ioctl_error = |op: &'static str| {
            let path = path.clone();
            move |source| CameraError::Ioctl { path, op, source }
        };
        let caps = raw::query_caps(fd).map_err(ioctl_error("VIDIOC_QUERYCAP"))?;
        let buffer_type = match caps.capture_type() {
            Some(t) if caps.can_stream() => t,
            _ => {
                return Err(CameraError::NotCapture {
                    path,
                    card: caps.card,
                })
            }
        };
        let offered = raw::enum_formats(fd, buffer_type).map_err(ioctl_error("VIDIOC_ENUM_FMT"))?;
        let wanted = config.preferred_formats().unwrap_or_default();
        let format = wanted
            .iter()
            .copied()
            .find(|f| {
                offered
                    .iter()
                    .any(|o| CameraFormat::from_fourcc(o.fourcc) == Some(*f))
            })
            .ok_or_else(|| CameraError::NoFormat {
                path: path.clone(),
                wanted: wanted
                    .iter()
                    .map(|f| fourcc_name(f.fourcc()))
                    .collect::<Vec<_>>()
                    .join(", "),
                offered: offered
                    .iter()
                    .map(|o| fourcc_name(o.fourcc))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        // Ask with the code the device listed (`JPEG` and `MJPG` both mean MJPEG).
        let code = offered
            .iter()
            .map(|o| o.fourcc)
            .find(|&c| CameraFormat::from_fourcc(c) == Some(format))
            .unwrap_or(format.fourcc());
        let pix = raw::set_format(fd, buffer_type, config.width, config.height, code)
            .map_err(ioctl_error("VIDIOC_S_FMT"))?;
        // The driver has the last word on the format too.
        let format =
            CameraFormat::from_fourcc(pix.fourcc).ok_or_else(|| CameraError::FormatChanged {
                path: path.clone(),
                fourcc: fourcc_name(pix.fourcc),
            })?;
        let fps = if config.fps > 0 {
            raw::set_frame_rate(fd, buffer_type, config.fps)
                .map_err(ioctl_error("VIDIOC_S_PARM"))?
        } else {
            None
        };
        let stream = MmapStream::start(fd, buffer_type, config.buffers).map_err(|source| {
            CameraError::Stream {
                path: path.clone(),
                source,
            }
        })?;
        Ok(Camera {
            path,
            caps,
            buffer_type,
            format,
            pix,
            fps,
            stream,
            _device: device,
        })
    }

    /// What was negotiated, for logs and status events.
    pub fn describe(&self) -> String {
        let fps = self
            .fps
            .map(|f| format!(" at {f:.1} fps"))
            .unwrap_or_default();
        format!(
            "{} ({}, {}) {}x{} {}{fps}, {} buffers",
            self.path.display(),
            self.caps.card,
            self.buffer_type.name(),
            self.pix.width,
            self.pix.height,
            fourcc_name(self.pix.fourcc),
            self.stream.buffer_count()
        )
    }
}
