use super::*;

const DIM: usize = 16;

fn model() -> ModelStamp {
    ModelStamp {
        name: "m".into(),
        dim: DIM,
    }
}

/// A unit vector near basis vector `person`, nudged by `noise` in a direction set by `seed`.
fn view(person: usize, noise: f32, seed: u32) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    v[person] = 1.0;
    for (i, x) in v.iter_mut().enumerate() {
        *x += noise * ((seed as f32 * 1.7 + i as f32 * 0.9).sin());
    }
    normalize(&v).unwrap()
}

fn config() -> GalleryConfig {
    GalleryConfig {
        threshold: Some(0.7),
        confirm_frames: 3,
        ..GalleryConfig::default()
    }
}

/// A gallery file `g.sqlite` in `dir` whose identities are confirmed at their first frame.
fn confirmed_at_once(dir: &std::path::Path) -> (std::path::PathBuf, GalleryConfig, Gallery) {
    let path = dir.join("g.sqlite");
    let config = GalleryConfig {
        confirm_frames: 1,
        ..config()
    };
    let gallery = Gallery::open(&path, &model(), &config).unwrap();
    (path, config, gallery)
}

#[test]
fn two_people_become_two_identities_confirmed_after_k_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sqlite");
    let mut gallery = Gallery::open(&path, &model(), &config()).unwrap();
    let first = gallery.observe(&view(0, 0.1, 0), "cam0", 1000).unwrap();
    assert!(first.new && !first.confirmed);
    assert_eq!(first.identity, "id-000001");
    let second = gallery.observe(&view(0, 0.1, 1), "cam1", 1100).unwrap();
    assert!(!second.new && !second.confirmed && second.similarity > 0.9);
    let third = gallery.observe(&view(0, 0.1, 2), "cam0", 1200).unwrap();
    assert!(third.confirmed, "confirmed after 3 frames");
    let other = gallery.observe(&view(5, 0.1, 3), "cam1", 1300).unwrap();
    assert!(other.new);
    assert_eq!(other.identity, "id-000002");
    assert!(other.similarity < 0.7, "{}", other.similarity);
    assert_eq!(gallery.identities().count(), 2);
    let seen = gallery.sightings("id-000001").unwrap();
    assert_eq!(
        seen.iter()
            .map(|(c, n, _)| (c.as_str(), *n))
            .collect::<Vec<_>>(),
        [("cam0", 2), ("cam1", 1)]
    );
}

#[test]
fn a_tentative_identity_that_never_confirms_is_discarded_and_its_number_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sqlite");
    let mut gallery = Gallery::open(&path, &model(), &config()).unwrap();
    let odd = gallery.observe(&view(3, 0.0, 0), "cam0", 0).unwrap();
    assert!(odd.new && !odd.confirmed);
    // 11 s later (tentative_timeout_s = 10) someone else comes: the odd one is gone.
    let next = gallery.observe(&view(7, 0.0, 0), "cam0", 11_001).unwrap();
    assert_eq!(next.identity, "id-000002");
    let ids: Vec<String> = gallery.identities().map(Identity::id).collect();
    assert_eq!(ids, ["id-000002"]);
}

#[test]
fn identities_survive_a_reopen_and_unnamed_ones_expire() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sqlite");
    let config = GalleryConfig {
        confirm_frames: 1,
        expire_after_h: 1,
        ..config()
    };
    {
        let mut gallery = Gallery::open(&path, &model(), &config).unwrap();
        gallery.observe(&view(1, 0.05, 0), "cam0", 0).unwrap();
        gallery.observe(&view(2, 0.05, 0), "cam0", 0).unwrap();
        gallery.rename("id-000002", "bob").unwrap();
    }
    let mut gallery = Gallery::open(&path, &model(), &config).unwrap();
    let again = gallery.observe(&view(1, 0.05, 9), "cam1", 1000).unwrap();
    assert_eq!((again.identity.as_str(), again.new), ("id-000001", false));
    // Two hours later: the unnamed one has expired, bob has not.
    let later = gallery
        .observe(&view(2, 0.05, 4), "cam0", 2 * 3_600_000)
        .unwrap();
    assert_eq!(later.name.as_deref(), Some("bob"));
    assert_eq!(gallery.identities().count(), 1);
}

