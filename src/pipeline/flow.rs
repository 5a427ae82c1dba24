//! The loop's threads, so that a frame's stages overlap with the next frame's:
//!
//! - the **reader** waits for the trigger, takes the next frame from the source and, when no
//!   stage needs the frame's own pixels, preprocesses it;
//! - one or more **workers** (`[pipeline] workers`), each with its own model instance, run
//!   inference and interpretation;
//! - the caller's thread, the **collector**, puts the records back in the order the frames
//!   were read, numbers them and hands them to the sink.
//!
//! Between the reader and the workers there is room for one frame per worker. A reader that
//! finds it full waits: a camera source keeps only its newest frame meanwhile (its own
//! latest-frame policy), a file source simply waits. Throughput approaches that of the slowest
//! stage, not the sum of the stages. On a stop the reader stops reading, and every frame it
//! has read is still processed and delivered.

use super::worker::Worker;
use super::{
    elapsed_ms, ClassifyConfig, FrameTrigger, Health, PipelineError, Reload, RunSummary, Sequences,
    VitOptions, WarningLimiter,
};
use crate::frame::{Frame, SpareBuffers};
use crate::preprocess::{Prepared, Preprocess, PreprocessError, Preprocessor, Recycler};
use crate::service::Metrics;
use crate::sink::{CameraStatusRecord, FrameInfo, Record, Sink};
use crate::source::{CameraState, CameraStatus, FrameResult, FrameSource, SourceEvent};
use crate::sync::lock;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the reader hands a worker, numbered in reading order.
enum Job {
    Camera(CameraStatus),
    Frame(FrameResult),
    /// A frame the reader already preprocessed.
    Prepared {
        info: FrameInfo,
        source_seq: u64,
        camera: String,
        prepared: Result<Prepared, PreprocessError>,
        pre_ms: f64,
    },
}

/// What a worker hands the collector.
enum Outcome {
    Camera(CameraStatus),
    Records {
        source_seq: u64,
        camera: String,
        records: Vec<Record>,
    },
}

/// Live settings from a reload, numbered so that each worker applies each once.
#[derive(Default)]
struct Settings {
    generation: u64,
    values: Option<(ClassifyConfig, VitOptions)>,
}

/// The parts of a pipeline the loop uses, borrowed apart so that each thread has its own.
pub(super) struct Parts<'a> {
    pub source: &'a mut dyn FrameSource,
    pub trigger: &'a mut Option<Box<dyn FrameTrigger>>,
    pub workers: &'a mut [Worker],
    pub sink: &'a mut dyn Sink,
    pub sequences: &'a mut Sequences,
    pub health: &'a Health,
    pub metrics: Option<&'a Metrics>,
    pub reload: &'a mut Option<Reload>,
    pub last_source_seq: &'a mut HashMap<String, u64>,
    /// The web page's live view: frames when a snapshot was asked for, every frame's records.
    pub live: Option<&'a crate::web::LiveView>,
}

