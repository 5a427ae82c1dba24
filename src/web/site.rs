//! The page's routes: who may ask (basic auth, same-origin forms, read-only), and what each
//! path answers. No socket here (`server.rs` does the I/O), so that every decision is tested
//! directly.

use super::auth::Credentials;
use super::curate::{self, Change, GalleryAccess};
use super::http::{Method, Request, Response};
use super::live::{LiveView, SnapshotError};
use super::pages::Pages;
use crate::pipeline::Health;
use minijinja::context;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the health page says about the model.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct About {
    pub model: String,
    pub task: String,
    pub backend: String,
    /// The self-test at load: worst difference, on which output, and the tolerance.
    pub selftest: Option<SelfTestSummary>,
    /// RFC 3339.
    pub started: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SelfTestSummary {
    pub worst: f32,
    pub output: String,
    pub tolerance: f32,
}

/// Everything the page reads, and how it may be used.
pub struct Site {
    pub live: Arc<LiveView>,
    pub health: Arc<Health>,
    pub about: About,
    /// The ReID gallery, when the run has one.
    pub gallery: Option<GalleryAccess>,
    /// The classes-by-example file (`[classify] classes`).
    pub classes: Option<PathBuf>,
    pub read_only: bool,
    pub credentials: Option<Credentials>,
    /// How long a snapshot waits for the camera's next frame.
    pub snapshot_wait: Duration,
    pub pages: Pages,
}

/// Headers on every answer: no sniffing, nothing from elsewhere, not in a frame of another
/// site, and nothing cached (the pictures are live and the names change).
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    ),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "same-origin"),
];

impl Site {
    /// The answer to `request`.
    pub fn handle(&self, request: &Request) -> Response {
        let mut response = self.guarded(request);
        for (name, value) in SECURITY_HEADERS {
            response.headers.push((name, value.to_string()));
        }
        response
    }

    fn guarded(&self, request: &Request) -> Response {
        if let Some(credentials) = &self.credentials {
            if !credentials.accept(request.authorization.as_deref()) {
                return Response::error(401, "this page needs the password (user edgevit)")
                    .with_header(
                        "WWW-Authenticate",
                        "Basic realm=\"edgevit\", charset=\"UTF-8\"".into(),
                    );
            }
        }
        let Some(segments) = segments(&request.path) else {
            return Response::error(400, "bad path");
        };
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match request.method {
            Method::Get | Method::Head => self.get(request, &segments),
            Method::Post => self.post(request, &segments),
            Method::Other => Response::error(405, "only GET and POST"),
        }
    }

    fn get(&self, request: &Request, path: &[&str]) -> Response {
        match path {
            [] => self.page("live", context! { cameras => self.live.cameras() }),
            ["gallery"] => self.gallery_page(&request.query, None),
            ["classes"] => self.classes_page(),
            ["health"] => self.page("health", context! { health => self.health_json() }),
            ["assets", name] => match Pages::asset(name) {
                Some((kind, body)) => Response::new(200, kind, body),
                None => Response::error(404, "no such asset"),
            },
            ["api", "cameras"] => Response::json(200, &self.live.cameras()),
            ["api", "cameras", camera, "snapshot.jpg"] => self.snapshot(camera),
            ["api", "gallery"] => {
                self.with_gallery(|g| Ok(Response::json(200, &curate::identities(g)?)))
            }
            ["api", "gallery", who] => {
                self.with_gallery(|g| Ok(Response::json(200, &g.summary(who)?)))
            }
            ["api", "gallery", who, "thumbnails", file] => self.thumbnail(who, file),
            ["api", "classes"] => match self.classes_json() {
                Ok(value) => Response::json(200, &value),
                Err((status, why)) => Response::error(status, &why),
            },
            ["api", "health"] => Response::json(200, &self.health_json()),
            _ => Response::error(404, "no such page"),
        }
    }

    fn post(&self, request: &Request, path: &[&str]) -> Response {
        let ["api", "gallery", who, action] = path else {
            return Response::error(405, "only the gallery's changes are POSTed");
        };
        let Some(change) = Change::parse(action) else {
            return Response::error(404, "no such change: rename, merge or forget");
        };
        if self.read_only {
            return Response::error(403, "the page is read-only (web.read_only)");
        }
        if !same_origin(request) {
            return Response::error(403, "a change must come from this page (Origin differs)");
        }
        let value = match change.field().map(|name| request.field(name)) {
            None => None,
            Some(Ok(value)) => value,
            Some(Err(why)) => return Response::error(400, &why),
        };
        let outcome = match &self.gallery {
            None => Err((404, "this run has no gallery".to_string())),
            Some(gallery) => gallery
                .with(|g| curate::apply(g, change, who, value.as_deref()))
                .map_err(|e| (curate::status_of(&e), crate::error::chain(&e))),
        };
        match (outcome, request.is_json()) {
            (Ok((id, message)), true) => Response::json(
                200,
                &serde_json::json!({ "id": id, "done": action, "message": message }),
            ),
            (Ok((id, _)), false) => {
                Response::see_other(&format!("/gallery?done={action}&id={}", urlencode(&id)))
            }
            (Err((status, why)), true) => Response::error(status, &why),
            (Err((status, why)), false) => {
                let mut page = self.gallery_page("", Some(&why));
                page.status = status;
                page
            }
        }
    }

    fn page(&self, name: &str, extra: minijinja::Value) -> Response {
        self.page_with(name, extra, None)
    }

    fn page_with(&self, name: &str, extra: minijinja::Value, message: Option<&str>) -> Response {
        let context = context! {
            page => name,
            title => name,
            about => &self.about,
            read_only => self.read_only,
            message => message,
            ..extra
        };
        match self.pages.render(name, context) {
            Ok(html) => Response::html(html),
            Err(why) => Response::error(500, &format!("the {name} page failed: {why}")),
        }
    }

