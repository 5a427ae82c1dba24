//! Debian's Chromium, headless, driven through chromedriver's W3C WebDriver endpoint: load a
//! page, run a line of script in it, type into a field, click, take a screenshot. A missing
//! browser fails the test saying what to install.

use super::web::{free_port, request};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a4ab-ad9d3d9b2a5e";

/// One browser session; closed, and the driver stopped, when dropped.
pub struct Browser {
    driver: Child,
    address: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width` x `height`.
    pub fn start(width: u32, height: u32) -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(program).exists() {
                panic!(
                    "{program} is missing: the browser test needs Debian's chromium and \
                     chromium-driver (sudo bash tools/install-test-deps.sh)"
                );
            }
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let start = Instant::now();
        while super::web::raw(
            address,
            format!("GET /status HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags of a closed network: no background connections, no first-run pages.
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let mut browser = Browser {
            driver,
            address,
            session: String::new(),
            _profile: profile,
        };
        // `eager`: a navigation returns once the document is parsed; the tests wait for the
        // pictures they care about themselves, and say which one never came.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "eager",
            "timeouts": {"pageLoad": 30000, "script": 10000},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let answer = request(
            self.address,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let value = answer.json();
        assert_eq!(answer.status, 200, "{method} {path}: {value}");
        value["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub fn open(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; what it returns.
    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Waits until `script` returns something truthy (for at most `limit`); that value.
    pub fn wait_for(&self, script: &str, limit: Duration) -> Value {
        self.try_wait_for(script, limit)
            .unwrap_or_else(|| panic!("never true within {limit:?}: {script}"))
    }

    /// `wait_for`, `None` when the time is up.
    pub fn try_wait_for(&self, script: &str, limit: Duration) -> Option<Value> {
        let start = Instant::now();
        loop {
            let value = self.script(script);
            let truthy = !matches!(value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return Some(value);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            &self.at("/element"),
            Some(json!({ "using": "css selector", "value": css })),
        );
        // The W3C key; some chromedriver builds answer with another key of the same form.
        let key = (found.as_object())
            .and_then(|o| o.keys().find(|k| k.starts_with("element-6066")).cloned())
            .unwrap_or_else(|| ELEMENT.to_string());
        found[key.as_str()]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    /// Clears the field at `css` and types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.call(
            "POST",
            &self.at(&format!("/element/{element}/clear")),
            Some(json!({})),
        );
        self.call(
            "POST",
            &self.at(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let element = self.element(css);
        self.call(
            "POST",
            &self.at(&format!("/element/{element}/click")),
            Some(json!({})),
        );
    }

    /// The window as PNG bytes.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let encoded = self.call("GET", &self.at("/screenshot"), None);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = super::web::raw(
                self.address,
                format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.session, self.address
                )
                .as_bytes(),
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