#[test]
fn exemplars_are_capped_by_dropping_the_most_redundant() {
    let dir = tempfile::tempdir().unwrap();
    let config = GalleryConfig {
        max_exemplars: 3,
        novelty: Some(1.0),
        ..config()
    };
    let mut gallery = Gallery::open(&dir.path().join("g.sqlite"), &model(), &config).unwrap();
    for seed in 0..10 {
        gallery.observe(&view(0, 0.2, seed), "cam0", 0).unwrap();
    }
    assert_eq!(gallery.exemplar_count(), 3);
    let reopened = Gallery::open(&dir.path().join("g.sqlite"), &model(), &config).unwrap();
    assert_eq!(reopened.exemplar_count(), 3);
}

#[test]
fn enrolment_names_the_known_person_and_admin_commands_change_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, mut gallery) = confirmed_at_once(dir.path());
    let seen = gallery.observe(&view(4, 0.1, 0), "cam0", 0).unwrap();
    let enrolled = gallery
        .enroll("alice", &[view(4, 0.1, 1), view(4, 0.1, 2)], 10)
        .unwrap();
    assert_eq!(enrolled, Enrolled::Named(seen.identity.clone()));
    assert_eq!(
        gallery.enroll("alice", &[view(4, 0.1, 3)], 20).unwrap(),
        Enrolled::Added(seen.identity.clone())
    );
    let carol = gallery.enroll("carol", &[view(9, 0.0, 0)], 30).unwrap();
    assert_eq!(carol, Enrolled::Created("id-000002".into()));
    assert!(matches!(
        gallery.rename("id-000002", "alice"),
        Err(GalleryError::NameTaken { .. })
    ));
    assert!(matches!(
        gallery.merge("alice", "carol"),
        Err(GalleryError::Conflict(_))
    ));
    let x = gallery.observe(&view(11, 0.0, 0), "cam0", 40).unwrap();
    assert_eq!(gallery.merge(&x.identity, "carol").unwrap(), "id-000002");
    assert_eq!(gallery.identities().count(), 2);
    assert_eq!(gallery.forget("alice").unwrap(), seen.identity);
    assert!(matches!(
        gallery.find("alice"),
        Err(GalleryError::NotFound(_))
    ));

    // Another process (here: another connection) sees every change, and its changes are
    // picked up by the running gallery.
    let mut other = Gallery::open_existing(&path, &GalleryConfig::default()).unwrap();
    assert_eq!(other.identities().count(), 1);
    other.rename("carol", "caroline").unwrap();
    let m = gallery.observe(&view(9, 0.0, 1), "cam0", 50).unwrap();
    assert_eq!(m.name.as_deref(), Some("caroline"));
}

#[test]
fn bad_embeddings_are_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut gallery = Gallery::open(&dir.path().join("g.sqlite"), &model(), &config()).unwrap();
    let mut nan = view(0, 0.0, 0);
    nan[3] = f32::NAN;
    assert!(matches!(
        gallery.observe(&nan, "cam0", 0),
        Err(GalleryError::NonFinite)
    ));
    assert!(matches!(
        gallery.observe(&[1.0; 3], "cam0", 0),
        Err(GalleryError::Dimension { .. })
    ));
    assert_eq!(gallery.exemplar_count(), 0);
}

#[test]
fn a_gallery_of_another_model_or_a_foreign_or_damaged_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sqlite");
    {
        let mut gallery = Gallery::open(&path, &model(), &config()).unwrap();
        for person in 0..DIM {
            gallery.observe(&view(person, 0.0, 0), "cam0", 0).unwrap();
        }
    }
    let other = ModelStamp {
        name: "other".into(),
        dim: DIM,
    };
    let err = Gallery::open(&path, &other, &config()).err().unwrap();
    assert!(
        err.to_string().contains("\"m\" (16-number embeddings)"),
        "{err}"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, but long enough to look like a header .....",
    )
    .unwrap();
    let err = Gallery::open(&text, &model(), &config()).err().unwrap();
    assert!(matches!(err, GalleryError::Foreign { .. }), "{err}");
    assert!(std::fs::read_to_string(&text)
        .unwrap()
        .starts_with("not a database"));

    let foreign = dir.path().join("foreign.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = Gallery::open(&foreign, &model(), &config()).err().unwrap();
    assert!(matches!(err, GalleryError::Foreign { .. }), "{err}");

    // A torn copy (the first half of the file): refused, never replaced.
    let torn = dir.path().join("torn.sqlite");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&torn, &bytes[..bytes.len() / 2]).unwrap();
    let err = Gallery::open(&torn, &model(), &config()).err().unwrap();
    assert!(
        matches!(
            err,
            GalleryError::Corrupt { .. } | GalleryError::Foreign { .. }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&torn).unwrap(), bytes[..bytes.len() / 2]);

    assert!(matches!(
        Gallery::open_existing(&dir.path().join("absent.sqlite"), &GalleryConfig::default()),
        Err(GalleryError::Missing { .. })
    ));
}

