//! `[sink] kind = "mqtt"`.

use super::discovery::DiscoveryConfig;
use super::events::EventConfig;
use super::tls::TlsConfig;
use crate::sink::spool::SpoolConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// MQTT sink options. Topics are `<prefix>/<device>/availability` and
/// `<prefix>/<device>/<camera>/result`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Broker port; TLS listeners usually use 8883.
    #[serde(default = "default_port")]
    pub port: u16,
    /// First topic level.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// This edgevit instance's id: the second topic level and part of the client id.
    #[serde(default = "default_device")]
    pub device: String,
    /// MQTT client id; `edgevit-<device>` when absent.
    pub client_id: Option<String>,
    /// Broker user name; sent alone (no password) when neither password nor password_file is
    /// given.
    pub username: Option<String>,
    /// Broker password, in the configuration file.
    pub password: Option<String>,
    /// A file holding the password (one line; a trailing line break is ignored), so that the
    /// configuration file itself need not be secret: systemd credentials, Docker secrets.
    pub password_file: Option<PathBuf>,
    /// `[sink.tls]`: connect over TLS. Without it the connection is plain TCP.
    pub tls: Option<TlsConfig>,
    /// Keep-alive interval, seconds.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// First wait before reconnecting, milliseconds; doubles (with jitter) up to `reconnect_max_ms`.
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// Results published and not yet acknowledged by the broker, at most.
    #[serde(default = "default_inflight")]
    pub inflight: usize,
    /// On a clean stop, how long to wait for the spool to drain before giving up (the rest is
    /// delivered by the next run).
    #[serde(default = "default_drain")]
    pub drain_timeout_ms: u64,
    /// Seconds between messages on `<prefix>/<device>/stats`; 0 turns them off.
    #[serde(default = "default_stats_interval")]
    pub stats_interval_s: u64,
    /// The on-disk spool that holds results until the broker has acknowledged them.
    #[serde(default)]
    pub spool: SpoolConfig,
    /// When a label becomes, stays and stops being current (`<camera>/event`).
    #[serde(default)]
    pub events: EventConfig,
    /// Home Assistant discovery.
    #[serde(default)]
    pub discovery: DiscoveryConfig,
    /// The gallery shared with the fleet (`[gallery] fleet = true`); set by the pipeline,
    /// not read from the file.
    #[serde(skip)]
    pub fleet: Option<super::fleet_sync::FleetLink>,
}

fn default_stats_interval() -> u64 {
    30
}

fn default_host() -> String {
    "localhost".into()
}
fn default_port() -> u16 {
    1883
}
fn default_prefix() -> String {
    "edgevit".into()
}
fn default_device() -> String {
    "edgevit".into()
}
fn default_keep_alive() -> u64 {
    30
}
fn default_reconnect_min() -> u64 {
    500
}
fn default_reconnect_max() -> u64 {
    30_000
}
fn default_inflight() -> usize {
    32
}
fn default_drain() -> u64 {
    2_000
}

impl MqttConfig {
    /// The names this section puts into topics, each with its key: checked against
    /// [`names`](super::names) when the file is read.
    pub fn topic_names(&self) -> Vec<(&'static str, &str, NameKind)> {
        let mut names = vec![
            ("sink.prefix", self.prefix.as_str(), NameKind::Prefix),
            ("sink.device", self.device.as_str(), NameKind::Level),
        ];
        if self.discovery.enabled {
            names.push((
                "sink.discovery.prefix",
                self.discovery.prefix.as_str(),
                NameKind::Prefix,
            ));
        }
        names
    }

    pub fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("edgevit-{}", self.device))
    }

    /// Resolves relative paths (spool, TLS files, password file) against `base`, the
    /// configuration file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        self.spool.path = base.join(&self.spool.path);
        if let Some(file) = &mut self.password_file {
            *file = base.join(&*file);
        }
        if let Some(tls) = &mut self.tls {
            tls.resolve_paths(base);
        }
    }

    /// The password, from `password` or read from `password_file`.
    pub fn load_password(&self) -> Result<Option<String>, SetupError> {
        match (&self.password, &self.password_file) {
            (Some(_), Some(_)) => Err(SetupError::Conflict(
                "give either `sink.password` or `sink.password_file`, not both".into(),
            )),
            (Some(password), None) => Ok(Some(password.clone())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|error| SetupError::Read {
                    key: "sink.password_file",
                    path: path.clone(),
                    error,
                })?;
                // Editors and `echo` add a final line break; it is never part of the password.
                let password = text.strip_suffix('\n').unwrap_or(&text);
                let password = password.strip_suffix('\r').unwrap_or(password);
                Ok(Some(password.to_string()))
            }
            (None, None) => Ok(None),
        }
    }

    /// `username` with the password, checked for the combinations the broker cannot use.
    pub fn credentials(&self) -> Result<Option<(String, String)>, SetupError> {
        let password = self.load_password()?;
        match (&self.username, password) {
            (Some(user), password) => Ok(Some((user.clone(), password.unwrap_or_default()))),
            (None, Some(_)) => Err(SetupError::Conflict(
                "a password needs `sink.username` (MQTT 3.1.1 sends no password alone)".into(),
            )),
            (None, None) => Ok(None),
        }
    }
}

