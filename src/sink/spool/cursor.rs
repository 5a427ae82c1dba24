//! The acknowledgement cursor: the id of the last delivered entry, in a small text file that is
//! replaced atomically (temporary file, fsync, rename, fsync of the folder) so that a crash
//! leaves either the old cursor or the new one, never a mix.

use super::{sync_dir, EntryId, SpoolError};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

const FILE: &str = "cursor";
const TEMP: &str = "cursor.tmp";
const MAGIC: &str = "edgevit-spool-cursor v1";

/// What was found on disk.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Loaded {
    Missing,
    /// The file exists but does not hold a cursor (the caller replays from the oldest entry).
    Garbage,
    At(EntryId),
}

pub(super) fn load(dir: &Path) -> Result<Loaded, SpoolError> {
    let path = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(source) => return Err(SpoolError::io("read the cursor", &path, source)),
    };
    Ok(match std::str::from_utf8(&bytes).ok().and_then(parse) {
        Some(id) => Loaded::At(id),
        None => Loaded::Garbage,
    })
}

fn parse(text: &str) -> Option<EntryId> {
    let mut lines = text.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let (segment, offset) = lines.next()?.split_once(' ')?;
    if lines.next().is_some() {
        return None;
    }
    Some(EntryId {
        segment: segment.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

pub(super) fn store(dir: &Path, id: EntryId) -> Result<(), SpoolError> {
    let temp = dir.join(TEMP);
    let text = format!("{MAGIC}\n{} {}\n", id.segment, id.offset);
    let write = || -> io::Result<()> {
        let mut file = File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|e| SpoolError::io("write the cursor", &temp, e))?;
    let path = dir.join(FILE);
    fs::rename(&temp, &path).map_err(|e| SpoolError::io("replace the cursor", &path, e))?;
    sync_dir(dir)
}