/// Hands every message of `from`'s fleet state to `to`, as JSON (as the broker carries it:
/// the exemplars as f16s).
fn exchange(from: &Gallery, to: &mut Gallery) -> Vec<fleet_merge::Applied> {
    from.fleet_state()
        .iter()
        .map(|m| serde_json::from_str(&serde_json::to_string(m).unwrap()).unwrap())
        .map(|m| to.apply_remote(from.device(), &m).unwrap())
        .collect()
}

/// Board `name`'s gallery in `dir`, its identities confirmed at their first frame.
fn fleet_board(dir: &std::path::Path, name: &str) -> Gallery {
    let config = GalleryConfig {
        confirm_frames: 1,
        ..config()
    };
    let mut g = Gallery::open(&dir.join(format!("{name}.sqlite")), &model(), &config).unwrap();
    g.set_device(name);
    g
}

/// The id `g` gives a view of `person` (noise, seed) seen at `t`.
fn id_seen(g: &mut Gallery, person: usize, noise: f32, seed: u32, t: i64) -> String {
    g.observe(&view(person, noise, seed), "cam0", t)
        .unwrap()
        .identity
}

/// The sorted ids a gallery holds.
fn ids(g: &Gallery) -> Vec<String> {
    let mut v: Vec<String> = g.identities().map(Identity::id).collect();
    v.sort();
    v
}

/// Sorted.
fn set(ids: &std::collections::HashSet<String>) -> Vec<&str> {
    let mut v: Vec<&str> = ids.iter().map(String::as_str).collect();
    v.sort();
    v
}

/// Each board matches on the views it holds, so two boards can judge the same pair of ids
/// differently. A board that sees another's id as one of its own, older, says the merge, and
/// every board follows it whatever its own views say, in whatever order the messages come;
/// each id is then spoken for by one board only.
#[test]
fn a_merge_one_board_sees_is_followed_by_every_board() {
    let dir = tempfile::tempdir().unwrap();
    let board = |name: &str| fleet_board(dir.path(), name);
    let (mut door, mut hall, mut yard, mut gate) =
        (board("door"), board("hall"), board("yard"), board("gate"));
    let older = id_seen(&mut door, 0, 0.05, 0, 1_000);
    let newer = id_seen(&mut hall, 0, 0.05, 1, 2_000);
    // The yard heard of the hall's id before the door said anything.
    exchange(&hall, &mut yard);
    assert_eq!(ids(&yard), [newer.as_str()]);

    // The door hears the hall's id: its own is older, so it merges the hall's into it.
    assert_eq!(
        exchange(&hall, &mut door),
        [fleet_merge::Applied::Merged {
            gone: newer.clone(),
            into: older.clone()
        }]
    );
    let said = door.fleet_state();
    let tombstone = said.iter().find(|m| m.id == newer).unwrap();
    assert!(tombstone.removed);
    assert_eq!(tombstone.merged_into.as_deref(), Some(older.as_str()));
    assert_eq!(tombstone.into_origin.as_deref(), Some("door"));
    assert_eq!(tombstone.into_created_ms, Some(1_000));

    // The yard hears only the tombstone (whatever its views say): its copy takes the older
    // id with the door's origin and time, and it speaks for neither id.
    let applied = yard.apply_remote("door", tombstone).unwrap();
    assert_eq!(
        applied,
        fleet_merge::Applied::Relabelled {
            from: newer.clone(),
            to: older.clone()
        }
    );
    let held = yard.identities().next().unwrap().clone();
    assert_eq!((held.origin.as_str(), held.created_ms), ("door", 1_000));
    assert!(yard.fleet_ids().is_empty(), "{:?}", yard.fleet_ids());

    // The gate hears the tombstone before the id it names: the hall's message, heard after
    // it, does not bring the merged id back.
    assert_eq!(
        gate.apply_remote("door", tombstone).unwrap(),
        fleet_merge::Applied::Ignored("not here")
    );
    exchange(&hall, &mut gate);
    exchange(&door, &mut gate);
    assert_eq!(ids(&gate), [older.as_str()]);

    // The hall hears the door: its own id becomes the older one.
    exchange(&door, &mut hall);
    for g in [&door, &hall, &yard, &gate] {
        assert_eq!(ids(g), [older.as_str()], "{}", g.device());
    }
    // One board speaks for each id: the door for its identity and for the merge. The hall
    // made the same merge from its side and said it too, until it heard the door's: the
    // board whose name sorts first keeps it.
    assert_eq!(set(&door.fleet_ids()), [older.as_str(), newer.as_str()]);
    assert!(hall.fleet_ids().is_empty(), "{:?}", hall.fleet_ids());
    assert!(gate.fleet_ids().is_empty());
    // A rename moves the speaking to the renaming board; the door yields when it hears it.
    hall.rename(&older, "alice").unwrap();
    assert_eq!(set(&hall.fleet_ids()), [older.as_str()]);
    exchange(&hall, &mut door);
    assert_eq!(set(&door.fleet_ids()), [newer.as_str()]);
}