/// Runs the threads until the source ends, `stop` is set, or the sink or the trigger fails.
pub(super) fn run(parts: Parts<'_>, stop: &AtomicBool) -> Result<RunSummary, PipelineError> {
    let Parts {
        source,
        trigger,
        workers,
        sink,
        sequences,
        health,
        metrics,
        reload,
        last_source_seq,
        live,
    } = parts;
    // The reader's stop: set by the collector when `stop` is set, or when it gives up. The
    // workers stop only when the reader has stopped and they have processed every frame it
    // read (or when the collector is gone).
    let halt = AtomicBool::new(false);
    let settings = Mutex::new(Settings::default());
    // Pixel buffers of frames the workers are done with, on their way back to the source,
    // which only the reader may touch: it hands them over before it reads the next frame.
    let finished = SpareBuffers::new(workers.len() + 1);
    let preprocess = workers
        .first()
        .filter(|w| w.preprocesses_apart())
        .map(|w| Preprocessor::new(&w.package.manifest.input));
    // The workers hand the reader's buffers back once they have inferred a frame.
    let recycler = preprocess.as_ref().map(Preprocessor::recycler);
    let mut collector = Collector {
        sink,
        sequences,
        health,
        metrics,
        last_source_seq,
        live,
        summary: RunSummary::default(),
        warnings: WarningLimiter::new(Duration::from_secs(10), 5),
    };
    std::thread::scope(|scope| {
        let (jobs, queue) = mpsc::sync_channel::<(u64, Job)>(workers.len().max(1));
        let queue = Arc::new(Mutex::new(queue));
        let (done, results) = mpsc::channel::<(u64, Outcome)>();
        let reader = {
            let (halt, finished) = (&halt, &finished);
            std::thread::Builder::new()
                .name("edgevit-reader".into())
                .spawn_scoped(scope, move || {
                    let to = Handoff {
                        jobs,
                        preprocess,
                        finished,
                        live,
                    };
                    read(source, trigger, health, halt, to)
                })
                .map_err(|e| PipelineError::Thread(e.to_string()))?
        };
        for (index, worker) in workers.iter_mut().enumerate() {
            let (queue, done, settings) = (Arc::clone(&queue), done.clone(), &settings);
            let finished = &finished;
            let recycler = recycler.clone();
            std::thread::Builder::new()
                .name(format!("edgevit-worker-{index}"))
                .spawn_scoped(scope, move || {
                    work(worker, index, &queue, &done, settings, recycler, finished)
                })
                .map_err(|e| PipelineError::Thread(e.to_string()))?;
        }
        // The workers hold the only handles now: the queue closes when the last one stops.
        drop(queue);
        drop(done);
        let collected = collector.collect(&results, reload, &settings, stop, &halt);
        if collected.is_err() {
            halt.store(true, Ordering::SeqCst);
        }
        drop(results);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(PipelineError::Thread("the reader panicked".into())));
        collected?;
        read
    })?;
    collector.warnings.finish();
    collector.sink.flush()?;
    collector.sequences.close()?;
    Ok(collector.summary)
}

/// Where the reader hands frames: the workers' queue (preprocessed first when that can be
/// done apart), and the live view when it asked for one.
struct Handoff<'a> {
    jobs: SyncSender<(u64, Job)>,
    preprocess: Option<Preprocessor>,
    finished: &'a SpareBuffers,
    live: Option<&'a crate::web::LiveView>,
}

/// The reader: trigger, source, and preprocessing when it can be done apart; until `stop`.
/// Each frame's pixel buffer goes back to the source once no stage reads it.
fn read(
    source: &mut dyn FrameSource,
    trigger: &mut Option<Box<dyn FrameTrigger>>,
    health: &Health,
    stop: &AtomicBool,
    to: Handoff<'_>,
) -> Result<(), PipelineError> {
    let Handoff {
        jobs,
        mut preprocess,
        finished,
        live,
    } = to;
    let mut ticket = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if !wait_for_trigger(trigger, health, stop)? {
            break;
        }
        for data in finished.take_all() {
            source.recycle(data);
        }
        let job = match source.next_event(stop) {
            None => break,
            Some(SourceEvent::Camera(status)) => Job::Camera(status),
            Some(SourceEvent::Frame(Ok(frame))) => {
                if let Some(live) = live {
                    live.offer(&frame);
                }
                match preprocess.as_mut() {
                    Some(preprocess) => {
                        let job = prepare(preprocess, &frame);
                        source.recycle(frame.data);
                        job
                    }
                    None => Job::Frame(Ok(frame)),
                }
            }
            Some(SourceEvent::Frame(Err(failed))) => Job::Frame(Err(failed)),
        };
        // Fails only when every worker has stopped: the collector gave up.
        if jobs.send((ticket, job)).is_err() {
            break;
        }
        ticket += 1;
    }
    Ok(())
}

fn prepare(preprocess: &mut Preprocessor, frame: &Frame) -> Job {
    let start = Instant::now();
    let prepared = preprocess.prepare_frame(frame);
    Job::Prepared {
        info: FrameInfo::from_meta(&frame.meta),
        source_seq: frame.meta.seq,
        camera: frame.meta.camera.clone(),
        prepared,
        pre_ms: elapsed_ms(start),
    }
}