    /// The gallery page; `query` may say what was just done (after a form), `error` what
    /// could not be.
    fn gallery_page(&self, query: &str, error: Option<&str>) -> Response {
        let done: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let value = |key: &str| done.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        // Only the page's own words: the query names the change and the id, nothing more.
        let message = error.map(str::to_string).or_else(|| {
            let change = Change::parse(&value("done")?)?;
            Some(format!("done: {}", change.done_to(&value("id")?)))
        });
        let Some(gallery) = &self.gallery else {
            return self.page_with("gallery", context! { gallery => false }, message.as_deref());
        };
        let path = gallery.path();
        let listed = gallery.with(|g| curate::identities(g));
        let extra = match listed {
            Ok(all) => {
                let identities: Vec<serde_json::Value> = all.iter().map(with_times).collect();
                context! { gallery => path.display().to_string(), identities => identities }
            }
            Err(e) => context! {
                gallery => path.display().to_string(),
                error => crate::error::chain(&e),
            },
        };
        self.page_with("gallery", extra, message.as_deref())
    }

    fn with_gallery(
        &self,
        answer: impl FnOnce(&crate::gallery::Gallery) -> Result<Response, crate::gallery::GalleryError>,
    ) -> Response {
        let Some(gallery) = &self.gallery else {
            return Response::error(404, "this run has no gallery");
        };
        match gallery.with(|g| answer(g)) {
            Ok(response) => response,
            Err(e) => Response::error(curate::status_of(&e), &crate::error::chain(&e)),
        }
    }

    /// `/api/gallery/<who>/thumbnails/<n>.jpg`, the best first, from 1.
    fn thumbnail(&self, who: &str, file: &str) -> Response {
        let Some(n) = (file.strip_suffix(".jpg"))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n >= 1)
        else {
            return Response::error(404, "thumbnails are 1.jpg, 2.jpg, ...");
        };
        self.with_gallery(|g| {
            Ok(match g.thumbnails(who)?.into_iter().nth(n - 1) {
                Some(thumbnail) => Response::jpeg(thumbnail.jpeg),
                None => Response::error(404, &format!("{who} has no thumbnail {n}")),
            })
        })
    }

    fn snapshot(&self, camera: &str) -> Response {
        match self.live.snapshot(camera, self.snapshot_wait) {
            Ok(jpeg) => Response::jpeg(jpeg),
            Err(e @ SnapshotError::UnknownCamera(_)) => Response::error(404, &e.to_string()),
            Err(e @ SnapshotError::NoFrame(_)) => Response::error(503, &e.to_string()),
            Err(e @ SnapshotError::Draw(_)) => Response::error(500, &e.to_string()),
        }
    }

    fn classes_page(&self) -> Response {
        match self.classes_json() {
            Ok(classes) => self.page("classes", context! { classes => classes }),
            Err((404, _)) => self.page("classes", context! { classes => false }),
            Err((_, why)) => self.page("classes", context! { classes => true, error => why }),
        }
    }

    fn classes_json(&self) -> Result<serde_json::Value, (u16, String)> {
        let Some(path) = &self.classes else {
            return Err((404, "this run has no classes by example".into()));
        };
        let examples = crate::interpret::ClassExamples::load(path)
            .map_err(|e| (500, crate::error::chain(&e)))?;
        let classes: Vec<serde_json::Value> = (examples.classes.iter())
            .map(|(name, list)| serde_json::json!({ "name": name, "examples": list.len() }))
            .collect();
        Ok(serde_json::json!({
            "path": path.display().to_string(),
            "model": examples.model,
            "dim": examples.dim,
            "classes": classes,
        }))
    }

    fn health_json(&self) -> serde_json::Value {
        let snapshot = self.health.snapshot();
        serde_json::json!({
            // The watchdog's own rule, over a 10 s window.
            "alive": snapshot.alive(Duration::from_secs(10)),
            "status": snapshot.status(self.fps()),
            "frames": snapshot.frames,
            "since_last_frame_s": (snapshot.since_last_frame.as_secs_f64() * 10.0).round() / 10.0,
            "online": snapshot.online,
            "offline": snapshot.offline,
            "broker_connected": snapshot.broker_connected,
            "waiting_for_trigger": snapshot.waiting_for_trigger,
            "about": self.about,
        })
    }

    /// Frames per second over every camera.
    fn fps(&self) -> f64 {
        self.live.fps()
    }
}

/// The path's segments, percent-decoded; `None` for one that could climb out (`..`), or that
/// holds a slash or a control character once decoded.
fn segments(path: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for raw in path.trim_start_matches('/').split('/') {
        if raw.is_empty() {
            continue;
        }
        let decoded = percent_decode(raw)?;
        if decoded == "." || decoded == ".." || decoded.contains(['/', '\\']) {
            return None;
        }
        if decoded.chars().any(char::is_control) {
            return None;
        }
        out.push(decoded);
    }
    Some(out)
}

fn percent_decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A POST from a browser carries `Origin`; one from another site is refused. Scripts (curl)
/// send none and are let through: they hold the password.
fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.origin.as_deref() else {
        return true;
    };
    let Some(host) = request.host.as_deref() else {
        return false;
    };
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    bare == Some(host)
}

/// An identity for the page, with its times in words.
fn with_times(summary: &crate::gallery::IdentitySummary) -> serde_json::Value {
    let mut value = serde_json::to_value(summary).unwrap_or_default();
    let when = |ms: i64| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
            .to_string()
    };
    value["last_seen"] = when(summary.identity.last_seen_ms).into();
    value
}

/// Now, RFC 3339.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