/// An identity that once took in a view of someone else (a match at the threshold) is not
/// joined with that person's identity from another board: the match must hold both ways, or
/// the join, said to the fleet, would make two people one everywhere.
#[test]
fn a_fleet_join_needs_the_match_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (mut door, mut hall) = (
        fleet_board(dir.path(), "door"),
        fleet_board(dir.path(), "hall"),
    );
    let alice = id_seen(&mut door, 0, 0.05, 0, 1_000);
    let key = door.find(&alice).unwrap();
    let (a1, a2, bob) = (view(0, 0.3, 1), view(0, 0.3, 2), view(1, 0.05, 3));
    door.add_exemplars(key, &[&a1, &a2, &bob], 1_100).unwrap();
    let bob_at_hall = id_seen(&mut hall, 1, 0.05, 4, 2_000);
    assert_eq!(
        exchange(&hall, &mut door),
        [fleet_merge::Applied::Added(bob_at_hall.clone())]
    );
    assert_eq!(ids(&door), [alice.as_str(), bob_at_hall.as_str()]);
    // Alice herself, seen at the hall, is joined.
    let mut yard = fleet_board(dir.path(), "yard");
    yard.observe(&view(0, 0.05, 5), "cam0", 3_000).unwrap();
    let applied = exchange(&yard, &mut door);
    assert!(
        matches!(&applied[..], [fleet_merge::Applied::Merged { into, .. }] if *into == alice),
        "{applied:?}"
    );
}

/// A merge heard from the fleet follows the merges known here: A into B, then B into C, is
/// A into C; into a forgotten one, forgotten.
#[test]
fn merges_heard_follow_chains_of_merges() {
    let dir = tempfile::tempdir().unwrap();
    let board = |name: &str| fleet_board(dir.path(), name);
    let (mut a, mut b, mut c, mut here) = (board("a"), board("b"), board("c"), board("here"));
    let (c0, b0, a0) = (
        id_seen(&mut c, 0, 0.05, 0, 1_000),
        id_seen(&mut b, 0, 0.05, 0, 2_000),
        id_seen(&mut a, 0, 0.05, 0, 3_000),
    );
    let (c1, a1) = (
        id_seen(&mut c, 1, 0.05, 0, 1_000),
        id_seen(&mut a, 1, 0.05, 0, 3_000),
    );
    exchange(&a, &mut here);
    assert_eq!(ids(&here), [a0.as_str(), a1.as_str()]);
    // a0 merged into b0 at a, then b0 into c0 at b; heard here the other way round.
    exchange(&b, &mut a);
    let a_says = a.fleet_state();
    exchange(&c, &mut b);
    let b_says = b.fleet_state();
    here.apply_remote("b", b_says.iter().find(|m| m.id == b0).unwrap())
        .unwrap();
    assert_eq!(
        here.apply_remote("a", a_says.iter().find(|m| m.id == a0).unwrap())
            .unwrap(),
        fleet_merge::Applied::Relabelled {
            from: a0.clone(),
            to: c0.clone()
        }
    );
    // c1 forgotten at c, then a1 merged into it at a: forgotten here.
    exchange(&c, &mut a);
    c.forget(&c1).unwrap();
    here.apply_remote("c", c.fleet_state().iter().find(|m| m.id == c1).unwrap())
        .unwrap();
    let a_says = a.fleet_state();
    assert_eq!(
        here.apply_remote("a", a_says.iter().find(|m| m.id == a1).unwrap())
            .unwrap(),
        fleet_merge::Applied::Removed(a1.clone())
    );
    assert_eq!(ids(&here), [c0.as_str()]);
}

