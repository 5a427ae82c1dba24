//! The web page's tests: an `edgevit run` with `[web]` on the door scene (BlazeFace, the face
//! descriptor, two reference photos in a loop), and plain HTTP/1.1 over a socket. The client is
//! a few lines on purpose: the refusal tests must send exactly the bytes they mean (a `..`
//! that a client library would resolve, an oversized body), and WebDriver is the same JSON.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An answer: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as it is and reads the answer: by its `Content-Length`, its chunks, or to
/// the end of the connection (a server may keep it open whatever `Connection: close` said).
pub fn raw(address: SocketAddr, request: &[u8]) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(request)?;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 16384];
    let (split, headers, status) = loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the headers ended"));
        }
        bytes.extend_from_slice(&buffer[..n]);
        if let Some(split) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
            let mut lines = head.lines();
            let status: u16 = (lines.next().and_then(|l| l.split(' ').nth(1)))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
                .collect();
            break (split, headers, status);
        }
    };
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let length: Option<usize> = find("content-length").and_then(|v| v.parse().ok());
    let chunked = find("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let done = |body: &[u8]| match (length, chunked) {
        (Some(length), _) => body.len() >= length,
        (None, true) => body.ends_with(b"0\r\n\r\n"),
        (None, false) => false,
    };
    let mut body = bytes[split + 4..].to_vec();
    while !done(&body) {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buffer[..n]);
    }
    if chunked {
        body = unchunk(&body);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn unchunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 || body.len() < end + 2 + size + 2 {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
    out
}

/// A request with the usual headers and `extra` ones.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    raw(address, &bytes).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub fn get(address: SocketAddr, path: &str, extra: &[(&str, &str)]) -> Answer {
    request(address, "GET", path, extra, b"")
}

/// `Authorization: Basic ...` for `user:password`.
pub fn basic(credentials: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `edgevit run`, stopped (SIGTERM, then killed) when dropped.
pub struct Running {
    pub child: Child,
    pub log: PathBuf,
}

impl Running {
    /// Starts `edgevit run --config config`, logging to `log`.
    pub fn start(config: &Path, log: &Path) -> Running {
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_edgevit"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info,edgevit::web=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the edgevit binary runs");
        Running {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` is true of the page's answer to `path` (the gallery has identities,
    /// say), for at most `limit`.
    pub fn wait_for(
        &mut self,
        address: SocketAddr,
        path: &str,
        extra: &[(&str, &str)],
        limit: Duration,
        ready: impl Fn(&Answer) -> bool,
    ) -> Answer {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("edgevit run ended ({status}):\n{}", self.log());
            }
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
            let mut bytes = request.into_bytes();
            for (name, value) in extra {
                bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
            if let Ok(answer) = raw(address, &bytes) {
                if ready(&answer) {
                    return answer;
                }
            }
            assert!(
                start.elapsed() < limit,
                "{path} was not ready within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The door scene with the page: the two reference photos (the astronaut six frames, then
/// Grace Hopper six frames: each a track) in a loop at `fps`, faces found by BlazeFace and
/// described by the face descriptor, a gallery in `dir`, results in `dir/out.jsonl`, and `web`
/// as the `[web]` section's body.
pub fn door_with_page(dir: &Path, fps: f64, web: &str) -> PathBuf {
    let sink = format!(
        "[gallery]\npath = \"{}\"\nthreshold = 0.5\n[sink]\nkind = \"file\"\npath = \"{}\"\n",
        dir.join("gallery.sqlite").display(),
        dir.join("out.jsonl").display(),
    );
    door_board(dir, fps, &sink, web)
}

/// `edgevit run` of the door scene (`door_with_page`, 4 frames a second) with its page on a
/// free loopback port, no password: the run, the page's address, the configuration.
pub fn door_running(dir: &Path) -> (Running, SocketAddr, PathBuf) {
    let port = free_port();
    let config = door_with_page(dir, 4.0, &format!("listen = \"127.0.0.1:{port}\""));
    let run = Running::start(&config, &dir.join("run.log"));
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    (run, address, config)
}

/// The door scene of `door_with_page` as a board of a fleet: its gallery in `dir` shared as
/// `device` through the broker on `port`.
pub fn door_in_fleet(dir: &Path, fps: f64, device: &str, port: u16, web: &str) -> PathBuf {
    let sink = format!(
        "state_dir = \"{}\"\n[gallery]\nthreshold = 0.5\nfleet = true\n\
         [sink]\nkind = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\ndevice = \"{device}\"\n\
         [sink.spool]\npath = \"{}\"\n",
        dir.join("state").display(),
        dir.join("spool").display(),
    );
    door_board(dir, fps, &sink, web)
}

fn door_board(dir: &Path, fps: f64, sink_and_gallery: &str, web: &str) -> PathBuf {
    let shared = super::shared_dir();
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let photos = shared.join("reference/images");
    for n in 0..6 {
        std::fs::copy(
            photos.join("astronaut.png"),
            frames.join(format!("a{n}.png")),
        )
        .unwrap();
        std::fs::copy(
            photos.join("grace_hopper.bmp"),
            frames.join(format!("g{n}.bmp")),
        )
        .unwrap();
    }
    let detector = super::blazeface_package(dir);
    let descriptor = super::face_descriptor_package(dir);
    let config = dir.join("door.toml");
    let web = if web.is_empty() {
        String::new()
    } else {
        format!("[web]\n{web}\n")
    };
    // `state_dir` is a top-level key: it must come before the first section.
    let (top, sections) = match sink_and_gallery.split_once("[gallery]") {
        Some((top, rest)) => (top.to_string(), format!("[gallery]{rest}")),
        None => (String::new(), sink_and_gallery.to_string()),
    };
    std::fs::write(
        &config,
        format!(
            "{top}[source]\nkind = \"image-dir\"\npath = \"{}\"\ncamera = \"door\"\nloop = true\nfps = {fps}\n\
             [detector]\npath = \"{}\"\nmargin = 0.25\n[model]\npath = \"{}\"\n\
             [tracker]\n{sections}{web}",
            frames.display(),
            detector.display(),
            descriptor.display(),
        ),
    )
    .unwrap();
    config
}
