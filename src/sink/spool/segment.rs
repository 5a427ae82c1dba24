//! Segment files: their names, the frame format, and the frame reader shared by the open-time
//! scan and by `read_after`.
//!
//! A frame is `[len: u32 LE][crc32 of payload: u32 LE][payload]`. A zero length is never
//! written, so that a zero-filled tail (what some filesystems leave after a power loss) can
//! never parse as a run of valid empty entries.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes in a frame header.
pub(super) const HEADER_LEN: u64 = 8;
/// The largest payload a `u32` length can describe.
pub(super) const MAX_PAYLOAD: u64 = u32::MAX as u64;

const SUFFIX: &str = ".seg";
/// Enough digits for any `u64`, so that names sort the way their numbers do.
const DIGITS: usize = 20;

pub(super) fn file_name(number: u64) -> String {
    format!("{number:0DIGITS$}{SUFFIX}")
}

/// The segment number of a file name, or `None` for anything that is not a segment.
pub(super) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Header and payload in one buffer, so that an append is a single write.
/// The caller has checked that the payload length fits in a `u32`.
pub(super) fn encode(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_LEN as usize + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// One attempt to read a frame.
pub(super) enum Frame {
    Valid(Vec<u8>),
    /// The frame runs past the end of the data: a write that never finished.
    Truncated,
    /// A complete frame of `len` bytes whose length is zero or whose checksum does not match.
    Invalid {
        len: u64,
    },
}

/// Reads frames at given offsets, seeking only when they are not contiguous.
pub(super) struct FrameReader {
    reader: BufReader<File>,
    pos: u64,
    end: u64,
}

impl FrameReader {
    /// Reads `path` as if it ended at `end` (bytes past it belong to no frame).
    pub(super) fn open(path: &Path, end: u64) -> io::Result<Self> {
        Ok(FrameReader {
            reader: BufReader::new(File::open(path)?),
            pos: 0,
            end,
        })
    }

    pub(super) fn read_at(&mut self, offset: u64) -> io::Result<Frame> {
        if offset != self.pos {
            self.reader.seek(SeekFrom::Start(offset))?;
            self.pos = offset;
        }
        let remaining = self.end.saturating_sub(offset);
        if remaining < HEADER_LEN {
            return Ok(Frame::Truncated);
        }
        let mut header = [0u8; HEADER_LEN as usize];
        self.reader.read_exact(&mut header)?;
        self.pos += HEADER_LEN;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 {
            return Ok(Frame::Invalid { len: HEADER_LEN });
        }
        let frame_len = HEADER_LEN + u64::from(len);
        if frame_len > remaining {
            return Ok(Frame::Truncated);
        }
        let mut payload = vec![0u8; len as usize];
        self.reader.read_exact(&mut payload)?;
        self.pos += u64::from(len);
        if crc32fast::hash(&payload) != crc {
            return Ok(Frame::Invalid { len: frame_len });
        }
        Ok(Frame::Valid(payload))
    }

    /// Whether every byte from the current position to the end is zero.
    fn rest_is_zero(&mut self) -> io::Result<bool> {
        let mut rest = (&mut self.reader).take(self.end.saturating_sub(self.pos));
        let mut buf = [0u8; 8192];
        loop {
            match rest.read(&mut buf)? {
                0 => return Ok(true),
                n if buf[..n].iter().any(|&b| b != 0) => return Ok(false),
                _ => {}
            }
        }
    }
}

/// What follows the last valid frame of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Damage {
    None,
    /// An unfinished write at the end: expected after a crash, nothing acknowledged is lost.
    TornTail,
    /// A bad frame with data after it: the rest of the segment cannot be framed any more.
    Corrupt,
}

/// The result of validating a whole segment file.
pub(super) struct Scan {
    /// Offsets of the valid frames, in order.
    pub offsets: Vec<u64>,
    /// Where the last valid frame ends.
    pub valid_len: u64,
    pub file_len: u64,
    pub damage: Damage,
}

pub(super) fn scan(path: &Path) -> io::Result<Scan> {
    let file_len = std::fs::metadata(path)?.len();
    let mut reader = FrameReader::open(path, file_len)?;
    let mut offsets = Vec::new();
    let mut offset = 0;
    let damage = loop {
        if offset == file_len {
            break Damage::None;
        }
        match reader.read_at(offset)? {
            Frame::Valid(payload) => {
                offsets.push(offset);
                offset += HEADER_LEN + payload.len() as u64;
            }
            Frame::Truncated => break Damage::TornTail,
            // A bad last frame, or one followed only by zeros, is a write that did not reach
            // the disk in full; anything else means data after it cannot be trusted.
            Frame::Invalid { len } if offset + len == file_len || reader.rest_is_zero()? => {
                break Damage::TornTail
            }
            Frame::Invalid { .. } => break Damage::Corrupt,
        }
    };
    Ok(Scan {
        offsets,
        valid_len: offset,
        file_len,
        damage,
    })
}