/// A tombstone is kept `[gallery] tombstone_days`, then dropped (from the file, and from the
/// ids the board speaks of, so that the fleet sync clears its retained message); 0 keeps it.
#[test]
fn tombstones_expire_after_their_days() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000i64;
    // A forget is stamped with the wall clock; the observations follow from there.
    let t0 = now_ms();
    for (days, kept) in [(2u64, false), (0, true)] {
        let config = GalleryConfig {
            confirm_frames: 1,
            tombstone_days: days,
            expire_after_h: 0,
            ..config()
        };
        let path = dir.path().join(format!("g{days}.sqlite"));
        let mut g = Gallery::open(&path, &model(), &config).unwrap();
        g.set_device("door");
        let gone = g.observe(&view(0, 0.05, 0), "cam0", t0).unwrap().identity;
        let stays = g.observe(&view(3, 0.05, 0), "cam0", t0).unwrap().identity;
        g.forget(&gone).unwrap();
        assert!(g.fleet_ids().contains(&gone), "the tombstone is said");
        g.observe(&view(3, 0.05, 1), "cam0", t0 + day).unwrap();
        assert!(g.fleet_ids().contains(&gone), "a day later: still said");
        // Three days after the forget.
        g.observe(&view(3, 0.05, 2), "cam0", t0 + 3 * day).unwrap();
        assert_eq!(g.fleet_ids().contains(&gone), kept, "tombstone_days {days}");
        assert!(g.fleet_ids().contains(&stays));
        let reopened = Gallery::open(&path, &model(), &config).unwrap();
        assert_eq!(reopened.tombstones.contains_key(&gone), kept);
    }
}

#[test]
fn two_boards_agree_on_ids_renames_and_forgets_through_their_messages() {
    let dir = tempfile::tempdir().unwrap();
    let board = |name: &str| fleet_board(dir.path(), name);
    let (mut door, mut hall) = (board("door"), board("hall"));
    // Both boards mint the same person before hearing of each other; door first.
    let at_door = door.observe(&view(0, 0.05, 0), "cam0", 1_000).unwrap();
    let at_hall = hall.observe(&view(0, 0.05, 1), "cam0", 2_000).unwrap();
    assert_eq!(at_door.identity, "id-door-000001");
    assert_eq!(at_hall.identity, "id-hall-000001");
    // Someone only the door has seen.
    let only = door.observe(&view(6, 0.05, 0), "cam0", 3_000).unwrap();

    // The hall hears the door: the older id wins, the other person is learnt.
    let applied = exchange(&door, &mut hall);
    assert!(applied.contains(&fleet_merge::Applied::Relabelled {
        from: "id-hall-000001".into(),
        to: "id-door-000001".into()
    }));
    assert!(applied.contains(&fleet_merge::Applied::Added(only.identity.clone())));
    // The door hears the hall: nothing of its own changes.
    exchange(&hall, &mut door);
    assert_eq!(ids(&door), ids(&hall));
    assert_eq!(ids(&door), ["id-door-000001", "id-door-000002"]);
    // Either board now calls either person by the same id.
    let seen = hall.observe(&view(6, 0.05, 7), "cam1", 4_000).unwrap();
    assert_eq!(seen.identity, only.identity);
    assert!(!seen.new);

    // A rename at the hall reaches the door; a forget at the door reaches the hall.
    hall.rename("id-door-000001", "alice").unwrap();
    assert!(exchange(&hall, &mut door)
        .contains(&fleet_merge::Applied::Renamed("id-door-000001".into())));
    assert_eq!(
        door.observe(&view(0, 0.05, 9), "cam0", 5_000)
            .unwrap()
            .name
            .as_deref(),
        Some("alice")
    );
    door.forget(&only.identity).unwrap();
    assert!(
        exchange(&door, &mut hall).contains(&fleet_merge::Applied::Removed(only.identity.clone()))
    );
    assert_eq!(ids(&hall), ["id-door-000001"]);
    // A board ignores its own messages and other models'.
    let own = door.fleet_state();
    assert!(matches!(
        door.apply_remote("door", &own[0]).unwrap(),
        fleet_merge::Applied::Ignored(_)
    ));
    let mut foreign = own[0].clone();
    foreign.model = "other".into();
    assert!(matches!(
        hall.apply_remote("door", &foreign).unwrap(),
        fleet_merge::Applied::Ignored(_)
    ));
}

