//! The page's I/O: axum (hyper's HTTP/1) on a single-threaded tokio runtime of its own
//! thread, apart from the capture loop; each request is answered by the routes (`site.rs`)
//! on tokio's blocking pool, since a snapshot waits for the camera's next frame. Requests are
//! bounded before the routes see them: a path of at most [`MAX_URL`] bytes and a body of at
//! most [`MAX_BODY`].

use super::http::{Method, Request, Response};
use super::site::Site;
use super::WebError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The longest request path accepted (414 beyond).
pub const MAX_URL: usize = 2048;
/// The largest body accepted (413 beyond): a rename form is a few dozen bytes.
pub const MAX_BODY: usize = 16 * 1024;
/// How long a stop waits for requests still being answered.
const SHUTDOWN: std::time::Duration = std::time::Duration::from_millis(500);
/// Requests answered at once: more wait (each holds a blocking thread while it runs).
const BLOCKING_THREADS: usize = 4;
/// Requests answered or waiting; beyond, 503 at once: the queue in front of the routes is
/// bounded, whatever a client (or a flood of them) asks.
const MAX_IN_FLIGHT: usize = 32;

/// The running page; stops when dropped.
pub struct WebServer {
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WebServer {
    /// Listens on `address` and answers with `site` from a thread of its own.
    pub fn start(address: SocketAddr, site: Site) -> Result<Self, WebError> {
        let listen_error = |e: std::io::Error| WebError::Listen {
            address: address.to_string(),
            why: e.to_string(),
        };
        let listener = std::net::TcpListener::bind(address).map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(listen_error)?;
        let address = listener.local_addr().map_err(listen_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("web")
            .build()
            .map_err(WebError::Thread)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let site = Arc::new(Shared {
            site,
            in_flight: AtomicUsize::new(0),
        });
        let thread = std::thread::Builder::new()
            .name("web".into())
            .spawn(move || {
                let served = runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let app = axum::Router::new()
                        .fallback(answer)
                        .layer(DefaultBodyLimit::max(MAX_BODY))
                        .with_state(site);
                    // Not a graceful shutdown: that waits for every open connection, and a
                    // browser keeps its connections open; the loop has stopped already.
                    tokio::select! {
                        served = axum::serve(listener, app).into_future() => served,
                        _ = stopped => Ok(()),
                    }
                });
                if let Err(e) = served {
                    log::error!("the web page stopped: {e}");
                }
                // A request still running (a snapshot waiting for a frame) gets this long.
                runtime.shutdown_timeout(SHUTDOWN);
            })
            .map_err(WebError::Thread)?;
        Ok(WebServer {
            address,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens (the port chosen, for `:0`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the requests share: the routes, and how many requests are in flight.
struct Shared {
    site: Site,
    in_flight: AtomicUsize,
}

/// Counts a request in flight while it lives.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every request: bounded, then answered by the routes on the blocking pool.
async fn answer(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let counted = InFlight(Arc::clone(&shared));
    let busy = shared.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT;
    let response = if busy {
        Response::error(503, "too many requests at once; try again")
    } else if uri.to_string().len() > MAX_URL {
        Response::error(414, "the address is too long")
    } else {
        let find = |name: &str| {
            (headers.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request = Request {
            method: Method::parse(method.as_str()),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or("").to_string(),
            authorization: find("authorization"),
            origin: find("origin"),
            host: find("host"),
            content_type: find("content-type"),
            body: body.to_vec(),
        };
        let shared = Arc::clone(&shared);
        tokio::task::spawn_blocking(move || shared.site.handle(&request))
            .await
            .unwrap_or_else(|e| Response::error(500, &format!("the page failed: {e}")))
    };
    log::debug!(
        "{method} {}: {} ({} bytes) in {:.1} ms",
        uri.path(),
        response.status,
        response.body.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    drop(counted);
    into_axum(response)
}

fn into_axum(response: Response) -> axum::response::Response {
    let mut out = axum::response::Response::new(axum::body::Body::from(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let headers = out.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(response.content_type),
    );
    for (name, value) in response.headers {
        // Values are ours or ids the gallery checked; one that is not a header value is left
        // out rather than sent broken.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    out
}
