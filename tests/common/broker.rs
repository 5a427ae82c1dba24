//! A real Mosquitto broker for the tests, started on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// More listeners (TLS), after the plain anonymous one on `port`.
    listeners: String,
}

impl Broker {
    /// A broker with persistence (so a subscriber's session survives its restart).
    pub fn start(dir: &Path, port: u16) -> Broker {
        Self::start_with(dir, port, "")
    }

    /// A broker with more `listeners` beside the plain one on `port`; each listener has its own
    /// authentication settings, so test subscribers keep using the plain one anonymously.
    pub fn start_with(dir: &Path, port: u16, listeners: &str) -> Broker {
        installed();
        let mut broker = Broker {
            child: None,
            port,
            dir: dir.to_path_buf(),
            listeners: listeners.to_string(),
        };
        broker.restart();
        broker
    }

    pub fn restart(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                // `user root`: run as root (CI), mosquitto would otherwise switch to its own
                // user, which cannot write the session database in this test's folder, and a
                // restart would lose the subscriber's session and what was queued for it.
                "{}user root\nlistener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n{}",
                if self.listeners.is_empty() {
                    ""
                } else {
                    "per_listener_settings true\n"
                },
                self.port,
                self.dir.display(),
                self.listeners,
            ),
        )
        .unwrap();
        let mut child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "mosquitto exited ({status}); its configuration:\n{}",
                    self.listeners
                );
            }
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // What answers must be this broker, not another one that took the port.
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mosquitto exited ({status}): is port {} taken?", self.port);
        }
        self.child = Some(child);
    }

    /// A clean stop (SIGTERM), so the broker saves its sessions.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            super::signal(&child, "TERM");
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Fails the test, saying how to install it, where mosquitto is not there.
pub fn installed() {
    if !Path::new(MOSQUITTO).exists() {
        super::missing(MOSQUITTO);
    }
}

/// A port nothing listens on, and one that no other test of this binary was given: the tests
/// run side by side, and the system may hand a port just released to the next caller, whose
/// broker would then fail to bind while the first test's answered in its place.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}