/// Waits for the trigger (when there is one); `false` when the loop should stop.
fn wait_for_trigger(
    trigger: &mut Option<Box<dyn FrameTrigger>>,
    health: &Health,
    stop: &AtomicBool,
) -> Result<bool, PipelineError> {
    let Some(trigger) = trigger.as_mut() else {
        return Ok(true);
    };
    loop {
        health.waiting_for_trigger();
        match trigger.wait(stop, Duration::from_millis(200)) {
            Ok(true) => return Ok(true),
            Ok(false) if stop.load(Ordering::Relaxed) => return Ok(false),
            Ok(false) => {}
            Err(why) => return Err(PipelineError::Trigger(why)),
        }
    }
}

/// A worker: takes the next job, applies new live settings first, processes it; until the
/// reader has stopped and the queue is empty, or the collector is gone.
fn work(
    worker: &mut Worker,
    index: usize,
    queue: &Mutex<Receiver<(u64, Job)>>,
    done: &Sender<(u64, Outcome)>,
    settings: &Mutex<Settings>,
    recycler: Option<Recycler>,
    finished: &SpareBuffers,
) {
    let first = index == 0;
    let mut generation = 0;
    let mut jobs = 0u64;
    loop {
        // Taken in reading order: live settings published before a frame is taken apply
        // to it and to every later one.
        let Ok((ticket, job)) = lock(queue).recv() else {
            break;
        };
        apply_settings(worker, first, settings, &mut generation);
        let outcome = match job {
            Job::Camera(status) => Outcome::Camera(status),
            Job::Frame(Ok(frame)) => {
                let records = worker.process_frame(&frame);
                let (source_seq, camera) = (frame.meta.seq, frame.meta.camera);
                finished.put(frame.data);
                Outcome::Records {
                    source_seq,
                    camera,
                    records,
                }
            }
            Job::Frame(Err(failed)) => Outcome::Records {
                source_seq: failed.meta.seq,
                camera: failed.meta.camera.clone(),
                records: vec![worker.error_record(
                    FrameInfo::from_meta(&failed.meta),
                    "source",
                    &failed.error,
                )],
            },
            Job::Prepared {
                info,
                source_seq,
                camera,
                prepared,
                pre_ms,
            } => {
                let record = worker.classify_prepared(info, &prepared, pre_ms);
                if let (Some(recycler), Ok(prepared)) = (&recycler, prepared) {
                    recycler.give_back(prepared);
                }
                Outcome::Records {
                    source_seq,
                    camera,
                    records: vec![record],
                }
            }
        };
        jobs += 1;
        if done.send((ticket, outcome)).is_err() {
            break;
        }
    }
    // What each worker did, for a look at how the frames were shared (and for the tests).
    log::debug!("worker {index}: {jobs} jobs");
}

/// Rebuilds the worker's interpretation when a reload brought new settings; the first worker
/// says how that went (every worker fares the same).
fn apply_settings(worker: &mut Worker, first: bool, settings: &Mutex<Settings>, seen: &mut u64) {
    let (generation, values) = {
        let settings = lock(settings);
        if settings.generation == *seen {
            return;
        }
        (settings.generation, settings.values.clone())
    };
    *seen = generation;
    let Some((classify, vit)) = values else {
        return;
    };
    match worker.reconfigure(&classify, &vit) {
        Ok(()) if first => log::info!(
            "reload: new [classify], [attention], [zoom], [parts] and [token_labels] in use"
        ),
        Err(e) if first => log::error!(
            "reload refused, the running configuration stays: {}",
            crate::error::Report(&e)
        ),
        _ => {}
    }
}

/// The collector's state: what it hands on, and what it counts.
struct Collector<'a> {
    sink: &'a mut dyn Sink,
    sequences: &'a mut Sequences,
    health: &'a Health,
    metrics: Option<&'a Metrics>,
    last_source_seq: &'a mut HashMap<String, u64>,
    live: Option<&'a crate::web::LiveView>,
    summary: RunSummary,
    warnings: WarningLimiter,
}

