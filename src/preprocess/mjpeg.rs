//! MJPEG frames without Huffman tables.
//!
//! Many UVC webcams, like Motion-JPEG in AVI, leave the DHT segment out of every frame and
//! rely on the example tables of ITU T.81 Annex K.3. JPEG decoders that follow the spec refuse
//! such frames (zune-jpeg, behind the `image` crate, fills the tables in only when an `AVI1`
//! APP0 segment says the frame is MJPEG, which most webcams do not send), so the tables are
//! put back before decoding.

use std::borrow::Cow;

/// Why the marker segments before the scan of a JPEG could not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MjpegError {
    #[error("not a JPEG (no start-of-image marker)")]
    NotJpeg,
    #[error("truncated: segment of marker 0x{marker:02X} at byte {offset} runs past the end of the {len}-byte frame")]
    Truncated {
        marker: u8,
        offset: usize,
        len: usize,
    },
    #[error("marker 0x{marker:02X} at byte {offset} has an invalid segment length {length}")]
    BadLength {
        marker: u8,
        offset: usize,
        length: u16,
    },
    #[error("no start-of-scan marker before byte {offset} (end of image or end of data)")]
    NoScan { offset: usize },
    #[error("truncated: the {len}-byte frame has no end-of-image marker")]
    NoEndOfImage { len: usize },
}

/// Checks that a camera frame ends with EOI (`FF D9`), ignoring the zero padding some cameras
/// append. The decoder would turn a cut-off frame into a whole image with the missing part
/// filled in grey, and the model would classify that.
pub fn check_complete(jpeg: &[u8]) -> Result<(), MjpegError> {
    let end = jpeg.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if jpeg[..end].ends_with(&[0xFF, 0xD9]) {
        Ok(())
    } else {
        Err(MjpegError::NoEndOfImage { len: jpeg.len() })
    }
}

/// The JPEG with the standard Huffman tables (ITU T.81 Annex K.3) inserted when it has no DHT
/// segment before its first scan; otherwise the input itself, unchanged.
///
/// The tables go right before the first SOF (or before SOS if there is none). Frames coded
/// with arithmetic coding need no Huffman tables and are returned unchanged. Only the
/// segments up to and including the first SOS header are checked; the entropy-coded data
/// after it (and whatever follows EOI) is left to the decoder.
pub fn with_huffman_tables(jpeg: &[u8]) -> Result<Cow<'_, [u8]>, MjpegError> {
    if !jpeg.starts_with(&[0xFF, SOI]) {
        return Err(MjpegError::NotJpeg);
    }
    let mut pos = 2;
    let mut has_dht = false;
    let mut first_sof: Option<(usize, u8)> = None;
    let sos = loop {
        let Some((start, marker, body)) = next_marker(jpeg, pos) else {
            return Err(MjpegError::NoScan { offset: jpeg.len() });
        };
        match marker {
            EOI => return Err(MjpegError::NoScan { offset: start }),
            // Markers that stand alone, without a length.
            SOI | TEM | 0xD0..=0xD7 => {
                pos = body;
                continue;
            }
            _ => {}
        }
        let truncated = MjpegError::Truncated {
            marker,
            offset: start,
            len: jpeg.len(),
        };
        let length = match jpeg.get(body..body + 2) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => return Err(truncated),
        };
        if length < 2 {
            return Err(MjpegError::BadLength {
                marker,
                offset: start,
                length,
            });
        }
        let end = body + usize::from(length);
        if end > jpeg.len() {
            return Err(truncated);
        }
        match marker {
            DHT => has_dht = true,
            SOS => break start,
            m if is_sof(m) && first_sof.is_none() => first_sof = Some((start, m)),
            _ => {}
        }
        pos = end;
    };
    let arithmetic = matches!(first_sof, Some((_, m)) if m >= 0xC8);
    if has_dht || arithmetic {
        return Ok(Cow::Borrowed(jpeg));
    }
    let at = first_sof.map_or(sos, |(start, _)| start);
    let mut out = Vec::with_capacity(jpeg.len() + DHT_SEGMENT_LEN);
    out.extend_from_slice(&jpeg[..at]);
    push_standard_dht(&mut out);
    out.extend_from_slice(&jpeg[at..]);
    Ok(Cow::Owned(out))
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DHT: u8 = 0xC4;
const TEM: u8 = 0x01;

/// SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, DHT | 0xC8 | 0xCC)
}

/// The next marker at or after `pos`: (offset of its first 0xFF, marker code, offset after
/// the code). Like libjpeg, stray bytes before a marker and 0xFF fill bytes are skipped, so
/// any frame libjpeg accepts can be walked.
fn next_marker(jpeg: &[u8], mut pos: usize) -> Option<(usize, u8, usize)> {
    loop {
        let start = pos + jpeg.get(pos..)?.iter().position(|&b| b == 0xFF)?;
        let fill = jpeg
            .get(start..)?
            .iter()
            .take_while(|&&b| b == 0xFF)
            .count();
        let code_at = start + fill;
        let code = *jpeg.get(code_at)?;
        // FF 00 is a stuffed byte, not a marker.
        if code != 0 {
            return Some((start, code, code_at + 1));
        }
        pos = code_at + 1;
    }
}

/// One Huffman table as a DHT segment carries it.
struct HuffmanTable {
    /// Table class (0 = DC, 1 = AC) in the high nibble, destination id in the low one.
    class_id: u8,
    /// Number of codes of each length 1..=16.
    counts: [u8; 16],
    /// Symbols in order of increasing code length.
    symbols: &'static [u8],
}

/// ITU T.81 Tables K.3 to K.6, the same bytes as libjpeg's `std_huff_tables` and the tables
/// that Linux's UVC driver documentation and FFmpeg's `mjpeg` (AVI1) decoder assume.
const STANDARD_TABLES: [HuffmanTable; 4] = [
    // K.3: luminance DC.
    HuffmanTable {
        class_id: 0x00,
        counts: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    },
    // K.5: luminance AC.
    HuffmanTable {
        class_id: 0x10,
        counts: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D],
        symbols: &[
            0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51,
            0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1,
            0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18,
            0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
            0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57,
            0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75,
            0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92,
            0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
            0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
            0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8,
            0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2,
            0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
        ],
    },
    // K.4: chrominance DC.
    HuffmanTable {
        class_id: 0x01,
        counts: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
        symbols: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    },
    // K.6: chrominance AC.
    HuffmanTable {
        class_id: 0x11,
        counts: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
        symbols: &[
            0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
            0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09,
            0x23, 0x33, 0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25,
            0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38,
            0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56,
            0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74,
            0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
            0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
            0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA,
            0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6,
            0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2,
            0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
        ],
    },
];

/// Marker, length field and, per table, class/id + 16 counts + symbols: 420 bytes.
const DHT_SEGMENT_LEN: usize = 2 + 2 + 4 * (1 + 16) + 2 * 12 + 2 * 162;

