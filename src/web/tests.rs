//! The routes, straight from requests to answers: pages, the API, the guards.

use super::*;
use crate::frame::{Frame, FrameMeta, PixelFormat};
use crate::gallery::{Gallery, GalleryConfig, ModelStamp};
use crate::pipeline::Health;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A gallery with one named person (thumbnail kept) and one unnamed identity.
fn gallery(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("gallery.sqlite");
    let stamp = ModelStamp {
        name: "m".into(),
        dim: 4,
    };
    let mut gallery = Gallery::open(&path, &stamp, &GalleryConfig::default()).unwrap();
    gallery
        .enroll("Grace", &[vec![1.0, 0.0, 0.0, 0.0]], 1_000)
        .unwrap();
    let stranger = gallery
        .observe(&[0.0, 1.0, 0.0, 0.0], "door", 2_000)
        .unwrap();
    assert_eq!(stranger.identity, "id-000002");
    let jpeg = crate::preprocess::thumbnail::jpeg(
        &crate::preprocess::Raster {
            width: 8,
            height: 8,
            channels: 3,
            data: vec![200; 8 * 8 * 3],
        },
        96,
        80,
    );
    assert!(gallery
        .offer_thumbnail("id-000002", 8.0, "door", 2_000, || jpeg)
        .unwrap());
    path
}

fn classes(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("classes.json");
    let mut examples = crate::interpret::ClassExamples::new("m", 4);
    examples
        .classes
        .insert("sparrow".into(), vec![vec![1.0, 0.0, 0.0, 0.0]; 3]);
    examples.save(&path).unwrap();
    path
}

fn site(dir: &Path, password: Option<&str>, read_only: bool) -> Site {
    Site {
        live: Arc::new(LiveView::new(&["door"])),
        health: Arc::new(Health::new()),
        about: About {
            model: "face-descriptor".into(),
            task: "reid".into(),
            backend: "tract".into(),
            selftest: None,
            started: now_rfc3339(),
        },
        gallery: Some(GalleryAccess::new(gallery(dir), None)),
        classes: Some(classes(dir)),
        read_only,
        credentials: password.map(Credentials::new),
        snapshot_wait: Duration::from_millis(300),
        pages: Pages::new(),
    }
}

fn text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

fn post(path: &str, content_type: &str, body: &str) -> Request {
    Request {
        method: Method::Post,
        content_type: Some(content_type.into()),
        body: body.as_bytes().to_vec(),
        host: Some("127.0.0.1:8090".into()),
        ..Request::get(path)
    }
}

#[test]
fn every_page_renders_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path(), None, false);
    let live = site.handle(&Request::get("/"));
    assert_eq!(live.status, 200, "{}", text(&live));
    assert!(text(&live).contains("/api/cameras/door/snapshot.jpg"));
    let gallery = site.handle(&Request::get("/gallery"));
    let page = text(&gallery);
    assert_eq!(gallery.status, 200, "{page}");
    assert!(
        page.contains("Grace") && page.contains("id-000002"),
        "{page}"
    );
    assert!(
        page.contains("/api/gallery/id-000002/thumbnails/1.jpg"),
        "{page}"
    );
    assert!(
        page.contains("action=\"/api/gallery/id-000002/rename\""),
        "{page}"
    );
    let classes = text(&site.handle(&Request::get("/classes")));
    assert!(
        classes.contains("sparrow") && classes.contains(">3<"),
        "{classes}"
    );
    let health = text(&site.handle(&Request::get("/health")));
    assert!(
        health.contains("face-descriptor") && health.contains("tract"),
        "{health}"
    );
    for (path, kind) in [
        ("/assets/style.css", "text/css"),
        ("/assets/live.js", "text/javascript"),
        ("/api/gallery/id-000002/thumbnails/1.jpg", "image/jpeg"),
        ("/api/gallery", "application/json"),
        ("/api/classes", "application/json"),
        ("/api/health", "application/json"),
        ("/api/cameras", "application/json"),
    ] {
        let answer = site.handle(&Request::get(path));
        assert_eq!(answer.status, 200, "{path}: {}", text(&answer));
        assert!(answer.content_type.starts_with(kind), "{path}");
        assert!(answer
            .headers
            .iter()
            .any(|(name, value)| *name == "Content-Security-Policy"
                && value.contains("default-src 'self'")));
    }
    let listed: serde_json::Value =
        serde_json::from_slice(&site.handle(&Request::get("/api/gallery")).body).unwrap();
    assert_eq!(listed[0]["name"], "Grace", "named first: {listed}");
    assert_eq!(listed[1]["thumbnails"], 1);
    assert_eq!(listed[1]["sightings"][0]["camera"], "door");
}