/// How a name sits in a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// One or more levels, first in the topic.
    Prefix,
    /// Exactly one level.
    Level,
}

impl NameKind {
    pub fn check(self, name: &str) -> Result<(), super::names::NameError> {
        match self {
            NameKind::Prefix => super::names::check_prefix(name),
            NameKind::Level => super::names::check_level(name),
        }
    }
}

/// A setting of `[sink]` that cannot be used: found when the sink starts, before any frame.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    // The reason is in the message rather than a `source`, so that `{:#}` says it once.
    #[error("`{key}`: cannot read {path}: {error}")]
    Read {
        key: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("`{key}`: {path}: {problem}")]
    Invalid {
        key: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("{0}")]
    Conflict(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MqttConfig, String> {
        crate::config_parse::parse_section("sink", toml::from_str(text).map_err(|e| e.to_string())?)
    }

    #[test]
    fn tls_paths_resolve_against_the_config_folder() {
        let mut config = parse(
            "password_file = \"secret\"\n\
             [tls]\nca_file = \"ca.pem\"\nclient_cert_file = \"/etc/c.pem\"\n\
             client_key_file = \"k.pem\"\nserver_name = \"broker\"\n",
        )
        .unwrap();
        config.resolve_paths(Path::new("/etc/edgevit"));
        let tls = config.tls.as_ref().unwrap();
        assert_eq!(tls.ca_file, Path::new("/etc/edgevit/ca.pem"));
        assert_eq!(
            tls.client_cert_file.as_deref(),
            Some(Path::new("/etc/c.pem"))
        );
        assert_eq!(
            tls.client_key_file.as_deref(),
            Some(Path::new("/etc/edgevit/k.pem"))
        );
        assert_eq!(
            config.password_file.as_deref(),
            Some(Path::new("/etc/edgevit/secret"))
        );
        assert_eq!(config.spool.path, Path::new("/etc/edgevit/spool"));
        assert_eq!(config.port, 1883, "TLS does not change the default port");
    }

    #[test]
    fn tls_needs_a_ca_file_and_knows_its_keys() {
        let err = parse("[tls]\nserver_name = \"x\"\n").unwrap_err();
        assert!(err.contains("sink.tls") && err.contains("ca_file"), "{err}");
        let err = parse("[tls]\nca_file = \"a\"\ncafile = \"b\"\n").unwrap_err();
        assert!(err.contains("unknown field `cafile`"), "{err}");
    }

    #[test]
    fn password_file_is_read_without_its_line_break() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret \n").unwrap();
        let mut config = parse("username = \"u\"\npassword_file = \"pw\"\n").unwrap();
        config.resolve_paths(dir.path());
        assert_eq!(
            config.credentials().unwrap(),
            Some(("u".to_string(), "s3cret ".to_string()))
        );
    }

    #[test]
    fn credential_mistakes_are_named() {
        let config = parse("username = \"u\"\npassword = \"a\"\npassword_file = \"b\"\n").unwrap();
        let err = config.credentials().unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");

        let config = parse("password = \"a\"\n").unwrap();
        let err = config.credentials().unwrap_err().to_string();
        assert!(err.contains("sink.username"), "{err}");

        let config = parse("username = \"u\"\npassword_file = \"/nonexistent/pw\"\n").unwrap();
        let err = config.credentials().unwrap_err().to_string();
        assert!(
            err.contains("sink.password_file") && err.contains("/nonexistent/pw"),
            "{err}"
        );

        let config = parse("username = \"u\"\n").unwrap();
        assert_eq!(
            config.credentials().unwrap(),
            Some(("u".to_string(), String::new()))
        );
    }
}
