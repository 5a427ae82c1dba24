//! `edgevit check --config FILE`: everything `run` would set up, checked without capturing:
//! the configuration parses, the model loads and passes its self-test, the stages it asks for
//! work with that model, and the files, folders and devices it names exist. For use before a
//! restart (`edgevit check --config /etc/edgevit/edgevit.toml && systemctl restart edgevit`).

use super::exit;
use anyhow::Result;
use edgevit::detect::Decoder;
use edgevit::error::chain;
use edgevit::model::Task;
use edgevit::pipeline::{fleet_device, gallery_path, LoadedModel, ReidStage, RunConfig, VitStage};
use edgevit::sink::SinkConfig;
use edgevit::source::SourceConfig;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The TOML configuration file to check.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// One line of the report.
struct Report {
    failed: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: impl AsRef<str>) {
        println!("ok    {what}: {}", detail.as_ref());
    }
    fn warn(&self, what: &str, detail: impl AsRef<str>) {
        println!("warn  {what}: {}", detail.as_ref());
    }
    fn fail(&mut self, what: &str, detail: impl AsRef<str>) {
        println!("FAIL  {what}: {}", detail.as_ref());
        self.failed += 1;
    }
}

pub fn run(args: Args) -> Result<i32> {
    // A configuration that does not parse is an error like for `run` (exit code 2).
    let config = RunConfig::load(&args.config)?;
    let mut report = Report { failed: 0 };
    report.ok("config", args.config.display().to_string());
    check_model(&config, &mut report);
    check_source(&config.source, &mut report);
    check_sink(&config.sink, &mut report);
    if let Some(dir) = &config.state_dir {
        check_writable_dir("state_dir", dir, &mut report);
    }
    if let Some(web) = &config.web {
        check_web(web, &mut report);
    }
    if let Some(gpio) = &config.gpio {
        if gpio.chip.exists() {
            report.ok("gpio.chip", gpio.chip.display().to_string());
        } else {
            report.fail(
                "gpio.chip",
                format!(
                    "{} does not exist (`gpiodetect` lists the chips)",
                    gpio.chip.display()
                ),
            );
        }
    }
    if report.failed == 0 {
        println!("PASS {}", args.config.display());
        Ok(exit::OK)
    } else {
        let problems = if report.failed == 1 {
            "problem"
        } else {
            "problems"
        };
        println!(
            "FAIL {}: {} {problems}",
            args.config.display(),
            report.failed
        );
        Ok(exit::FAILED_ITEMS)
    }
}

fn check_model(config: &RunConfig, report: &mut Report) {
    let model = match LoadedModel::load(&config.model.path, &config.backend) {
        Ok(model) => model,
        Err(e) => return report.fail("model.path", chain(&e)),
    };
    let tested = model
        .selftest
        .as_ref()
        .and_then(|r| {
            r.worst()
                .map(|w| format!("self-test passed (worst difference {:e})", w.max_abs_diff))
        })
        .unwrap_or_else(|| "no [selftest] in the package: outputs not compared".into());
    report.ok(
        "model",
        format!(
            "{} on {}: {tested}",
            model.package.name(),
            model.backend.name()
        ),
    );
    check_scene(config, &model, report);
    match model.package.manifest.task {
        Task::Reid if config.classify.classes.is_some() => {
            // Classes by example: the examples file, not a gallery.
            let vit = config.vit_options();
            match model.interpreter(&config.classify, &vit) {
                Ok(_) => report.ok("classify.classes", "the examples fit the model"),
                Err(e) => report.fail("classify.classes", chain(&e)),
            }
            return;
        }
        Task::Reid => return check_reid(config, &model, report),
        Task::Detect => return,
        Task::Classify => {}
    }
    let vit = config.vit_options();
    if let Err(e) = model.classifier(&config.classify, &vit) {
        report.fail("classify", chain(&e));
    }
    match VitStage::new(&model.package, model.backend.as_ref(), &vit) {
        Ok(Some(stage)) => report.ok(
            "zoom/parts",
            format!(
                "{} attention blocks, a {}x{} patch grid",
                model.backend.attention().len(),
                stage.layout().grid_w,
                stage.layout().grid_h
            ),
        ),
        Ok(None) => {}
        Err(e) => report.fail("zoom/parts", chain(&e)),
    }
}

/// A scene's parts: the detector (`[detector]`, or the model itself) loads and its `[detect]`
/// settings resolve; the zones have an inside; the tracker's settings are sound.
fn check_scene(config: &RunConfig, model: &LoadedModel, report: &mut Report) {
    let detector = match &config.detector {
        Some(detector) => match LoadedModel::load(&detector.path, &config.backend) {
            Ok(loaded) => Some(loaded),
            Err(e) => return report.fail("detector.path", chain(&e)),
        },
        None => None,
    };
    if let Some(package) = detector
        .as_ref()
        .map(|d| &d.package)
        .or((model.package.manifest.task == Task::Detect).then_some(&model.package))
    {
        match Decoder::new(package, &config.detect) {
            Ok(decoder) => report.ok(
                "detector",
                format!(
                    "{}, objects scoring {} or more{}",
                    package.name(),
                    decoder.params().min_score,
                    match &decoder.params().classes {
                        Some(kept) => {
                            let labels: Vec<String> =
                                kept.iter().map(|&c| decoder.label(c)).collect();
                            format!(", only {}", labels.join(", "))
                        }
                        None => String::new(),
                    }
                ),
            ),
            Err(e) => report.fail("detect", chain(&e)),
        }
    }
    for zone in &config.zones {
        if let Err(e) = zone.check() {
            report.fail("zones", e);
        }
    }
    if let Some(Err(e)) = config.tracker.as_ref().map(|t| t.check()) {
        report.fail("tracker", e);
    }
}

