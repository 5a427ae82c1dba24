use super::*;
use std::fs::OpenOptions;
use std::io::Write;
use tempfile::TempDir;

/// Payloads of equal length, so that tests can size segments in whole frames.
fn payload(n: usize) -> Vec<u8> {
    format!("{{\"n\":{n:04}}}").into_bytes()
}

/// Bytes of one frame of `payload(_)`.
const FRAME: u64 = HEADER_LEN + 10;

fn config(dir: &TempDir, max_bytes: u64, segment_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        path: dir.path().join("spool"),
        max_bytes,
        segment_bytes,
        fsync: false,
    }
}

/// Room for `per_segment` frames per segment and plenty of segments.
fn small_segments(dir: &TempDir, per_segment: u64) -> SpoolConfig {
    config(dir, 1 << 20, per_segment * FRAME)
}

fn append_all(spool: &mut Spool, range: std::ops::Range<usize>) -> Vec<EntryId> {
    range.map(|n| spool.append(&payload(n)).unwrap()).collect()
}

fn read_all(spool: &Spool) -> Vec<(EntryId, Vec<u8>)> {
    spool.read_after(None, usize::MAX).unwrap()
}

fn payloads(entries: &[(EntryId, Vec<u8>)]) -> Vec<Vec<u8>> {
    entries.iter().map(|(_, p)| p.clone()).collect()
}

fn expected(ns: impl IntoIterator<Item = usize>) -> Vec<Vec<u8>> {
    ns.into_iter().map(payload).collect()
}

fn segment_files(config: &SpoolConfig) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(&config.path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn append_read_ack_in_order() {
    let dir = TempDir::new().unwrap();
    let mut spool = Spool::open(&config(&dir, 1 << 20, 1 << 16)).unwrap();
    let ids = append_all(&mut spool, 0..5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(spool.pending(), 5);
    assert_eq!(spool.bytes(), 5 * FRAME);

    let entries = read_all(&spool);
    assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), ids);
    assert_eq!(payloads(&entries), expected(0..5));

    spool.ack_through(ids[2]).unwrap();
    assert_eq!(spool.pending(), 2);
    assert_eq!(payloads(&read_all(&spool)), expected(3..5));
    // Reading after an acknowledged id never returns acknowledged entries.
    assert_eq!(
        payloads(&spool.read_after(Some(ids[0]), 10).unwrap()),
        expected(3..5)
    );
    // Acknowledging an older id is a no-op, not a rewind.
    spool.ack_through(ids[1]).unwrap();
    assert_eq!(spool.pending(), 2);
}

#[test]
fn read_after_pages_across_segments() {
    let dir = TempDir::new().unwrap();
    let mut spool = Spool::open(&small_segments(&dir, 3)).unwrap();
    let ids = append_all(&mut spool, 0..10);
    assert_eq!(spool.read_after(None, 0).unwrap(), vec![]);

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = spool.read_after(after, 4).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        after = page.last().map(|e| e.0);
        seen.extend(page);
    }
    assert_eq!(seen.iter().map(|e| e.0).collect::<Vec<_>>(), ids);
    assert_eq!(payloads(&seen), expected(0..10));
    // Reading is not acknowledging.
    assert_eq!(spool.pending(), 10);
}

#[test]
fn reopen_keeps_pending_entries_and_cursor() {
    let dir = TempDir::new().unwrap();
    let config = small_segments(&dir, 2);
    let ids = {
        let mut spool = Spool::open(&config).unwrap();
        let ids = append_all(&mut spool, 0..6);
        spool.ack_through(ids[2]).unwrap();
        ids
    };
    let mut spool = Spool::open(&config).unwrap();
    assert_eq!(spool.pending(), 3);
    let entries = read_all(&spool);
    assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), ids[3..]);
    assert_eq!(payloads(&entries), expected(3..6));

    let new = spool.append(&payload(6)).unwrap();
    assert!(new > ids[5]);
    spool.ack_through(ids[4]).unwrap();
    assert_eq!(payloads(&read_all(&spool)), expected(5..7));
}

