//! A bounded, crash-safe on-disk spool (store and forward) for result records.
//!
//! The capture loop appends each result (a JSON line, as bytes); an I/O thread reads pending
//! entries in append order, publishes them, and acknowledges them once the broker has confirmed.
//! Nothing is lost while the broker is unreachable, nor across a crash and restart: after a
//! restart, delivery resumes after the last acknowledged entry.
//!
//! On disk, a folder holds numbered segment files (`00000000000000000001.seg`, ...), each a run
//! of frames `[len: u32 LE][crc32 of payload: u32 LE][payload]`, and a `cursor` file with the id
//! of the last acknowledged entry. An [`EntryId`] is the segment number and the frame's offset
//! in it, so ids are ordered and stay the same across reopen.
//!
//! Policies:
//! - **Bounded, oldest dropped first.** When an append would take the spool over `max_bytes`,
//!   whole segments are deleted, oldest first, even if not yet delivered; the undelivered entries
//!   they held are counted in [`Spool::dropped`] and logged. An entry that could never fit
//!   (larger than a segment or the whole spool) is refused with [`SpoolError::TooLarge`].
//! - **Duplicates rather than losses.** If the cursor is missing or unreadable, delivery starts
//!   again from the oldest entry on disk; a consumer may therefore see an entry twice.
//! - **Damage is skipped, not fatal.** On open every segment is checked. An unfinished write at
//!   the end (a crash mid-append) is truncated away with a warning. A bad frame followed by more
//!   data makes the rest of that segment unreadable: it is truncated too, with a warning, and its
//!   size is counted in [`Spool::corrupt_bytes`].
//! - **Durability.** Every append is handed to the operating system before it returns, which
//!   survives a crash or SIGKILL of the process but not a power loss; `fsync = true` also syncs
//!   every append to the disk, at a cost in flash wear and latency.
//! - Appends after an open always go to a new segment, so a new entry can never get an id at or
//!   below a cursor left by an earlier run.
//! - One process per folder: nothing stops two from corrupting each other's segments.

mod cursor;
mod segment;
#[cfg(test)]
mod tests;

use segment::{Damage, Frame, FrameReader, HEADER_LEN, MAX_PAYLOAD};
use serde::Deserialize;
use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `[sink.spool]`: where undelivered results wait, and how much room they may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Folder that holds the spool (created if missing). Give each spool its own folder.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Upper bound on the total size of the segment files, in bytes. When it is reached the
    /// oldest results are dropped (and counted) to make room for new ones.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Size of one segment file, in bytes: a new segment is started when the current one would
    /// grow past it. Space is reclaimed a whole segment at a time, on acknowledgement or when
    /// the spool is full; no single result may be larger.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    /// Sync every append to the disk. Without it each append still reaches the operating
    /// system before `append` returns, which survives a crash or SIGKILL of the process but
    /// not a power loss.
    #[serde(default)]
    pub fsync: bool,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            path: default_path(),
            max_bytes: default_max_bytes(),
            segment_bytes: default_segment_bytes(),
            fsync: false,
        }
    }
}

fn default_path() -> PathBuf {
    PathBuf::from("spool")
}

fn default_max_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_segment_bytes() -> u64 {
    4 * 1024 * 1024
}

/// Why a spool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool: cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spool {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("spool {path}: refusing an entry of {len} bytes; the limit is {limit} bytes (one segment, and the whole spool, must hold it with its {HEADER_LEN}-byte header)")]
    TooLarge { path: PathBuf, len: u64, limit: u64 },
    #[error("spool {path}: refusing an empty entry")]
    Empty { path: PathBuf },
    #[error("spool {path}: cannot acknowledge {id}: no such entry has been appended")]
    AckBeyondEnd { path: PathBuf, id: EntryId },
}

impl SpoolError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        SpoolError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Identifies an entry: its segment number, then its offset in that segment.
/// Ordered by append order, and the same after a reopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    segment: u64,
    offset: u64,
}

