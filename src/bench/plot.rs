//! The pipeline benchmark as a picture (SVG, through `plotters`): each stage's median latency
//! as a bar with its 90th percentile marked, and every frame's latency over the run.

use super::pipeline::PipelineReport;
use plotters::prelude::*;
use std::path::Path;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 420;

/// Draws `report` into the SVG file `path`.
pub fn write_svg(report: &PipelineReport, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    draw(report, &root).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
    root.present()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw(report: &PipelineReport, root: &Area<'_>) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let title = format!(
        "{} on {}, {} frames of {}: {:.1} fps end to end ({} worker{}), cold start {:.0} ms",
        report.model,
        report.backend,
        report.frames,
        report.frame,
        report.pipelined_fps,
        report.workers,
        if report.workers == 1 { "" } else { "s" },
        report.cold_start_ms
    );
    let root = root.titled(&title, ("sans-serif", 16))?;
    let (left, right) = root.split_horizontally(WIDTH / 2);
    stage_bars(report, &left)?;
    frame_line(report, &right)?;
    Ok(())
}

/// One bar per stage (median), with a tick at its 90th percentile.
fn stage_bars(report: &PipelineReport, area: &Area<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let stages: Vec<_> = report
        .stages
        .iter()
        .filter(|s| s.stage != "total")
        .collect();
    let top = stages
        .iter()
        .map(|s| s.p90_ms)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "median per stage (ms), tick: 90th percentile",
            ("sans-serif", 14),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(
            // A segmented range holds its end too: n stages are 0..n-1.
            (0..stages.len().saturating_sub(1)).into_segmented(),
            0.0..top,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => stages.get(*i).map_or(String::new(), |s| s.stage.into()),
            _ => String::new(),
        })
        .y_desc("ms")
        .draw()?;
    chart.draw_series(stages.iter().enumerate().map(|(i, s)| {
        let color = if s.stage == "infer" { RED } else { BLUE };
        Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), s.p50_ms),
            ],
            color.mix(0.6).filled(),
        )
    }))?;
    chart.draw_series(stages.iter().enumerate().map(|(i, s)| {
        PathElement::new(
            vec![
                (SegmentValue::CenterOf(i), s.p90_ms),
                (SegmentValue::CenterOf(i), s.p50_ms),
            ],
            BLACK.stroke_width(2),
        )
    }))?;
    Ok(())
}

/// Every frame's summed stage latency, in order.
fn frame_line(report: &PipelineReport, area: &Area<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let top = report
        .frame_ms
        .iter()
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("latency per frame (ms)", ("sans-serif", 14))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0..report.frame_ms.len().max(1), 0.0..top)?;
    chart.configure_mesh().x_desc("frame").y_desc("ms").draw()?;
    chart.draw_series(LineSeries::new(
        report.frame_ms.iter().enumerate().map(|(i, v)| (i, *v)),
        BLUE.stroke_width(1),
    ))?;
    Ok(())
}
