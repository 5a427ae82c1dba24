//! `edgevit snapshot`: frames from one camera, decoded by edgevit's own preprocessing and
//! saved as PNG, to check a camera's set-up (and, in the tests, its colours).

use super::args::at_least_one;
use super::exit;
use anyhow::{bail, Context, Result};
use edgevit::frame::Frame;
use edgevit::model::ColorOrder;
use edgevit::sink::CameraStatusRecord;
use edgevit::source::v4l2::CameraConfig;
use edgevit::source::{FrameSource, SourceEvent, V4l2Config, V4l2Source};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Device path or name (as `edgevit probe` lists it).
    #[arg(long)]
    device: String,
    /// Pixel format (YUYV, NV12, NM12, GREY, RGB3, BGR3, MJPG); default: the first the device
    /// offers.
    #[arg(long)]
    format: Option<String>,
    /// Width to ask for; the driver may answer with another (the PNG has what it gave).
    #[arg(long, default_value_t = 640)]
    width: u32,
    /// Height to ask for.
    #[arg(long, default_value_t = 480)]
    height: u32,
    /// Frames to save.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    count: usize,
    /// Give up after this many seconds without the frames.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    /// Folder for the PNG and raw files (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<i32> {
    capture(Request {
        timeout: Duration::from_secs(args.timeout),
        device: args.device,
        format: args.format,
        width: args.width,
        height: args.height,
        count: args.count,
        out: args.out,
    })?;
    Ok(exit::OK)
}

struct Request {
    device: String,
    format: Option<String>,
    width: u32,
    height: u32,
    count: usize,
    timeout: Duration,
    out: PathBuf,
}

fn capture(request: Request) -> Result<()> {
    std::fs::create_dir_all(&request.out)
        .with_context(|| format!("cannot create {}", request.out.display()))?;
    let mut camera = CameraConfig::new("cam0", &request.device);
    camera.width = request.width;
    camera.height = request.height;
    camera.formats = request.format.into_iter().collect();
    // One attempt at a time, quickly repeated: a snapshot is interactive.
    camera.reconnect_min_ms = 200;
    camera.reconnect_max_ms = 1000;
    let mut source = V4l2Source::open(&V4l2Config {
        camera: vec![camera],
    })?;
    // The source watches this flag while it waits, so a camera that never delivers cannot
    // hang the command.
    let timed_out = Arc::new(AtomicBool::new(false));
    {
        let timed_out = timed_out.clone();
        let timeout = request.timeout;
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            timed_out.store(true, Ordering::Relaxed);
        });
    }
    let mut saved = 0;
    while saved < request.count {
        let Some(event) = source.next_event(&timed_out) else {
            bail!(
                "saved {saved} of {} frames from {} within {:?}",
                request.count,
                request.device,
                request.timeout
            );
        };
        match event {
            SourceEvent::Camera(status) => {
                let record = CameraStatusRecord::from(&status);
                println!("{}", serde_json::to_string(&record)?);
                // A snapshot is a one-off check: report the first failure instead of retrying.
                if status.state == edgevit::source::CameraState::Offline {
                    bail!("{} is not usable: {}", request.device, status.detail);
                }
            }
            SourceEvent::Frame(Err(failed)) => {
                eprintln!(
                    "frame {}: {}",
                    failed.meta.seq,
                    edgevit::error::Report(&failed.error)
                )
            }
            SourceEvent::Frame(Ok(frame)) => {
                save(&frame, &request.out)?;
                saved += 1;
            }
        }
    }
    Ok(())
}

fn save(frame: &Frame, out: &std::path::Path) -> Result<()> {
    let meta = &frame.meta;
    let stem = format!("{}-{:06}", meta.camera, meta.seq);
    let raw = out.join(format!("{stem}.{}", meta.format.name()));
    std::fs::write(&raw, &frame.data).with_context(|| format!("cannot write {}", raw.display()))?;
    let line = match edgevit::preprocess::decode(frame, ColorOrder::Rgb) {
        Ok(raster) => {
            let png = out.join(format!("{stem}.png"));
            image::save_buffer(
                &png,
                &raster.data,
                raster.width,
                raster.height,
                image::ExtendedColorType::Rgb8,
            )
            .with_context(|| format!("cannot write {}", png.display()))?;
            serde_json::json!({
                "camera": meta.camera, "seq": meta.seq, "format": meta.format,
                "width": meta.width, "height": meta.height, "bytes": frame.data.len(),
                "raw": raw, "png": png,
            })
        }
        Err(e) => serde_json::json!({
            "camera": meta.camera, "seq": meta.seq, "format": meta.format,
            "width": meta.width, "height": meta.height, "bytes": frame.data.len(),
            "raw": raw, "error": edgevit::error::chain(&e),
        }),
    };
    println!("{line}");
    Ok(())
}