/// The gallery is opened (and so checked: ours, undamaged, made with this model) when it
/// exists; otherwise its folder must be writable, since `run` creates it.
fn check_reid(config: &RunConfig, model: &LoadedModel, report: &mut Report) {
    if config.gallery.fleet && fleet_device(config).is_none() {
        report.fail(
            "gallery.fleet",
            "shares identities through the MQTT broker: it needs [sink] kind = \"mqtt\"",
        );
    }
    let path = match gallery_path(&config.gallery, config.state_dir.as_deref()) {
        Ok(path) => path,
        Err(e) => return report.fail("gallery.path", chain(&e)),
    };
    if !path.exists() {
        if let Err(e) = edgevit::interpret::embedding::check_rois(&config.reid.rois)
            .and_then(|()| config.gallery.check())
        {
            return report.fail("reid", e);
        }
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return check_writable_dir("gallery.path", dir, report);
    }
    match ReidStage::new(
        &model.package,
        model.backend.as_ref(),
        &config.reid,
        &config.gallery,
        &path,
    ) {
        Ok(stage) => report.ok(
            "gallery.path",
            format!(
                "{}: {} identities, {} exemplars",
                path.display(),
                stage.gallery().identities().count(),
                stage.gallery().exemplar_count()
            ),
        ),
        Err(e) => report.fail("gallery.path", chain(&e)),
    }
}

fn check_source(source: &SourceConfig, report: &mut Report) {
    match source {
        SourceConfig::ImageFile(c) => check_exists("source.path", &c.path, report),
        SourceConfig::ImageDir(c) => match edgevit::source::ImageDirSource::open(c) {
            Ok(_) => report.ok("source.path", c.path.display().to_string()),
            Err(e) => report.fail("source.path", chain(&e)),
        },
        SourceConfig::Pattern(_) => report.ok("source", "test pattern"),
        SourceConfig::V4l2(c) => {
            if let Err(e) = c.validate() {
                return report.fail("source", e);
            }
            for (i, camera) in c.camera.iter().enumerate() {
                let key = format!("source.camera[{i}].device");
                match edgevit::source::v4l2::resolve(&camera.device) {
                    Ok(path) if path.exists() => {
                        report.ok(&key, format!("{} ({})", camera.id, path.display()))
                    }
                    // Not fatal at run time (it is retried), but a check says so.
                    Ok(path) => report.fail(
                        &key,
                        format!("{}: {} does not exist", camera.id, path.display()),
                    ),
                    Err(e) => report.fail(&key, format!("{}: {}", camera.id, chain(&e))),
                }
            }
        }
    }
}

fn check_sink(sink: &SinkConfig, report: &mut Report) {
    match sink {
        SinkConfig::Stdout(_) => report.ok("sink", "stdout"),
        SinkConfig::File(c) => match c.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => check_writable_dir("sink.path", dir, report),
            None => report.ok("sink.path", c.path.display().to_string()),
        },
        SinkConfig::Serial(c) => {
            if Path::new(&c.path).exists() {
                report.ok("sink.path", &c.path);
            } else {
                // The serial sink waits for a port that appears later; say so, do not fail.
                report.warn(
                    "sink.path",
                    format!("{} does not exist now (records will wait for it)", c.path),
                );
            }
        }
        SinkConfig::Mqtt(c) => {
            match c.credentials() {
                Ok(_) => {}
                Err(e) => report.fail("sink", chain(&e)),
            }
            if let Some(tls) = &c.tls {
                match tls.load() {
                    Ok(_) => report.ok("sink.tls", "certificates and keys read"),
                    Err(e) => report.fail("sink.tls", chain(&e)),
                }
            }
            check_writable_dir("sink.spool.path", &c.spool.path, report);
            report.ok(
                "sink",
                format!("mqtt {}:{} (the broker is not contacted)", c.host, c.port),
            );
        }
    }
}

/// `[web]`: an address it may listen on, and the password it needs there (the port is not
/// opened: another process may hold it now).
fn check_web(web: &edgevit::web::WebConfig, report: &mut Report) {
    let address = match web.address() {
        Ok(address) => address,
        Err(e) => return report.fail("web", chain(&e)),
    };
    match web.password() {
        Ok(password) => report.ok(
            "web",
            format!(
                "http://{address}/ ({}{})",
                if password.is_some() {
                    "password from web.password_file"
                } else {
                    "no password: loopback only"
                },
                if web.read_only { ", read-only" } else { "" }
            ),
        ),
        Err(e) => report.fail("web.password_file", chain(&e)),
    }
}

fn check_exists(key: &str, path: &Path, report: &mut Report) {
    if path.exists() {
        report.ok(key, path.display().to_string());
    } else {
        report.fail(key, format!("{} does not exist", path.display()));
    }
}

/// A folder that exists and takes files, or could be made where it would be (checked with
/// access(2): a check changes nothing on the board).
fn check_writable_dir(key: &str, dir: &Path, report: &mut Report) {
    let existing = dir
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    let writable = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes())
        // SAFETY: a valid C string; access(2) reads nothing else.
        .is_ok_and(|path| unsafe { libc::access(path.as_ptr(), libc::W_OK) } == 0);
    match (writable, existing == dir) {
        (true, true) => report.ok(key, format!("{} is writable", dir.display())),
        (true, false) => report.ok(key, format!("{} will be created", dir.display())),
        (false, _) => report.fail(
            key,
            format!("{} is not writable (by this user)", existing.display()),
        ),
    }
}
