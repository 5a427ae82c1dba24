//! The built-in web page (`[web]`): for setting a board up and curating what it learned.
//!
//! - **Live**: each camera's latest frame with its boxes, track ids, identities and labels
//!   drawn, the frame rate and the stage timings, refreshed while someone looks;
//! - **Gallery**: the identities with their thumbnails, named and unnamed, where each was seen,
//!   with rename, merge and forget (the calls `edgevit gallery` makes; the fleet sync passes
//!   them on);
//! - **Classes**: the classes by example and how many examples each has;
//! - **Health**: what the watchdog and the self-test know.
//!
//! Each page's data is also JSON under `/api/` (docs/web.md). Off unless configured; on
//! loopback by default; a LAN address needs a password. The capture loop only ever hands over
//! a frame when a snapshot was asked for (`live.rs`).

mod auth;
mod config;
mod curate;
mod http;
mod live;
mod pages;
mod server;
mod site;

pub use auth::{Credentials, USER};
pub use config::{WebConfig, WebError};
pub use curate::GalleryAccess;
pub use http::{Method, Request, Response};
pub use live::{CameraSummary, LiveView, SnapshotError};
pub use pages::Pages;
pub use server::{WebServer, MAX_BODY, MAX_URL};
pub use site::{now_rfc3339, About, SelfTestSummary, Site};

#[cfg(test)]
mod tests;
