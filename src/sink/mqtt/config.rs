//! `[sink] kind = "mqtt"`.

use super::discovery::DiscoveryConfig;
use super::events::EventConfig;
use crate::sink::spool::SpoolConfig;
use serde::Deserialize;

/// MQTT sink options. Topics are `<prefix>/<device>/availability` and
/// `<prefix>/<device>/<camera>/result`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Broker port.
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
    /// Broker credentials.
    pub username: Option<String>,
    pub password: Option<String>,
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
    5_000
}

impl MqttConfig {
    pub fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("edgevit-{}", self.device))
    }
}