/// Thumbnails: at most `[gallery] thumbnails` per identity, the best kept, made only when
/// kept; they follow a merge and go with a forget; a version 1 file gains their table.
#[test]
fn thumbnails_keep_the_best_few_and_follow_merges_and_forgets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sqlite");
    let config = GalleryConfig {
        thumbnails: 2,
        ..config()
    };
    let mut gallery = Gallery::open(&path, &model(), &config).unwrap();
    let a = id_seen(&mut gallery, 0, 0.1, 0, 1000);
    let b = id_seen(&mut gallery, 5, 0.1, 1, 1000);
    let mut made = 0;
    for (quality, byte) in [(10.0, 1u8), (30.0, 3), (20.0, 2), (5.0, 9)] {
        let kept = gallery
            .offer_thumbnail(&a, quality, "cam0", 1000, || {
                made += 1;
                Some(vec![byte])
            })
            .unwrap();
        assert_eq!(kept, quality > 5.0, "quality {quality}");
    }
    assert_eq!(made, 3, "the worst crop was not even encoded");
    let kept: Vec<u8> = (gallery.thumbnails(&a).unwrap().iter())
        .map(|t| t.jpeg[0])
        .collect();
    assert_eq!(kept, [3, 2], "the two best, best first");
    gallery
        .offer_thumbnail(&b, 50.0, "cam1", 1000, || Some(vec![7]))
        .unwrap();
    let kept_id = gallery.merge(&a, &b).unwrap();
    let merged: Vec<u8> = (gallery.thumbnails(&kept_id).unwrap().iter())
        .map(|t| t.jpeg[0])
        .collect();
    assert_eq!(merged, [7, 3], "the best two of both");
    gallery.forget(&kept_id).unwrap();
    let left: i64 = gallery
        .store
        .connection
        .query_row("SELECT count(*) FROM thumbnail", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    let none = GalleryConfig {
        thumbnails: 0,
        ..config.clone()
    };
    let mut off = Gallery::open(&dir.path().join("off.sqlite"), &model(), &none).unwrap();
    let c = id_seen(&mut off, 0, 0.1, 0, 1000);
    assert!(!off
        .offer_thumbnail(&c, 99.0, "cam0", 1000, || Some(vec![1]))
        .unwrap());
    // A gallery written before thumbnails existed (schema version 1).
    drop(gallery);
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch("DROP TABLE thumbnail; PRAGMA user_version = 1;")
        .unwrap();
    drop(old);
    let mut reopened = Gallery::open(&path, &model(), &config).unwrap();
    let d = id_seen(&mut reopened, 3, 0.1, 0, 2000);
    assert!(reopened
        .offer_thumbnail(&d, 9.0, "cam0", 2000, || Some(vec![4]))
        .unwrap());
}