#[test]
fn without_the_password_nothing_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path(), Some("s3cret"), false);
    for path in [
        "/",
        "/gallery",
        "/api/gallery",
        "/assets/style.css",
        "/nowhere",
    ] {
        let refused = site.handle(&Request::get(path));
        assert_eq!(refused.status, 401, "{path}");
        assert!(refused
            .headers
            .iter()
            .any(|(name, value)| *name == "WWW-Authenticate" && value.starts_with("Basic")));
        assert!(!text(&refused).contains("Grace"));
    }
    use base64::Engine;
    let with = |credentials: &str| Request {
        authorization: Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )),
        ..Request::get("/api/gallery")
    };
    assert_eq!(site.handle(&with("edgevit:wrong")).status, 401);
    assert_eq!(site.handle(&with("edgevit:s3cret")).status, 200);
}

#[test]
fn paths_that_climb_out_or_are_unknown_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path(), None, false);
    for (path, status) in [
        ("/assets/../../etc/passwd", 400),
        ("/assets/%2e%2e/%2e%2e/etc/passwd", 400),
        ("/assets/..%2f..%2fetc%2fpasswd", 400),
        ("/api/gallery/..%2F..%2Fetc%2Fpasswd/thumbnails/1.jpg", 400),
        ("/api/gallery/%00/thumbnails/1.jpg", 400),
        ("/assets/passwd", 404),
        ("/api/gallery/id-000002/thumbnails/0.jpg", 404),
        ("/api/gallery/id-000002/thumbnails/2.jpg", 404),
        ("/api/gallery/id-000002/thumbnails/x.png", 404),
        ("/api/gallery/nobody", 404),
        ("/api/cameras/yard/snapshot.jpg", 404),
        ("/etc/passwd", 404),
    ] {
        let answer = site.handle(&Request::get(path));
        assert_eq!(answer.status, status, "{path}: {}", text(&answer));
        assert!(!text(&answer).contains("root:"));
    }
    let other = Request {
        method: Method::Other,
        ..Request::get("/gallery")
    };
    assert_eq!(site.handle(&other).status, 405);
    assert_eq!(site.handle(&post("/gallery", "text/plain", "")).status, 405);
}