#[test]
fn entries_appended_after_acking_everything_are_pending_after_reopen() {
    let dir = TempDir::new().unwrap();
    let config = small_segments(&dir, 4);
    {
        let mut spool = Spool::open(&config).unwrap();
        let ids = append_all(&mut spool, 0..2);
        spool.ack_through(ids[1]).unwrap();
    }
    // The first reopen deletes the delivered segment; the second finds only the cursor.
    drop(Spool::open(&config).unwrap());
    assert_eq!(segment_files(&config).len(), 0);
    {
        let mut spool = Spool::open(&config).unwrap();
        assert_eq!(spool.pending(), 0);
        spool.append(&payload(2)).unwrap();
    }
    let spool = Spool::open(&config).unwrap();
    assert_eq!(spool.pending(), 1);
    assert_eq!(payloads(&read_all(&spool)), expected([2]));
}

#[test]
fn ack_deletes_delivered_segments() {
    let dir = TempDir::new().unwrap();
    let config = small_segments(&dir, 2);
    let mut spool = Spool::open(&config).unwrap();
    let ids = append_all(&mut spool, 0..6);
    assert_eq!(segment_files(&config).len(), 3);

    // Through the first entry of the second segment: only the first segment is done.
    spool.ack_through(ids[2]).unwrap();
    let files = segment_files(&config);
    assert_eq!(files.len(), 2);
    assert!(files[0].ends_with(segment::file_name(2)));
    assert_eq!(spool.bytes(), 4 * FRAME);

    // Everything: the segment being written stays, the rest goes.
    spool.ack_through(ids[5]).unwrap();
    assert_eq!(segment_files(&config).len(), 1);
    assert_eq!(spool.pending(), 0);
    assert_eq!(read_all(&spool), vec![]);
}

#[test]
fn ack_beyond_the_newest_entry_is_refused() {
    let dir = TempDir::new().unwrap();
    let mut spool = Spool::open(&small_segments(&dir, 2)).unwrap();
    let ids = append_all(&mut spool, 0..1);
    let bogus = EntryId {
        segment: ids[0].segment,
        offset: ids[0].offset + 1,
    };
    assert!(matches!(
        spool.ack_through(bogus),
        Err(SpoolError::AckBeyondEnd { .. })
    ));
    assert_eq!(spool.pending(), 1);
}

/// Appends three entries, drops the spool, damages the file with `damage`, and reopens.
fn reopen_after_damage(damage: impl FnOnce(&Path)) -> (TempDir, SpoolConfig, Spool) {
    let dir = TempDir::new().unwrap();
    let config = small_segments(&dir, 100);
    {
        let mut spool = Spool::open(&config).unwrap();
        append_all(&mut spool, 0..3);
    }
    let files = segment_files(&config);
    assert_eq!(files.len(), 1);
    damage(&files[0]);
    let spool = Spool::open(&config).unwrap();
    (dir, config, spool)
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

/// What every torn-tail case must satisfy: the good entries survive, the damage is gone from
/// disk, nothing counts as corrupt, and the spool keeps working across another reopen.
fn assert_recovers(config: &SpoolConfig, mut spool: Spool, good: usize) {
    assert_eq!(spool.pending(), good as u64);
    assert_eq!(spool.corrupt_bytes(), 0);
    assert_eq!(payloads(&read_all(&spool)), expected(0..good));
    let first = &segment_files(config)[0];
    assert_eq!(fs::metadata(first).unwrap().len(), good as u64 * FRAME);

    spool.append(&payload(good)).unwrap();
    let after_append = expected(0..=good);
    assert_eq!(payloads(&read_all(&spool)), after_append);
    drop(spool);
    let spool = Spool::open(config).unwrap();
    assert_eq!(payloads(&read_all(&spool)), after_append);
}

#[test]
fn torn_tail_in_the_middle_of_the_last_payload_is_truncated() {
    let (_dir, config, spool) = reopen_after_damage(|path| {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(3 * FRAME - 4).unwrap();
    });
    assert_recovers(&config, spool, 2);
}

#[test]
fn torn_tail_in_the_middle_of_a_header_is_truncated() {
    let (_dir, config, spool) = reopen_after_damage(|path| {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(2 * FRAME + 5).unwrap();
    });
    assert_recovers(&config, spool, 2);
}

#[test]
fn garbage_after_the_last_entry_is_truncated() {
    // A header whose length runs past the end of the file.
    let (_dir, config, spool) =
        reopen_after_damage(|path| append_bytes(path, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5]));
    assert_recovers(&config, spool, 3);
}

