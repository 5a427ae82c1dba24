//! The page's I/O: tiny_http (already in the binary for `/metrics`: synchronous, no async
//! runtime, a few hundred kB) on a small fixed set of threads of its own, apart from the
//! capture loop. Requests are bounded before the routes see them: a path of at most
//! [`MAX_URL`] bytes and a body of at most [`MAX_BODY`].

use super::http::{Method, Request, Response};
use super::site::Site;
use super::WebError;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Threads answering requests: a snapshot waits for the camera's next frame, so two let the
/// gallery answer while a snapshot waits; more would only let more snapshots run at once.
const THREADS: usize = 2;
/// The longest request line path accepted (414 beyond).
pub const MAX_URL: usize = 2048;
/// The largest body accepted (413 beyond): a rename form is a few dozen bytes.
pub const MAX_BODY: usize = 16 * 1024;

/// The running page; stops its threads when dropped.
pub struct WebServer {
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    address: SocketAddr,
}

impl WebServer {
    /// Listens on `address` and answers with `site` from threads of its own.
    pub fn start(address: SocketAddr, site: Site) -> Result<Self, WebError> {
        let server = tiny_http::Server::http(address).map_err(|e| WebError::Listen {
            address: address.to_string(),
            why: e.to_string(),
        })?;
        let address = server.server_addr().to_ip().unwrap_or(address);
        let server = Arc::new(server);
        let site = Arc::new(site);
        let mut threads = Vec::new();
        for n in 0..THREADS {
            let (server, site) = (Arc::clone(&server), Arc::clone(&site));
            let thread = std::thread::Builder::new()
                .name(format!("web-{n}"))
                .spawn(move || answer(&server, &site))
                .map_err(WebError::Thread)?;
            threads.push(thread);
        }
        Ok(WebServer {
            server,
            threads,
            address,
        })
    }

    /// Where it listens (the port chosen, for `:0`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One thread's loop: until the server is unblocked.
fn answer(server: &tiny_http::Server, site: &Site) {
    while let Ok(mut request) = server.recv() {
        let response = match read(&mut request) {
            Ok(parsed) => site.handle(&parsed),
            Err(refused) => refused,
        };
        let mut out = tiny_http::Response::from_data(response.body)
            .with_status_code(response.status)
            .with_header(header("Content-Type", response.content_type));
        for (name, value) in &response.headers {
            out.add_header(header(name, value));
        }
        if let Err(e) = request.respond(out) {
            log::debug!("web page: {e}");
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    // Names are ours; values are ours or ids checked by the gallery: no line breaks.
    tiny_http::Header::from_bytes(name.as_bytes(), value.replace(['\r', '\n'], " ").as_bytes())
        .unwrap_or_else(|()| {
            tiny_http::Header::from_bytes(&b"X-Edgevit-Dropped"[..], &b"1"[..])
                .unwrap_or_else(|()| unreachable!("a plain header"))
        })
}

/// The request as the routes see it, or the refusal of an oversized one.
fn read(request: &mut tiny_http::Request) -> Result<Request, Response> {
    let url = request.url().to_string();
    if url.len() > MAX_URL {
        return Err(Response::error(414, "the address is too long"));
    }
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(Response::error(413, "the request body is too large"));
    }
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body);
    if read.is_err() {
        return Err(Response::error(400, "cannot read the request body"));
    }
    if body.len() > MAX_BODY {
        return Err(Response::error(413, "the request body is too large"));
    }
    let find = |name: &'static str| {
        (request.headers().iter())
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    Ok(Request {
        method: Method::parse(request.method().as_str()),
        path: path.to_string(),
        query: query.to_string(),
        authorization: find("Authorization"),
        origin: find("Origin"),
        host: find("Host"),
        content_type: find("Content-Type"),
        body,
    })
}
