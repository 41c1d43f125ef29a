//! TLS to the database, with rustls, as libpq's `sslmode` means it:
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | no | – |
//! | `prefer` (the default) | if the server offers it | no |
//! | `require` | yes | no; with `sslrootcert`, its chain, as `verify-ca` |
//! | `verify-ca` | yes | its chain, against `sslrootcert` or Mozilla's roots |
//! | `verify-full` | yes | its chain and that it names the host |
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require`; `verify-ca`,
//! `verify-full` and `sslrootcert` are taken out of the URL here (see
//! [`TlsSettings::extract`]) and the connection is made with `require`.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// What a URL asks of the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing: the connection is encrypted, not authenticated (`prefer`, `require`).
    Nothing,
    /// That a trusted root signed it (`verify-ca`).
    Chain,
    /// That a trusted root signed it for the host connected to (`verify-full`).
    ChainAndName,
}

/// The TLS settings of a database URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// What is checked of the server's certificate.
    pub check: Check,
    /// The roots to check it against (PEM), instead of Mozilla's.
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// Take `sslmode=verify-ca|verify-full` and `sslrootcert` out of `url` (the URL
    /// form's query or the `key=value` form), leaving what tokio-postgres parses:
    /// `sslmode=require` in their place. An `sslmode` libpq would not take either is
    /// an error that says which ones there are.
    pub fn extract(url: &str) -> Result<(String, TlsSettings), String> {
        let mut settings = TlsSettings {
            check: Check::Nothing,
            root_cert: None,
        };
        let mut unknown = None;
        let mut keep = |key: &str, value: &str| -> Option<String> {
            match (key, value) {
                ("sslmode", "disable" | "prefer" | "require") => Some(value.to_owned()),
                ("sslmode", "verify-ca") => {
                    settings.check = Check::Chain;
                    Some("require".to_owned())
                }
                ("sslmode", "verify-full") => {
                    settings.check = Check::ChainAndName;
                    Some("require".to_owned())
                }
                ("sslrootcert", path) => {
                    settings.root_cert = Some(PathBuf::from(path));
                    None
                }
                ("sslmode", other) => {
                    unknown = Some(other.to_owned());
                    None
                }
                (_, value) => Some(value.to_owned()),
            }
        };
        let cleaned = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            match url.split_once('?') {
                Some((base, query)) => {
                    let params: Vec<String> = query
                        .split('&')
                        .filter_map(|pair| {
                            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                            keep(key, &percent_decode(value)).map(|v| {
                                if v == percent_decode(value) {
                                    pair.to_owned()
                                } else {
                                    format!("{key}={v}")
                                }
                            })
                        })
                        .collect();
                    if params.is_empty() {
                        base.to_owned()
                    } else {
                        format!("{base}?{}", params.join("&"))
                    }
                }
                None => url.to_owned(),
            }
        } else if !url.contains("sslmode") && !url.contains("sslrootcert") {
            url.to_owned()
        } else if url.contains('\'') || url.contains("= ") || url.contains(" =") {
            return Err(
                "with sslmode or sslrootcert, write the key=value form without quotes or spaces around =, or use the URL form (postgres://…?sslmode=…)".into(),
            );
        } else {
            url.split_whitespace()
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    keep(key, value).map(|v| format!("{key}={v}"))
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        if let Some(mode) = unknown {
            return Err(format!(
                "sslmode={mode}: expected disable, prefer, require, verify-ca or verify-full"
            ));
        }
        // A root file alone makes `require` check the chain, as in libpq.
        if settings.root_cert.is_some() && settings.check == Check::Nothing {
            settings.check = Check::Chain;
        }
        Ok((cleaned, settings))
    }

    /// The connector for the pool and the listening connection.
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = if self.check == Check::Nothing {
            None
        } else {
            let mut roots = rustls::RootCertStore::empty();
            match &self.root_cert {
                Some(path) => {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
                    let mut added = 0;
                    for cert in rustls_pemfile_certs(&pem)? {
                        roots
                            .add(cert)
                            .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                        added += 1;
                    }
                    if added == 0 {
                        return Err(format!(
                            "sslrootcert {} holds no certificate",
                            path.display()
                        ));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("TLS roots: {e}"))?,
            )
        };
        let verifier = Arc::new(DatabaseVerifier {
            check: self.check,
            roots,
            provider: provider.clone(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect {
            config: Arc::new(config),
        })
    }
}

/// The certificates in PEM text.
fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert is not PEM: {e}"))
}

/// `%XX` escapes of a URL's query value.
fn percent_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks the server's certificate as far as the URL asks; the handshake's
/// signatures are always checked.
#[derive(Debug)]
struct DatabaseVerifier {
    check: Check,
    roots: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for DatabaseVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let verified =
            roots.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match (self.check, verified) {
            (
                Check::Chain,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )),
            ) => Ok(ServerCertVerified::assertion()),
            (_, verified) => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Makes rustls connections for tokio-postgres.
#[derive(Clone)]
pub struct MakeRustlsConnect {
    config: Arc<rustls::ClientConfig>,
}

impl<S> MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = std::convert::Infallible;

    /// Called for every connection, TLS or not: over a Unix socket the host is empty
    /// (and the server declines TLS there), so a name that is no server name fails
    /// only a handshake actually attempted.
    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: ServerName::try_from(host).ok().map(|n| n.to_owned()),
        })
    }
}

/// One connection's TLS handshake.
pub struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: Option<ServerName<'static>>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "TLS needs the database's host name or address",
                )
            })?;
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// A connection to the database over TLS.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // tls-server-end-point hashes the certificate with its own signature's hash,
        // which this does not work out: no channel binding, rather than a wrong one
        // that would fail SCRAM-SHA-256-PLUS.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_and_root_files_are_taken_out_of_both_url_forms() {
        let (url, tls) = TlsSettings::extract(
            "postgres://c@db/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(url, "postgres://c@db/x?sslmode=require&application_name=a");
        assert_eq!(tls.check, Check::ChainAndName);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca.pem")));

        let (url, tls) = TlsSettings::extract("host=db user=c sslmode=verify-ca").unwrap();
        assert_eq!(url, "host=db user=c sslmode=require");
        assert_eq!(tls.check, Check::Chain);

        let (url, tls) =
            TlsSettings::extract("postgres://c@db/x?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(url, "postgres://c@db/x?sslmode=require");
        assert_eq!(
            tls.check,
            Check::Chain,
            "a root file makes require check the chain"
        );

        let (url, tls) = TlsSettings::extract("postgres://c:p%40ss@db/x").unwrap();
        assert_eq!(url, "postgres://c:p%40ss@db/x");
        assert_eq!(tls.check, Check::Nothing);

        let e = TlsSettings::extract("postgres://c@db/x?sslmode=allow").unwrap_err();
        assert!(e.contains("expected disable, prefer"), "{e}");
    }
}
