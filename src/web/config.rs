//! `[web]`: the built-in page's address, password and whether it may change anything.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `[web]`: a page served by edgevit itself for setting up and curating: the live view, the
/// gallery, the classes by example and the health. Absent, no page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address to serve the page on (default `127.0.0.1:8090`: this board only). A LAN
    /// address (`0.0.0.0:8090`) needs `password_file`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding the page's password (its first line; HTTP basic auth, user name
    /// `edgevit`). Set, every request needs it; unset, the page only listens on loopback.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Look, do not touch: no rename, merge or forget (default `false`).
    #[serde(default)]
    pub read_only: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: default_listen(),
            password_file: None,
            read_only: false,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8090".into()
}

/// Why the page cannot be served as configured.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("`web.listen` = {0:?} is not an address and port (e.g. \"127.0.0.1:8090\")")]
    Address(String),
    #[error("`web.listen` = {0:?} is reachable from other machines: a password is needed there (`web.password_file`, HTTP basic auth as user \"edgevit\"), or listen on 127.0.0.1")]
    NeedsPassword(String),
    #[error("cannot read `web.password_file` {path}")]
    Password {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`web.password_file` {0} holds no password (its first line is empty)")]
    EmptyPassword(PathBuf),
    #[error("cannot listen on {address} (web.listen): {why}")]
    Listen { address: String, why: String },
    #[error("cannot start the web page's threads")]
    Thread(#[source] std::io::Error),
}

impl WebConfig {
    /// Resolves `password_file` against `base` (the configuration file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        self.password_file = self.password_file.as_ref().map(|p| base.join(p));
    }

    /// The address, refused when it is not one, or when it reaches beyond this machine and
    /// there is no password.
    pub fn address(&self) -> Result<SocketAddr, WebError> {
        let address: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| WebError::Address(self.listen.clone()))?;
        if !address.ip().is_loopback() && self.password_file.is_none() {
            return Err(WebError::NeedsPassword(self.listen.clone()));
        }
        Ok(address)
    }

    /// The password: the first line of `password_file`, without its line ending.
    pub fn password(&self) -> Result<Option<String>, WebError> {
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| WebError::Password {
            path: path.clone(),
            source,
        })?;
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if line.is_empty() {
            return Err(WebError::EmptyPassword(path.clone()));
        }
        Ok(Some(line.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, password: Option<&str>) -> WebConfig {
        WebConfig {
            listen: listen.into(),
            password_file: password.map(PathBuf::from),
            read_only: false,
        }
    }

    #[test]
    fn loopback_needs_no_password_and_a_lan_address_does() {
        assert!(config("127.0.0.1:8090", None).address().is_ok());
        assert!(config("[::1]:8090", None).address().is_ok());
        for lan in ["0.0.0.0:8090", "192.168.1.20:8090", "[::]:8090"] {
            let refused = config(lan, None).address().unwrap_err().to_string();
            assert!(refused.contains("password"), "{refused}");
            assert!(config(lan, Some("/etc/edgevit/web-password"))
                .address()
                .is_ok());
        }
        let bad = config("localhost", None).address().unwrap_err().to_string();
        assert!(bad.contains("not an address"), "{bad}");
    }

    #[test]
    fn the_password_is_the_first_line_and_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret word\r\nignored\n").unwrap();
        let with = config("0.0.0.0:1", Some(file.to_str().unwrap()));
        assert_eq!(with.password().unwrap().as_deref(), Some("s3cret word"));
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(with.password(), Err(WebError::EmptyPassword(_))));
        let missing = config("0.0.0.0:1", Some("/nonexistent/password"));
        assert!(matches!(missing.password(), Err(WebError::Password { .. })));
        assert_eq!(config("127.0.0.1:1", None).password().unwrap(), None);
    }
}
