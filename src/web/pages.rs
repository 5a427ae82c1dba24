//! The page's HTML, rendered from templates compiled into the binary (minijinja, with HTML
//! auto-escaping: a name typed into the rename form is shown as text, never as markup), and
//! its two assets. Nothing is read from disk and nothing is fetched from elsewhere: a board
//! has no internet.

use minijinja::Environment;

/// The templates, by name.
const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("templates/base.html")),
    ("live.html", include_str!("templates/live.html")),
    ("gallery.html", include_str!("templates/gallery.html")),
    ("classes.html", include_str!("templates/classes.html")),
    ("health.html", include_str!("templates/health.html")),
];

/// The assets under `/assets/`: name, content type, bytes.
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/live.js"),
    ),
];

/// The compiled templates.
pub struct Pages {
    env: Environment<'static>,
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

impl Pages {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are part of the binary: one that does not compile is a bug that
            // the tests catch (`every_page_renders`).
            if let Err(e) = env.add_template(name, source) {
                log::error!("web page template {name}: {e}");
            }
        }
        Pages { env }
    }

    /// Renders page `name` (`live`, `gallery`, `classes`, `health`) with `context`.
    pub fn render(&self, name: &str, context: minijinja::Value) -> Result<String, String> {
        let template = self
            .env
            .get_template(&format!("{name}.html"))
            .map_err(|e| e.to_string())?;
        template.render(context).map_err(|e| {
            // minijinja's error with its source chain: which template line failed.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                text.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            text
        })
    }

    /// An asset by its name under `/assets/`: content type and bytes.
    pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
        ASSETS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, kind, body)| (*kind, body.as_bytes()))
    }
}
