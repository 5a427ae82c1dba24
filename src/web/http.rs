//! The page's requests and responses, apart from the socket: what the server read, and what
//! the routes decided to answer (`site.rs`), so that the decisions are tested without one.

/// A request, as the routes see it.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub method: Method,
    /// The path, percent-decoded per segment by the routes, without the query.
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    /// `Origin` and `Host`: a form posted from another site is refused (CSRF).
    pub origin: Option<String>,
    pub host: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    #[default]
    Get,
    Head,
    Post,
    Other,
}

impl Method {
    pub fn parse(name: &str) -> Self {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            _ => Method::Other,
        }
    }
}

impl Request {
    pub fn get(path: &str) -> Self {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Request {
            path: path.to_string(),
            query: query.to_string(),
            ..Request::default()
        }
    }

    /// The body's fields: a form (`application/x-www-form-urlencoded`) or a JSON object of
    /// strings.
    pub fn fields(&self) -> Result<Vec<(String, String)>, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        if self.is_json() {
            let value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&self.body)
                    .map_err(|e| format!("the body is not a JSON object: {e}"))?;
            return Ok(value
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect());
        }
        Ok(form_urlencoded::parse(&self.body).into_owned().collect())
    }

    /// One field of the body.
    pub fn field(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self
            .fields()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v))
    }

    /// The body is JSON: the answer is JSON too (a form gets a redirect to the page).
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|t| t.trim_start().starts_with("application/json"))
    }
}

/// What the routes answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn html(body: String) -> Self {
        Response::new(200, "text/html; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &impl serde::Serialize) -> Self {
        let body = serde_json::to_vec_pretty(value).unwrap_or_else(|e| {
            format!("{{\"error\": \"cannot serialise the answer: {e}\"}}").into_bytes()
        });
        Response::new(status, "application/json", body)
    }

    /// An error: JSON for the API, text otherwise.
    pub fn error(status: u16, message: &str) -> Self {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    pub fn jpeg(body: Vec<u8>) -> Self {
        Response::new(200, "image/jpeg", body)
    }

    /// `303 See Other` to `location` (after a form's POST).
    pub fn see_other(location: &str) -> Self {
        Response::new(303, "text/plain; charset=utf-8", "see other\n")
            .with_header("Location", location.to_string())
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}