#[test]
fn short_garbage_after_the_last_entry_is_truncated() {
    let (_dir, config, spool) = reopen_after_damage(|path| append_bytes(path, &[0x42; 5]));
    assert_recovers(&config, spool, 3);
}

#[test]
fn complete_frame_with_bad_crc_at_the_end_is_a_torn_tail() {
    let (_dir, config, spool) = reopen_after_damage(|path| {
        let mut frame = segment::encode(b"lost");
        frame[4] ^= 0xff;
        append_bytes(path, &frame);
    });
    assert_recovers(&config, spool, 3);
}

#[test]
fn zero_filled_tail_is_a_torn_tail() {
    let (_dir, config, spool) = reopen_after_damage(|path| append_bytes(path, &[0; 4096]));
    assert_recovers(&config, spool, 3);
}

#[test]
fn crc_mismatch_in_the_middle_skips_the_rest_of_that_segment() {
    let dir = TempDir::new().unwrap();
    let config = small_segments(&dir, 3);
    {
        let mut spool = Spool::open(&config).unwrap();
        append_all(&mut spool, 0..5);
    }
    let files = segment_files(&config);
    assert_eq!(files.len(), 2);
    // Flip a payload byte of the second entry of the first segment.
    let mut bytes = fs::read(&files[0]).unwrap();
    bytes[(FRAME + HEADER_LEN + 2) as usize] ^= 0x01;
    fs::write(&files[0], &bytes).unwrap();

    let mut spool = Spool::open(&config).unwrap();
    assert_eq!(spool.corrupt_bytes(), 2 * FRAME);
    assert_eq!(spool.pending(), 3);
    assert_eq!(payloads(&read_all(&spool)), expected([0, 3, 4]));
    assert_eq!(fs::metadata(&files[0]).unwrap().len(), FRAME);

    spool.append(&payload(5)).unwrap();
    assert_eq!(payloads(&read_all(&spool)), expected([0, 3, 4, 5]));
}

#[test]
fn full_spool_drops_the_oldest_segment_and_counts_it() {
    let dir = TempDir::new().unwrap();
    // Three frames a segment, two segments in all.
    let config = config(&dir, 6 * FRAME, 3 * FRAME);
    let mut spool = Spool::open(&config).unwrap();
    let ids = append_all(&mut spool, 0..6);
    assert_eq!(spool.dropped(), 0);
    spool.ack_through(ids[0]).unwrap();

    append_all(&mut spool, 6..7);
    // The first segment went; one of its three entries had been delivered already.
    assert_eq!(spool.dropped(), 2);
    assert!(spool.bytes() <= config.max_bytes);
    assert_eq!(segment_files(&config).len(), 2);
    assert_eq!(payloads(&read_all(&spool)), expected(3..7));
    assert_eq!(spool.pending(), 4);

    append_all(&mut spool, 7..10);
    assert_eq!(spool.dropped(), 5);
    assert_eq!(payloads(&read_all(&spool)), expected(6..10));
}