/// Thumbnails cross to another board only when both have `fleet_thumbnails` on: the sender
/// to send them, the receiver to keep them.
#[test]
fn thumbnails_travel_only_when_both_boards_allow_it() {
    let dir = tempfile::tempdir().unwrap();
    let board = |name: &str, share: bool| {
        let config = GalleryConfig {
            confirm_frames: 1,
            fleet_thumbnails: share,
            ..config()
        };
        let mut g = Gallery::open(
            &dir.path().join(format!("{name}.sqlite")),
            &model(),
            &config,
        )
        .unwrap();
        g.set_device(name);
        g
    };
    let kept = |g: &Gallery, id: &str| g.thumbnails(id).map(|t| t.len()).unwrap_or(0);
    for (send, take, travels) in [
        (true, true, true),
        (false, true, false),
        (true, false, false),
    ] {
        let mut a = board(&format!("a{send}{take}"), send);
        let mut b = board(&format!("b{send}{take}"), take);
        let id = id_seen(&mut a, 0, 0.1, 0, 1000);
        a.offer_thumbnail(&id, 40.0, "cam0", 1000, || Some(vec![0xff, 0xd8, 1]))
            .unwrap();
        let message = &a.fleet_state()[0];
        assert_eq!(message.thumbnails.len(), usize::from(send), "sent: {send}");
        exchange(&a, &mut b);
        assert_eq!(kept(&b, &id) == 1, travels, "send {send}, take {take}");
        if travels {
            let got = &b.thumbnails(&id).unwrap()[0];
            assert_eq!(
                (got.jpeg.as_slice(), got.quality),
                (&[0xff, 0xd8, 1][..], 40.0)
            );
            assert_eq!(got.camera, format!("fleet:a{send}{take}"));
        }
    }
}

/// One identity as [`snapshot`] sees it: id, name, hits, its exemplars' bits in order.
type Held = (String, Option<String>, i64, Vec<Vec<u32>>);

/// What a gallery holds, in an order that does not depend on how it was read.
fn snapshot(g: &Gallery) -> Vec<Held> {
    let mut out: Vec<_> = g
        .identities()
        .map(|i| {
            let mut exemplars: Vec<Vec<u32>> = g
                .exemplars(&i.id())
                .unwrap()
                .iter()
                .map(|e| e.iter().map(|v| v.to_bits()).collect())
                .collect();
            exemplars.sort();
            (i.id(), i.name.clone(), i.hits, exemplars)
        })
        .collect();
    out.sort();
    out
}

/// A refresh after another connection's writes (new identities and exemplars, exemplars pruned
/// past the limit, a merge, a forget, a rename) holds exactly what a fresh open reads, and reads
/// only the embeddings it lacked.
#[test]
fn a_refresh_reads_only_new_exemplars_and_equals_a_fresh_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sqlite");
    let config = GalleryConfig {
        confirm_frames: 1,
        max_exemplars: 3,
        novelty: Some(0.999),
        ..config()
    };
    let mut reader = Gallery::open(&path, &model(), &config).unwrap();
    let mut writer = Gallery::open(&path, &model(), &config).unwrap();
    let mut now = 1000;
    let mut see = |g: &mut Gallery, person: usize, seed: u32| {
        now += 100;
        g.observe(&view(person, 0.15, seed), "cam0", now)
            .unwrap()
            .identity
    };
    for person in 0..4 {
        for seed in 0..6 {
            see(&mut writer, person, seed);
        }
    }
    assert!(reader.refresh().unwrap());
    assert_eq!(snapshot(&reader), snapshot(&writer));
    assert_eq!(reader.exemplar_count(), writer.exemplar_count());
    // More views of one person replace its most redundant exemplars (rows deleted, new rows
    // added); then a merge, a forget and a rename.
    for seed in 10..16 {
        see(&mut writer, 1, seed);
    }
    let survivor = writer.merge("id-000003", "id-000004").unwrap();
    writer.forget("id-000002").unwrap();
    writer.rename("id-000001", "alice").unwrap();
    assert!(reader.refresh().unwrap());
    let fresh = Gallery::open(&path, &model(), &config).unwrap();
    assert_eq!(snapshot(&reader), snapshot(&fresh));
    assert_eq!(reader.exemplar_count(), fresh.exemplar_count());
    assert!(!reader.refresh().unwrap(), "nothing changed since");
    // The reader still matches as the file says: the merged person is one identity.
    let hit = reader.index.best(&view(2, 0.15, 99)).unwrap();
    assert_eq!(hit.identity, reader.find(&survivor).unwrap());
}

