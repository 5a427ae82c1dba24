//! HTTP basic auth for the page: user `edgevit`, the configured password, compared in constant
//! time so that the time a refusal takes says nothing about how much of a guess was right.

use base64::Engine;
use subtle::ConstantTimeEq;

/// The one user name the page knows.
pub const USER: &str = "edgevit";

/// The page's credentials.
#[derive(Clone)]
pub struct Credentials {
    expected: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

impl Credentials {
    pub fn new(password: &str) -> Self {
        Credentials {
            expected: format!("{USER}:{password}").into_bytes(),
        }
    }

    /// Whether an `Authorization` header carries them.
    pub fn accept(&self, authorization: Option<&str>) -> bool {
        let Some(header) = authorization else {
            return false;
        };
        let Some((scheme, encoded)) = header.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        // `ct_eq` on slices of different lengths is false at once: the length of the
        // password is not a secret worth hiding (it is bounded by the request size anyway).
        bool::from(given.as_slice().ct_eq(&self.expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }

    #[test]
    fn only_the_user_edgevit_with_the_password_gets_in() {
        let credentials = Credentials::new("s3cret");
        assert!(credentials.accept(Some(&basic("edgevit:s3cret"))));
        assert!(credentials.accept(Some(&format!("basic  {}", &basic("edgevit:s3cret")[6..]))));
        for refused in [
            basic("edgevit:s3cre"),
            basic("edgevit:s3cret2"),
            basic("admin:s3cret"),
            basic("edgevit"),
            "Bearer s3cret".into(),
            "Basic not-base64!".into(),
            String::new(),
        ] {
            assert!(!credentials.accept(Some(&refused)), "{refused}");
        }
        assert!(!credentials.accept(None));
        assert!(!format!("{credentials:?}").contains("s3cret"));
    }
}