#[test]
fn rename_merge_and_forget_through_the_api_and_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path(), None, false);
    let json = "application/json";
    let renamed = site.handle(&post(
        "/api/gallery/id-000002/rename",
        json,
        r#"{"name": "Eileen"}"#,
    ));
    assert_eq!(renamed.status, 200, "{}", text(&renamed));
    let taken = site.handle(&post(
        "/api/gallery/id-000002/rename",
        json,
        r#"{"name": "Grace"}"#,
    ));
    assert_eq!(taken.status, 409, "{}", text(&taken));
    assert!(text(&taken).contains("already"), "{}", text(&taken));
    let missing = site.handle(&post("/api/gallery/id-000009/forget", json, "{}"));
    assert_eq!(missing.status, 404);
    let empty = site.handle(&post("/api/gallery/id-000002/rename", json, "{}"));
    assert_eq!(empty.status, 409, "{}", text(&empty));
    // A form: a redirect to the gallery, which says what was done.
    let form = "application/x-www-form-urlencoded";
    let mut from_page = post(
        "/api/gallery/Eileen/rename",
        form,
        "name=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    );
    from_page.origin = Some("http://127.0.0.1:8090".into());
    let answer = site.handle(&from_page);
    assert_eq!(answer.status, 303, "{}", text(&answer));
    let location = &answer
        .headers
        .iter()
        .find(|(n, _)| *n == "Location")
        .unwrap()
        .1;
    // The browser keeps the fragment to itself.
    let location = location.split('#').next().unwrap();
    let shown = text(&site.handle(&Request::get(location)));
    assert!(shown.contains("done: id-000002 renamed"), "{shown}");
    assert!(
        shown.contains("&lt;script&gt;alert(1)") && !shown.contains("<script>alert"),
        "a name is shown as text: {shown}"
    );
    let both_named = site.handle(&post(
        "/api/gallery/Grace/merge",
        json,
        r#"{"with": "id-000002"}"#,
    ));
    assert_eq!(both_named.status, 409, "{}", text(&both_named));
    assert!(text(&both_named).contains("rename one of them first"));
    // A third look at Grace, not recognised: merged into her.
    let path = site.gallery.as_ref().unwrap().path().to_path_buf();
    let mut gallery = Gallery::open_existing(&path, &GalleryConfig::default()).unwrap();
    let again = gallery
        .observe(&[0.0, 0.0, 1.0, 0.0], "yard", 3_000)
        .unwrap();
    assert_eq!(again.identity, "id-000003");
    let merged = site.handle(&post(
        "/api/gallery/Grace/merge",
        json,
        r#"{"with": "id-000003"}"#,
    ));
    assert_eq!(merged.status, 200, "{}", text(&merged));
    let listed: serde_json::Value =
        serde_json::from_slice(&site.handle(&Request::get("/api/gallery")).body).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[0]["exemplars"], 2, "{listed}");
    assert_eq!(listed[0]["sightings"][1]["camera"], "yard", "{listed}");
    let forgotten = site.handle(&post("/api/gallery/Grace/forget", form, ""));
    assert_eq!(forgotten.status, 303);
    let forgotten = site.handle(&post("/api/gallery/id-000002/forget", json, ""));
    assert_eq!(forgotten.status, 200, "{}", text(&forgotten));
    let listed: serde_json::Value =
        serde_json::from_slice(&site.handle(&Request::get("/api/gallery")).body).unwrap();
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn read_only_and_other_sites_cannot_change_anything() {
    let dir = tempfile::tempdir().unwrap();
    let locked = site(dir.path(), None, true);
    let body = r#"{"name": "Mallory"}"#;
    let refused = locked.handle(&post(
        "/api/gallery/id-000002/rename",
        "application/json",
        body,
    ));
    assert_eq!(refused.status, 403);
    assert!(text(&refused).contains("read-only"));
    assert!(!text(&locked.handle(&Request::get("/gallery"))).contains("<form"));
    let other = tempfile::tempdir().unwrap();
    let open = site(other.path(), None, false);
    let mut forged = post(
        "/api/gallery/id-000002/rename",
        "application/x-www-form-urlencoded",
        "name=Mallory",
    );
    forged.origin = Some("http://evil.example".into());
    assert_eq!(open.handle(&forged).status, 403);
    for site in [&locked, &open] {
        let listed = text(&site.handle(&Request::get("/api/gallery")));
        assert!(!listed.contains("Mallory"), "{listed}");
    }
}

fn frame(seq: u64) -> Frame {
    Frame {
        meta: FrameMeta {
            seq,
            captured_at: SystemTime::now(),
            source: "test".into(),
            camera: "door".into(),
            camera_index: 0,
            path: None,
            width: 64,
            height: 48,
            format: PixelFormat::Rgb24,
        },
        data: vec![90; 64 * 48 * 3],
    }
}

#[test]
fn a_snapshot_waits_for_the_next_frame_and_the_loop_copies_only_when_asked() {
    let live = Arc::new(LiveView::new(&["door"]));
    live.offer(&frame(0));
    match live.snapshot("door", Duration::from_millis(50)) {
        Err(SnapshotError::NoFrame(camera)) => assert_eq!(camera, "door"),
        other => panic!("nothing was asked before frame 0: {other:?}"),
    }
    let loop_side = {
        let live = Arc::clone(&live);
        std::thread::spawn(move || {
            for seq in 1..40 {
                live.offer(&frame(seq));
                live.records("door", seq, &[]);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let jpeg = live.snapshot("door", Duration::from_secs(5)).unwrap();
    let picture = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((picture.width(), picture.height()), (64, 48));
    loop_side.join().unwrap();
    assert!(matches!(
        live.snapshot("yard", Duration::ZERO),
        Err(SnapshotError::UnknownCamera(_))
    ));
    let cameras = live.cameras();
    assert_eq!(cameras[0].frames, 39);
    assert!(cameras[0].fps.is_some_and(|fps| fps > 10.0), "{cameras:?}");
}
