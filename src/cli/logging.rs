//! Logs go to journald (with their levels) when systemd started edgevit with its output
//! connected to the journal (`JOURNAL_STREAM`), otherwise to stderr through `env_logger`.
//! `RUST_LOG` sets the level either way (`info` by default).

use log::LevelFilter;

pub fn init() {
    let journal_socket = std::path::Path::new("/run/systemd/journal/socket").exists();
    if journal_socket && systemd_journal_logger::connected_to_journal() {
        let installed = systemd_journal_logger::JournalLog::new()
            .map(|journal| journal.with_syslog_identifier("edgevit".into()))
            .map(|journal| journal.install().is_ok());
        if let Ok(true) = installed {
            // journald filters by priority itself; RUST_LOG may name a plain level here.
            let level = std::env::var("RUST_LOG")
                .ok()
                .and_then(|v| v.parse::<LevelFilter>().ok())
                .unwrap_or(LevelFilter::Info);
            log::set_max_level(level);
            return;
        }
    }
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,hnsw_rs=warn"),
    )
    .target(env_logger::Target::Stderr)
    .init();
}
