//! `edgevit probe`: what capture devices this machine has, with their formats, sizes and
//! frame rates, as a camera configuration needs them.

use super::device::{fourcc_name, list_nodes};
use super::formats::CameraFormat;
use super::raw;
use serde::Serialize;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;

/// One video device node.
#[derive(Debug, Clone, Serialize)]
pub struct ProbedDevice {
    pub path: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// `single-planar`, `multi-planar`, or `not a capture device`.
    pub capture: String,
    pub formats: Vec<ProbedFormat>,
    /// Why the node could not be queried, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbedFormat {
    pub fourcc: String,
    pub description: String,
    /// Compressed (MJPEG): decoded on the CPU per frame.
    pub compressed: bool,
    /// Whether edgevit can capture this format.
    pub supported: bool,
    /// Sizes, as `WxH` (discrete) or `WxH-WxH/step` (ranges), each with its frame rates.
    pub sizes: Vec<ProbedSize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbedSize {
    pub size: String,
    /// Frame rates, e.g. `30`, `29.97`, or a range `1-60`.
    pub fps: Vec<String>,
}

fn fps_text(numerator: u32, denominator: u32) -> String {
    if numerator == 0 {
        return "?".to_string();
    }
    let fps = f64::from(denominator) / f64::from(numerator);
    if (fps - fps.round()).abs() < 0.005 {
        format!("{}", fps.round())
    } else {
        format!("{fps:.2}")
    }
}

fn rates(device: &v4l::Device, fourcc: [u8; 4], width: u32, height: u32) -> Vec<String> {
    device
        .enum_frameintervals(v4l::FourCC::new(&fourcc), width, height)
        .unwrap_or_default()
        .into_iter()
        .map(|interval| match interval.interval {
            FrameIntervalEnum::Discrete(f) => fps_text(f.numerator, f.denominator),
            // A range of intervals is a range of rates, slowest interval = lowest rate.
            FrameIntervalEnum::Stepwise(s) => format!(
                "{}-{}",
                fps_text(s.max.numerator, s.max.denominator),
                fps_text(s.min.numerator, s.min.denominator)
            ),
        })
        .collect()
}

fn sizes(device: &v4l::Device, fourcc: [u8; 4]) -> Vec<ProbedSize> {
    device
        .enum_framesizes(v4l::FourCC::new(&fourcc))
        .unwrap_or_default()
        .into_iter()
        .map(|size| match size.size {
            FrameSizeEnum::Discrete(d) => ProbedSize {
                size: format!("{}x{}", d.width, d.height),
                fps: rates(device, fourcc, d.width, d.height),
            },
            FrameSizeEnum::Stepwise(s) => ProbedSize {
                size: format!(
                    "{}x{}-{}x{}/{}x{}",
                    s.min_width,
                    s.min_height,
                    s.max_width,
                    s.max_height,
                    s.step_width,
                    s.step_height
                ),
                fps: rates(device, fourcc, s.max_width, s.max_height),
            },
        })
        .collect()
}

fn probe_node(path: &std::path::Path, name: String) -> ProbedDevice {
    let mut probed = ProbedDevice {
        path: path.display().to_string(),
        name,
        driver: None,
        bus: None,
        capture: "not a capture device".to_string(),
        formats: Vec::new(),
        error: None,
    };
    let device = match v4l::Device::with_path(path) {
        Ok(device) => device,
        Err(e) => {
            probed.error = Some(format!("cannot open: {e}"));
            return probed;
        }
    };
    let fd = device.handle().fd();
    let caps = match raw::query_caps(fd) {
        Ok(caps) => caps,
        Err(e) => {
            probed.error = Some(format!("VIDIOC_QUERYCAP: {e}"));
            return probed;
        }
    };
    probed.driver = Some(caps.driver.clone());
    probed.bus = Some(caps.bus.clone());
    let Some(buffer_type) = caps.capture_type() else {
        return probed;
    };
    probed.capture = buffer_type.name().to_string();
    match raw::enum_formats(fd, buffer_type) {
        Ok(formats) => {
            probed.formats = formats
                .into_iter()
                .map(|f| ProbedFormat {
                    fourcc: fourcc_name(f.fourcc),
                    description: f.description,
                    compressed: f.compressed,
                    supported: CameraFormat::from_fourcc(f.fourcc).is_some(),
                    sizes: sizes(&device, f.fourcc),
                })
                .collect()
        }
        Err(e) => probed.error = Some(format!("VIDIOC_ENUM_FMT: {e}")),
    }
    probed
}

/// Every /dev/video* node, queried.
pub fn probe_devices() -> Vec<ProbedDevice> {
    list_nodes()
        .into_iter()
        .map(|node| probe_node(&node.path, node.name))
        .collect()
}

/// Human-readable listing.
pub fn render(devices: &[ProbedDevice]) -> String {
    let mut out = String::new();
    if devices.is_empty() {
        out.push_str("no video devices (/dev/video*)\n");
    }
    for device in devices {
        out.push_str(&format!(
            "{}  {:?}  driver={} bus={}  {}\n",
            device.path,
            device.name,
            device.driver.as_deref().unwrap_or("?"),
            device.bus.as_deref().unwrap_or("?"),
            device.capture
        ));
        if let Some(error) = &device.error {
            out.push_str(&format!("    error: {error}\n"));
        }
        for format in &device.formats {
            let note = if format.supported {
                ""
            } else {
                "  (not supported by edgevit)"
            };
            out.push_str(&format!(
                "    {} {:?}{note}\n",
                format.fourcc, format.description
            ));
            for size in &format.sizes {
                out.push_str(&format!(
                    "        {}  fps: {}\n",
                    size.size,
                    size.fps.join(", ")
                ));
            }
        }
    }
    out
}