/// Exemplar ids are never reused (schema 3): the newest exemplar deleted and another stored
/// gets a new id, so a reader that has the old id reads the new embedding. A version 2 file is
/// brought up to date with its exemplars.
#[test]
fn exemplar_ids_are_never_reused_even_in_an_upgraded_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, mut gallery) = confirmed_at_once(dir.path());
    gallery.observe(&view(0, 0.1, 0), "cam0", 1000).unwrap();
    gallery.observe(&view(5, 0.1, 0), "cam0", 1100).unwrap();
    let before = snapshot(&gallery);
    drop(gallery);
    // Make it a version 2 file: exemplar ids without AUTOINCREMENT.
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE e2 (id INTEGER PRIMARY KEY, identity INTEGER NOT NULL REFERENCES identity(id) ON DELETE CASCADE, embedding BLOB NOT NULL, camera TEXT NOT NULL, ts_ms INTEGER NOT NULL);
         INSERT INTO e2 SELECT * FROM exemplar; DROP TABLE exemplar; ALTER TABLE e2 RENAME TO exemplar;
         CREATE INDEX exemplar_identity ON exemplar(identity); PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(old);
    let mut reader = Gallery::open(&path, &model(), &config).unwrap();
    assert_eq!(
        snapshot(&reader),
        before,
        "the upgrade keeps every exemplar"
    );
    let writer = Gallery::open(&path, &model(), &config).unwrap();
    let newest: i64 = writer
        .store
        .connection
        .query_row("SELECT max(id) FROM exemplar", [], |r| r.get(0))
        .unwrap();
    let key = writer.find("id-000002").unwrap();
    let sql = &writer.store.connection;
    sql.execute("DELETE FROM exemplar WHERE id = ?1", [newest])
        .unwrap();
    sql.execute(
        "INSERT INTO exemplar (identity, embedding, camera, ts_ms) VALUES (?1, ?2, 'cam0', 1200)",
        rusqlite::params![key, super::index::to_blob(&view(7, 0.0, 0))],
    )
    .unwrap();
    let fresh = sql.last_insert_rowid();
    assert!(fresh > newest, "id {fresh} after {newest}");
    assert!(reader.refresh().unwrap());
    let reopened = Gallery::open(&path, &model(), &config).unwrap();
    assert_eq!(snapshot(&reader), snapshot(&reopened));
}

/// The fleet's publisher builds only the messages whose content changed since it published:
/// nothing when nothing changed, one identity after its rename or a new exemplar, a tombstone
/// after a forget; and what it builds equals the whole state's message for that id.
#[test]
fn only_changed_identities_are_built_for_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let config = GalleryConfig {
        confirm_frames: 1,
        novelty: Some(0.999),
        ..config()
    };
    let mut g = Gallery::open(&dir.path().join("g.sqlite"), &model(), &config).unwrap();
    g.set_device("a");
    for person in 0..5 {
        g.observe(&view(person, 0.1, 0), "cam0", 1000).unwrap();
    }
    let mut published = std::collections::HashMap::new();
    let publish = |g: &Gallery, published: &mut std::collections::HashMap<String, u64>| {
        let changed = g.fleet_changes(published);
        for (message, print) in &changed {
            published.insert(message.id.clone(), *print);
        }
        let mut ids: Vec<String> = changed.into_iter().map(|(m, _)| m.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(publish(&g, &mut published).len(), 5);
    assert!(publish(&g, &mut published).is_empty(), "nothing changed");
    g.rename("id-a-000002", "bob").unwrap();
    assert_eq!(publish(&g, &mut published), ["id-a-000002"]);
    g.observe(&view(3, 0.1, 7), "cam1", 2000).unwrap();
    assert_eq!(
        publish(&g, &mut published),
        ["id-a-000004"],
        "a new exemplar"
    );
    let whole = g.fleet_state();
    let built = g.fleet_changes(&std::collections::HashMap::new());
    assert_eq!(whole, built.into_iter().map(|(m, _)| m).collect::<Vec<_>>());
    g.forget("id-a-000005").unwrap();
    assert_eq!(publish(&g, &mut published), ["id-a-000005"]);
    let tombstone = g
        .fleet_state()
        .into_iter()
        .find(|m| m.id == "id-a-000005")
        .unwrap();
    assert!(tombstone.removed);
}