#[test]
fn oversize_and_empty_entries_are_refused() {
    let dir = TempDir::new().unwrap();
    let config = config(&dir, 10 * FRAME, 2 * FRAME);
    let mut spool = Spool::open(&config).unwrap();
    let too_big = vec![b'x'; (2 * FRAME - HEADER_LEN + 1) as usize];
    match spool.append(&too_big) {
        Err(SpoolError::TooLarge { len, limit, .. }) => {
            assert_eq!(len, too_big.len() as u64);
            assert_eq!(limit, 2 * FRAME - HEADER_LEN);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(spool.append(b""), Err(SpoolError::Empty { .. })));
    assert_eq!(spool.bytes(), 0);

    // An entry that fills a segment exactly is fine, and the spool still works.
    let exact = vec![b'y'; (2 * FRAME - HEADER_LEN) as usize];
    spool.append(&exact).unwrap();
    spool.append(&payload(1)).unwrap();
    assert_eq!(payloads(&read_all(&spool)), vec![exact, payload(1)]);
}

#[test]
fn spool_smaller_than_a_segment_refuses_what_it_cannot_hold() {
    let dir = TempDir::new().unwrap();
    let mut spool = Spool::open(&config(&dir, 2 * FRAME, 1 << 20)).unwrap();
    let too_big = vec![b'x'; (2 * FRAME) as usize];
    assert!(matches!(
        spool.append(&too_big),
        Err(SpoolError::TooLarge { .. })
    ));
    // Filling it drops the segment being written and starts another.
    append_all(&mut spool, 0..3);
    assert_eq!(spool.dropped(), 2);
    assert_eq!(payloads(&read_all(&spool)), expected([2]));
}

fn reopen_with_bad_cursor(damage: impl FnOnce(&Path)) {
    let dir = TempDir::new().unwrap();
    let config = small_segments(&dir, 100);
    let ids = {
        let mut spool = Spool::open(&config).unwrap();
        let ids = append_all(&mut spool, 0..4);
        spool.ack_through(ids[1]).unwrap();
        assert_eq!(spool.pending(), 2);
        ids
    };
    damage(&config.path.join("cursor"));
    let mut spool = Spool::open(&config).unwrap();
    assert_eq!(spool.pending(), 4);
    assert_eq!(payloads(&read_all(&spool)), expected(0..4));
    // The cursor is written afresh on the next acknowledgement.
    spool.ack_through(ids[2]).unwrap();
    drop(spool);
    let spool = Spool::open(&config).unwrap();
    assert_eq!(payloads(&read_all(&spool)), expected([3]));
}

#[test]
fn garbage_cursor_falls_back_to_the_oldest_entry() {
    reopen_with_bad_cursor(|path| fs::write(path, b"\x00\xffnot a cursor").unwrap());
}

#[test]
fn truncated_cursor_falls_back_to_the_oldest_entry() {
    reopen_with_bad_cursor(|path| {
        let text = fs::read_to_string(path).unwrap();
        fs::write(path, &text[..text.len() - 4]).unwrap();
    });
}

#[test]
fn missing_cursor_falls_back_to_the_oldest_entry() {
    reopen_with_bad_cursor(|path| fs::remove_file(path).unwrap());
}

#[test]
fn config_defaults_and_unknown_keys() {
    let config: SpoolConfig = toml::from_str("path = \"/var/spool/x\"").unwrap();
    assert_eq!(config.path, PathBuf::from("/var/spool/x"));
    assert_eq!(config.max_bytes, 64 * 1024 * 1024);
    assert_eq!(config.segment_bytes, 4 * 1024 * 1024);
    assert!(!config.fsync);
    assert!(toml::from_str::<SpoolConfig>("max_byte = 1").is_err());
}

#[test]
fn segment_sizes_below_a_header_are_refused() {
    let dir = TempDir::new().unwrap();
    assert!(matches!(
        Spool::open(&config(&dir, 1 << 20, HEADER_LEN)),
        Err(SpoolError::Config { .. })
    ));
}

#[test]
fn fsync_mode_round_trips() {
    let dir = TempDir::new().unwrap();
    let mut config = small_segments(&dir, 2);
    config.fsync = true;
    let ids = {
        let mut spool = Spool::open(&config).unwrap();
        append_all(&mut spool, 0..3)
    };
    let spool = Spool::open(&config).unwrap();
    assert_eq!(
        read_all(&spool).iter().map(|e| e.0).collect::<Vec<_>>(),
        ids
    );
}
