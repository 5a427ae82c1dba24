//! `[sink.tls]`: the rustls client configuration for a TLS broker, and plain words for why a
//! handshake failed.
//!
//! rustls is built without a process-wide crypto provider (rumqttc's default would pull
//! aws-lc, a long C build), so every configuration names the ring provider itself.

use super::config::SetupError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[sink.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) that signed the broker's certificate. Required: the
    /// system's roots are not consulted, since a broker on a LAN almost always has a private CA.
    pub ca_file: PathBuf,
    /// PEM certificate (chain) presented to brokers that ask for one; needs `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
    /// The name the broker's certificate must carry, when it is not `host` (a broker reached
    /// by IP address or through a tunnel). Only verification uses it; SNI still carries `host`.
    pub server_name: Option<String>,
}

impl TlsConfig {
    pub fn resolve_paths(&mut self, base: &Path) {
        self.ca_file = base.join(&self.ca_file);
        for file in [&mut self.client_cert_file, &mut self.client_key_file]
            .into_iter()
            .flatten()
        {
            *file = base.join(&*file);
        }
    }

    /// Reads the PEM files and builds the client configuration.
    pub fn load(&self) -> Result<Arc<ClientConfig>, SetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in read_certs("sink.tls.ca_file", &self.ca_file)? {
            roots
                .add(cert)
                .map_err(|e| invalid("sink.tls.ca_file", &self.ca_file, e))?;
        }
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::Conflict(format!("`sink.tls`: {e}")))?;
        let builder = match &self.server_name {
            None => builder.with_root_certificates(roots),
            Some(name) => {
                let name = ServerName::try_from(name.clone()).map_err(|_| {
                    SetupError::Conflict(format!(
                        "`sink.tls.server_name`: {name:?} is not a DNS name or IP address"
                    ))
                })?;
                let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| invalid("sink.tls.ca_file", &self.ca_file, e))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ExpectName { inner, name }))
            }
        };
        let config =
            match (&self.client_cert_file, &self.client_key_file) {
                (None, None) => builder.with_no_client_auth(),
                (Some(cert_file), Some(key_file)) => {
                    let certs = read_certs("sink.tls.client_cert_file", cert_file)?;
                    let key = read_key(key_file)?;
                    builder.with_client_auth_cert(certs, key).map_err(|e| {
                        invalid(
                            "sink.tls.client_key_file",
                            key_file,
                            format!("unusable with {}: {e}", cert_file.display()),
                        )
                    })?
                }
                _ => return Err(SetupError::Conflict(
                    "`sink.tls`: give both `client_cert_file` and `client_key_file`, or neither"
                        .into(),
                )),
            };
        Ok(Arc::new(config))
    }
}

fn invalid(key: &'static str, path: &Path, problem: impl ToString) -> SetupError {
    SetupError::Invalid {
        key,
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|error| SetupError::Read {
        key,
        path: path.to_path_buf(),
        error,
    })
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key, path, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(
            key,
            path,
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, SetupError> {
    const KEY: &str = "sink.tls.client_key_file";
    let pem = read(KEY, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(
            KEY,
            path,
            "no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----)",
        ),
        e => invalid(KEY, path, format!("bad PEM: {e}")),
    })
}

/// The usual verification, against `name` rather than the host connected to.
#[derive(Debug)]
struct ExpectName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for ExpectName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _host: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls error somewhere in `error`'s chain, if any. tokio-rustls wraps it in an
/// `io::Error`, whose `source()` skips the wrapped error itself, hence `get_ref`.
pub fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| rustls_error(inner))
        {
            return Some(found);
        }
        next = error.source();
    }
    None
}

/// rustls's reason, with what to check in the configuration.
pub fn explain(error: &rustls::Error) -> String {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error};
    let hint = match error {
        Error::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => {
            "the broker's certificate is not signed by a CA in sink.tls.ca_file"
        }
        Error::InvalidCertificate(
            Cert::NotValidForName | Cert::NotValidForNameContext { .. },
        ) => "the broker's certificate does not name `host`; set sink.tls.server_name to a name it carries",
        Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. })
        | Error::InvalidCertificate(Cert::NotValidYet | Cert::NotValidYetContext { .. }) => {
            "check the certificate's dates and this machine's clock"
        }
        Error::AlertReceived(Alert::CertificateRequired) => {
            "the broker wants a client certificate: set sink.tls.client_cert_file and client_key_file"
        }
        Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::AccessDenied,
        ) => "the broker refused our client certificate (sink.tls.client_cert_file)",
        Error::AlertReceived(Alert::HandshakeFailure) => {
            "if the broker requires a client certificate, check sink.tls.client_cert_file"
        }
        Error::InvalidMessage(_) => "is this port a TLS listener?",
        _ => "",
    };
    if hint.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {hint}")
    }
}