impl Collector<'_> {
    /// Delivers the workers' outcomes in reading order until every worker has stopped.
    fn collect(
        &mut self,
        results: &Receiver<(u64, Outcome)>,
        reload: &mut Option<Reload>,
        settings: &Mutex<Settings>,
        stop: &AtomicBool,
        halt: &AtomicBool,
    ) -> Result<(), PipelineError> {
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                halt.store(true, Ordering::SeqCst);
            }
            reload_if_asked(reload, settings);
            match results.recv_timeout(Duration::from_millis(100)) {
                Ok((ticket, outcome)) => {
                    waiting.insert(ticket, outcome);
                    while let Some(outcome) = waiting.remove(&next) {
                        self.deliver(outcome)?;
                        next += 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Only a worker that died (a bug) leaves a gap: what came after it is still delivered.
        if !waiting.is_empty() {
            log::error!(
                "frame {next} of this run was lost by a worker that stopped; delivering the {} after it",
                waiting.len()
            );
        }
        for outcome in std::mem::take(&mut waiting).into_values() {
            self.deliver(outcome)?;
        }
        Ok(())
    }

    fn deliver(&mut self, outcome: Outcome) -> Result<(), PipelineError> {
        let (source_seq, camera, records) = match outcome {
            Outcome::Camera(status) => {
                self.health.camera(&status.camera, status.state);
                if let Some(metrics) = self.metrics {
                    metrics.camera(&status.camera, status.state == CameraState::Online);
                }
                self.sink
                    .camera_status(&CameraStatusRecord::from(&status))?;
                return Ok(());
            }
            Outcome::Records {
                source_seq,
                camera,
                records,
            } => (source_seq, camera, records),
        };
        self.summary.frames += 1;
        // One number per frame: the records of a frame's crops share it.
        let seq = self.sequences.issue(&camera, source_seq)?;
        let mut records = records;
        for record in &mut records {
            record.frame_mut().seq = seq;
        }
        if let Some(live) = self.live {
            live.records(&camera, source_seq, &records);
        }
        for record in records {
            match record {
                Record::Result(_) => self.summary.results += 1,
                Record::Error(ref e) => {
                    self.summary.errors += 1;
                    self.warnings.warn(format!(
                        "frame {} of {}: {}",
                        e.frame.seq, e.frame.source, e.error.message
                    ));
                }
            }
            self.sink.emit(&record)?;
            self.count(&record, source_seq);
        }
        self.report_delivery();
        self.health.frame();
        Ok(())
    }

    /// Counts one record, and the frames the source skipped before it, in the metrics.
    fn count(&mut self, record: &Record, source_seq: u64) {
        let Some(metrics) = self.metrics else {
            return;
        };
        let camera = &record.frame().camera;
        if let Some(last) = self.last_source_seq.insert(camera.clone(), source_seq) {
            if source_seq > last + 1 {
                metrics.dropped(camera, source_seq - last - 1);
            }
        }
        match record {
            Record::Result(r) => {
                let l = r.latency_ms;
                metrics.record(camera, Some([l.pre, l.infer, l.post]), None);
            }
            Record::Error(e) => metrics.record(camera, None, Some(e.error.stage)),
        }
    }

    /// The sink's delivery state, once per frame, for the health (LED) and the metrics.
    fn report_delivery(&self) {
        let Some(state) = self.sink.delivery() else {
            return;
        };
        self.health.delivery(state.connected);
        if let Some(metrics) = self.metrics {
            metrics.delivery(&state);
        }
    }
}

/// When the reload flag is set, asks for the new settings and hands them to the workers
/// (SIGHUP); settings that cannot be read are refused here and the running ones stay.
fn reload_if_asked(reload: &mut Option<Reload>, settings: &Mutex<Settings>) {
    let Some(reload) = reload.as_mut() else {
        return;
    };
    if !reload.flag.swap(false, Ordering::SeqCst) {
        return;
    }
    match (reload.reload)() {
        Ok(values) => {
            let mut settings = lock(settings);
            settings.generation += 1;
            settings.values = Some(values);
        }
        Err(why) => log::error!("reload refused, the running configuration stays: {why}"),
    }
}
