//! `edgevit probe`: the video devices and the inference backends of this machine.

use super::exit;
use anyhow::Result;
use edgevit::source::v4l2::probe;

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON document (`devices`, `backends`) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let devices = probe::probe_devices();
    let backends = edgevit::backend::available();
    if args.json {
        let doc = serde_json::json!({ "devices": devices, "backends": backends });
        println!("{doc:#}");
    } else {
        print!("{}", probe::render(&devices));
        println!("backends:");
        for backend in &backends {
            println!("    {}: {}", backend.name, backend.status);
        }
    }
    Ok(exit::OK)
}