impl EntryId {
    /// An id at a given place, for tests of the spool's consumers.
    #[cfg(test)]
    pub(crate) fn at(segment: u64, offset: u64) -> Self {
        EntryId { segment, offset }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// One segment file as known in memory.
#[derive(Debug)]
struct Segment {
    number: u64,
    offsets: Vec<u64>,
    /// Bytes of valid frames.
    len: u64,
}

impl Segment {
    fn id(&self, index: usize) -> EntryId {
        EntryId {
            segment: self.number,
            offset: self.offsets[index],
        }
    }

    fn last_id(&self) -> Option<EntryId> {
        self.offsets.len().checked_sub(1).map(|i| self.id(i))
    }

    /// Index of the first entry after `bound` (all of them when there is no bound).
    fn first_after(&self, bound: Option<EntryId>) -> usize {
        match bound {
            None => 0,
            Some(b) => self.offsets.partition_point(|&offset| {
                EntryId {
                    segment: self.number,
                    offset,
                } <= b
            }),
        }
    }

    fn count_after(&self, bound: Option<EntryId>) -> u64 {
        (self.offsets.len() - self.first_after(bound)) as u64
    }
}

/// The spool; see the module documentation.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    fsync: bool,
    /// Oldest first; the writer, when open, appends to the last one.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    next_segment: u64,
    acked: Option<EntryId>,
    bytes: u64,
    dropped: u64,
    corrupt_bytes: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `config.path`, checking every segment and dropping
    /// damaged tails and fully delivered segments.
    pub fn open(config: &SpoolConfig) -> Result<Spool, SpoolError> {
        let dir = config.path.clone();
        if config.segment_bytes <= HEADER_LEN || config.max_bytes <= HEADER_LEN {
            return Err(SpoolError::Config {
                path: dir,
                reason: format!(
                    "`segment_bytes` ({}) and `max_bytes` ({}) must both exceed the {HEADER_LEN}-byte frame header",
                    config.segment_bytes, config.max_bytes
                ),
            });
        }
        fs::create_dir_all(&dir).map_err(|e| SpoolError::io("create the folder", &dir, e))?;

        let cursor = cursor::load(&dir)?;

        let mut spool = Spool {
            max_bytes: config.max_bytes,
            segment_bytes: config.segment_bytes,
            fsync: config.fsync,
            segments: VecDeque::new(),
            writer: None,
            next_segment: 1,
            acked: None,
            bytes: 0,
            dropped: 0,
            corrupt_bytes: 0,
            dir,
        };
        for number in spool.list_segments()? {
            spool.load_segment(number)?;
        }
        spool.acked = match cursor {
            cursor::Loaded::At(id) => Some(id),
            // The cursor is written at the first acknowledgement: without one, nothing was
            // delivered yet and everything is sent for the first time.
            cursor::Loaded::Missing => None,
            cursor::Loaded::Garbage => {
                if !spool.segments.is_empty() {
                    log::warn!(
                        "spool {}: the cursor is unreadable; delivering again from the oldest entry (expect duplicates)",
                        spool.dir.display()
                    );
                }
                None
            }
        };
        let newest = spool.segments.back().map_or(0, |s| s.number);
        let acked_segment = spool.acked.map_or(0, |a| a.segment);
        // Saturating: a file name is not worth a panic; `create_new` refuses a clash instead.
        spool.next_segment = newest.max(acked_segment).saturating_add(1);
        spool.delete_delivered()?;
        log::info!(
            "spool {}: {} pending entries in {} bytes",
            spool.dir.display(),
            spool.pending(),
            spool.bytes
        );
        Ok(spool)
    }

    /// Appends one entry. Blocks on nothing but the local disk.
    pub fn append(&mut self, payload: &[u8]) -> Result<EntryId, SpoolError> {
        if payload.is_empty() {
            return Err(SpoolError::Empty {
                path: self.dir.clone(),
            });
        }
        let len = HEADER_LEN + payload.len() as u64;
        let limit = self
            .segment_bytes
            .min(self.max_bytes)
            .min(HEADER_LEN + MAX_PAYLOAD);
        if len > limit {
            return Err(SpoolError::TooLarge {
                path: self.dir.clone(),
                len: payload.len() as u64,
                limit: limit - HEADER_LEN,
            });
        }
        let active_len = self.segments.back().map_or(0, |s| s.len);
        if self.writer.is_some() && active_len + len > self.segment_bytes {
            self.writer = None;
        }
        self.make_room(len)?;
        if self.writer.is_none() {
            self.start_segment()?;
        }
        let (Some(writer), Some(segment)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            unreachable!("start_segment opens a writer and lists its segment");
        };
        let offset = segment.len;
        let path = self.dir.join(segment::file_name(segment.number));
        let written = writer.write_all(&segment::encode(payload)).and_then(|()| {
            if self.fsync {
                writer.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(source) = written {
            // Take back a partial frame if we can, and in any case write the next entry to a
            // fresh segment so that it never lands after one.
            let _ = writer.set_len(offset);
            self.writer = None;
            return Err(SpoolError::io("append to", &path, source));
        }
        segment.offsets.push(offset);
        segment.len += len;
        self.bytes += len;
        Ok(EntryId {
            segment: segment.number,
            offset,
        })
    }

    /// Up to `max` pending entries in append order, starting after `after` or, without it,
    /// from the oldest pending entry. Acknowledged entries are never returned.
    pub fn read_after(
        &self,
        after: Option<EntryId>,
        max: usize,
    ) -> Result<Vec<(EntryId, Vec<u8>)>, SpoolError> {
        let bound = after.max(self.acked);
        let mut entries = Vec::new();
        for segment in &self.segments {
            if entries.len() >= max {
                break;
            }
            let first = segment.first_after(bound);
            if first == segment.offsets.len() {
                continue;
            }
            let path = self.dir.join(segment::file_name(segment.number));
            let read_error = |e| SpoolError::io("read", &path, e);
            let mut reader = FrameReader::open(&path, segment.len).map_err(read_error)?;
            for index in first..segment.offsets.len() {
                if entries.len() >= max {
                    break;
                }
                let id = segment.id(index);
                match reader.read_at(id.offset).map_err(read_error)? {
                    Frame::Valid(payload) => entries.push((id, payload)),
                    // It was valid when written or scanned; a reader cannot repair the file,
                    // so skip the entry rather than stall delivery on it.
                    Frame::Truncated | Frame::Invalid { .. } => log::warn!(
                        "spool {}: entry {id} no longer reads back correctly; skipping it",
                        path.display()
                    ),
                }
            }
        }
        Ok(entries)
    }

    /// Marks every entry up to and including `id` delivered, stores that durably, and deletes
    /// the segments that hold nothing else. Acknowledging an already acknowledged id does
    /// nothing. Each call syncs the disk, so acknowledge in batches where possible.
    pub fn ack_through(&mut self, id: EntryId) -> Result<(), SpoolError> {
        if self.acked.is_some_and(|acked| id <= acked) {
            return Ok(());
        }
        let newest = self.segments.iter().rev().find_map(Segment::last_id);
        if newest.is_none_or(|newest| id > newest) {
            return Err(SpoolError::AckBeyondEnd {
                path: self.dir.clone(),
                id,
            });
        }
        cursor::store(&self.dir, id)?;
        self.acked = Some(id);
        self.delete_delivered()
    }

    /// Entries not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.count_after(self.acked))
            .sum()
    }

    /// Undelivered entries dropped to stay within `max_bytes` since the spool was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes found unreadable (and truncated away) in the middle of segments when opening.
    pub fn corrupt_bytes(&self) -> u64 {
        self.corrupt_bytes
    }

    /// Total size of the segment files.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Segment numbers found in the folder, in order.
    fn list_segments(&self) -> Result<Vec<u64>, SpoolError> {
        let list_error = |e| SpoolError::io("list", &self.dir, e);
        let mut numbers = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(list_error)? {
            let entry = entry.map_err(list_error)?;
            let is_file = entry.file_type().map_err(list_error)?.is_file();
            if let Some(number) = entry
                .file_name()
                .to_str()
                .and_then(segment::parse_file_name)
            {
                if is_file {
                    numbers.push(number);
                }
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Checks one segment file, truncates any damage away, and adds it to the list.
    fn load_segment(&mut self, number: u64) -> Result<(), SpoolError> {
        let path = self.dir.join(segment::file_name(number));
        let scan = segment::scan(&path).map_err(|e| SpoolError::io("read", &path, e))?;
        let lost = scan.file_len - scan.valid_len;
        match scan.damage {
            Damage::None => {}
            Damage::TornTail => log::warn!(
                "spool {}: truncating an unfinished write of {lost} bytes at offset {}",
                path.display(),
                scan.valid_len
            ),
            Damage::Corrupt => {
                log::warn!(
                    "spool {}: corrupt entry at offset {}; skipping the remaining {lost} bytes of the segment",
                    path.display(),
                    scan.valid_len
                );
                self.corrupt_bytes += lost;
            }
        }
        if scan.offsets.is_empty() {
            return fs::remove_file(&path).map_err(|e| SpoolError::io("delete", &path, e));
        }
        if lost > 0 {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(scan.valid_len))
                .map_err(|e| SpoolError::io("truncate", &path, e))?;
        }
        self.bytes += scan.valid_len;
        self.segments.push_back(Segment {
            number,
            offsets: scan.offsets,
            len: scan.valid_len,
        });
        Ok(())
    }

    /// Creates the next segment file and makes it the one appended to.
    fn start_segment(&mut self) -> Result<(), SpoolError> {
        let number = self.next_segment;
        let path = self.dir.join(segment::file_name(number));
        // `create_new`: never append into a file this spool does not know the contents of.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| SpoolError::io("create", &path, e))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        self.next_segment = number.saturating_add(1);
        self.segments.push_back(Segment {
            number,
            offsets: Vec::new(),
            len: 0,
        });
        self.writer = Some(file);
        Ok(())
    }

    /// Deletes the oldest segments until `len` more bytes fit in `max_bytes`.
    fn make_room(&mut self, len: u64) -> Result<(), SpoolError> {
        while self.bytes + len > self.max_bytes {
            let Some(oldest) = self.segments.front() else {
                break;
            };
            let lost = oldest.count_after(self.acked);
            let path = self.dir.join(segment::file_name(oldest.number));
            fs::remove_file(&path).map_err(|e| SpoolError::io("delete", &path, e))?;
            log::warn!(
                "spool {}: full ({} of {} bytes); dropped {} with {lost} undelivered entries",
                self.dir.display(),
                self.bytes,
                self.max_bytes,
                path.display()
            );
            self.bytes -= oldest.len;
            self.dropped += lost;
            self.segments.pop_front();
            if self.segments.is_empty() {
                // It was the segment being written.
                self.writer = None;
            }
        }
        Ok(())
    }

    /// Deletes the oldest segments while everything in them is acknowledged, except the one
    /// being written.
    fn delete_delivered(&mut self) -> Result<(), SpoolError> {
        while let Some(oldest) = self.segments.front() {
            let is_active = self.writer.is_some() && self.segments.len() == 1;
            if is_active || oldest.count_after(self.acked) > 0 {
                break;
            }
            let path = self.dir.join(segment::file_name(oldest.number));
            fs::remove_file(&path).map_err(|e| SpoolError::io("delete", &path, e))?;
            self.bytes -= oldest.len;
            self.segments.pop_front();
        }
        Ok(())
    }
}

/// Makes a new file, or a rename, in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    // Only Unix can open and fsync a folder; elsewhere a rename is as durable as it gets.
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SpoolError::io("sync the folder", dir, e))?;
    }
    Ok(())
}