/// Appends one DHT segment that defines all four standard tables.
fn push_standard_dht(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xFF, DHT]);
    // The length counts itself but not the marker; 418 fits in u16.
    out.extend_from_slice(&((DHT_SEGMENT_LEN - 2) as u16).to_be_bytes());
    for table in &STANDARD_TABLES {
        out.push(table.class_id);
        out.extend_from_slice(&table.counts);
        out.extend_from_slice(table.symbols);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A structurally complete baseline JPEG header (APP0, DQT, SOF0 4:2:2, DRI, SOS) and a
    /// few bytes of made-up scan data; enough for the marker walk, not for a decoder.
    fn frame(dht: bool) -> Vec<u8> {
        let mut f = vec![0xFF, SOI];
        f.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x08, b'A', b'V', b'I', b'1', 0, 0]);
        f.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
        f.extend(std::iter::repeat_n(1u8, 64));
        if dht {
            push_standard_dht(&mut f);
        }
        f.extend_from_slice(&[
            0xFF, 0xC0, 0x00, 0x11, 8, 0x00, 0x10, 0x00, 0x20, 3, 1, 0x21, 0, 2, 0x11, 0, 3, 0x11,
            0,
        ]);
        f.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04, 0x00, 0x02]);
        f.extend_from_slice(&[
            0xFF, SOS, 0x00, 0x0C, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0,
        ]);
        // Scan data with a stuffed FF 00 and a restart marker, then EOI.
        f.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, EOI]);
        f
    }

    fn offset_of(data: &[u8], marker: u8) -> Option<usize> {
        data.windows(2).position(|w| w == [0xFF, marker])
    }

    #[test]
    fn frames_with_dht_pass_through_borrowed() {
        let f = frame(true);
        let out = with_huffman_tables(&f).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(&*out, &f[..]);
    }

    #[test]
    fn dht_is_inserted_right_before_sof() {
        let f = frame(false);
        let out = with_huffman_tables(&f).unwrap();
        assert!(matches!(out, Cow::Owned(_)));
        let sof = offset_of(&f, 0xC0).unwrap();
        assert_eq!(out.len(), f.len() + DHT_SEGMENT_LEN);
        assert_eq!(&out[..sof], &f[..sof]);
        assert_eq!(&out[sof..sof + 2], &[0xFF, DHT]);
        assert_eq!(&out[sof + DHT_SEGMENT_LEN..], &f[sof..]);
        // The result is the frame that carried the tables from the start.
        assert_eq!(out.into_owned(), {
            let mut expected = frame(false);
            let mut dht = Vec::new();
            push_standard_dht(&mut dht);
            expected.splice(sof..sof, dht);
            expected
        });
        // And is itself passed through.
        let twice = with_huffman_tables(&with_huffman_tables(&f).unwrap())
            .unwrap()
            .len();
        assert_eq!(twice, f.len() + DHT_SEGMENT_LEN);
    }

    #[test]
    fn without_sof_dht_goes_before_sos() {
        let mut f = frame(false);
        let sof = offset_of(&f, 0xC0).unwrap();
        f.drain(sof..sof + 19);
        let sos = offset_of(&f, SOS).unwrap();
        let out = with_huffman_tables(&f).unwrap();
        assert_eq!(&out[sos..sos + 2], &[0xFF, DHT]);
        assert_eq!(&out[sos + DHT_SEGMENT_LEN..], &f[sos..]);
    }

    #[test]
    fn arithmetic_coded_frames_are_left_alone() {
        let mut f = frame(false);
        let sof = offset_of(&f, 0xC0).unwrap();
        f[sof + 1] = 0xC9;
        assert!(matches!(with_huffman_tables(&f), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn inserted_segment_is_well_formed() {
        let mut seg = Vec::new();
        push_standard_dht(&mut seg);
        assert_eq!(seg.len(), DHT_SEGMENT_LEN);
        assert_eq!(&seg[..2], &[0xFF, DHT]);
        let length = usize::from(u16::from_be_bytes([seg[2], seg[3]]));
        assert_eq!(length, seg.len() - 2);
        let mut rest = &seg[4..];
        let mut ids = Vec::new();
        while let Some((&class_id, after)) = rest.split_first() {
            let counts = &after[..16];
            let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = &after[16..16 + n];
            ids.push(class_id);
            // DC symbols are magnitude categories 0..=11; AC ones are run/size pairs.
            let max_symbols = if class_id >> 4 == 0 { 12 } else { 162 };
            assert_eq!(n, max_symbols, "table {class_id:02X}");
            if class_id >> 4 == 0 {
                assert!(symbols.iter().all(|&s| s <= 11));
            }
            let mut sorted = symbols.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), n, "table {class_id:02X} repeats a symbol");
            // A complete prefix code that leaves the all-ones code unused (T.81 C.2).
            let kraft: u32 = (1..=16)
                .map(|len| u32::from(counts[len - 1]) << (16 - len))
                .sum();
            assert!(kraft < 1 << 16, "table {class_id:02X}");
            rest = &after[16 + n..];
        }
        assert_eq!(ids, [0x00, 0x10, 0x01, 0x11]);
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(with_huffman_tables(&[]), Err(MjpegError::NotJpeg));
        assert_eq!(with_huffman_tables(b"GIF89a"), Err(MjpegError::NotJpeg));
        assert_eq!(with_huffman_tables(&[0xFF]), Err(MjpegError::NotJpeg));
        assert_eq!(
            with_huffman_tables(&[0xFF, SOI]),
            Err(MjpegError::NoScan { offset: 2 })
        );
        assert_eq!(
            with_huffman_tables(&[0xFF, SOI, 0xFF, EOI, 0, 0]),
            Err(MjpegError::NoScan { offset: 2 })
        );
        assert_eq!(
            with_huffman_tables(&[0xFF, SOI, 0xFF, 0xDB, 0x00]),
            Err(MjpegError::Truncated {
                marker: 0xDB,
                offset: 2,
                len: 5
            })
        );
        assert_eq!(
            with_huffman_tables(&[0xFF, SOI, 0xFF, 0xDB, 0x00, 0x10, 1, 2]),
            Err(MjpegError::Truncated {
                marker: 0xDB,
                offset: 2,
                len: 8
            })
        );
        assert_eq!(
            with_huffman_tables(&[0xFF, SOI, 0xFF, 0xE0, 0x00, 0x01]),
            Err(MjpegError::BadLength {
                marker: 0xE0,
                offset: 2,
                length: 1
            })
        );
    }

    #[test]
    fn fill_bytes_and_stray_bytes_before_markers_are_skipped() {
        let f = frame(false);
        let sof = offset_of(&f, 0xC0).unwrap();
        let mut padded = f.clone();
        padded.splice(sof..sof, [0x00, 0x17, 0xFF, 0xFF]);
        let out = with_huffman_tables(&padded).unwrap();
        // The tables go before the run of fill bytes that leads into SOF.
        assert_eq!(&out[sof + 2..sof + 4], &[0xFF, DHT]);
        assert_eq!(out.len(), padded.len() + DHT_SEGMENT_LEN);
    }

    #[test]
    fn trailing_padding_is_kept() {
        let mut f = frame(false);
        f.extend(std::iter::repeat_n(0u8, 100));
        let out = with_huffman_tables(&f).unwrap();
        assert_eq!(out.len(), f.len() + DHT_SEGMENT_LEN);
        assert!(out.ends_with(&f[f.len() - 110..]));
    }

    #[test]
    fn every_truncation_and_garbage_gives_a_result_not_a_panic() {
        for f in [frame(false), frame(true)] {
            let sos = offset_of(&f, SOS).unwrap();
            for len in 0..=f.len() {
                let result = with_huffman_tables(&f[..len]);
                // Cut anywhere in the header: an error; after the SOS header: tables or not.
                if len < sos + 14 {
                    assert!(result.is_err(), "cut at {len}: {result:?}");
                } else {
                    assert!(result.is_ok(), "cut at {len}: {result:?}");
                }
            }
        }
        // Deterministic pseudo-random bytes behind an SOI, and flipped bytes in a real header.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        };
        for _ in 0..2000 {
            let mut g = vec![0xFF, SOI];
            let n = usize::from(next()) % 64;
            g.extend((0..n).map(|_| next()));
            let _ = with_huffman_tables(&g);
            let mut f = frame(false);
            let i = usize::from(next()) % f.len();
            f[i] = next();
            let _ = with_huffman_tables(&f);
        }
    }
}
