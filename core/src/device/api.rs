//! The device's calls to its server's HTTP API (`/api/...`), over the same TCP or
//! TLS the sync connection uses, with the same bearer token.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::http::{Method, Request, Uri, header};

use crate::error::{Error, Result};

/// Where the API is and how to reach it: taken from the device's settings.
pub(super) struct ApiTarget {
    /// The sync URL (`ws://host:port/sync`); the API is beside it.
    pub server: String,
    pub token: Option<String>,
    pub tls: Arc<rustls::ClientConfig>,
    pub timeout: Duration,
}

/// An answer: its status and JSON body (`Null` when it has none).
pub(super) struct ApiAnswer {
    pub status: u16,
    pub body: serde_json::Value,
}

/// The API URL beside a sync URL: `ws://h/base/sync` → (`http`, `h`, `/base` + path).
fn api_uri(server: &str, path: &str) -> Result<(bool, String, u16, String)> {
    let uri: Uri = server
        .parse()
        .map_err(|e| Error::Config(format!("server URL {server:?}: {e}")))?;
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => {
            return Err(Error::Config(format!(
                "server URL {server:?} is not ws:// or wss://"
            )));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| Error::Config(format!("server URL {server:?} has no host")))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let base = uri.path().trim_end_matches('/');
    let base = base.strip_suffix("/sync").unwrap_or(base);
    Ok((tls, host, port, format!("{base}{path}")))
}

/// Send one request with a JSON body and read the answer.
pub(super) async fn call(
    target: &ApiTarget,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<ApiAnswer> {
    tokio::time::timeout(target.timeout, call_once(target, method, path, body))
        .await
        .map_err(|_| Error::Protocol(format!("the server did not answer {path} in time")))?
}

async fn call_once(
    target: &ApiTarget,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<ApiAnswer> {
    let (tls, host, port, path) = api_uri(&target.server, path)?;
    let network = |e: std::io::Error| Error::Protocol(format!("cannot reach {host}:{port}: {e}"));
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(network)?;
    let mut request = Request::builder()
        .method(method)
        .uri(&path)
        .header(header::HOST, format!("{host}:{port}"));
    if let Some(token) = &target.token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(value) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(value.to_string())
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(body))
        .map_err(|e| Error::Protocol(format!("bad request: {e}")))?;
    if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| Error::Config(format!("server name {host:?}: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(target.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(network)?;
        exchange(stream, request).await
    } else {
        exchange(tcp, request).await
    }
}

async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<ApiAnswer>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| Error::Protocol(format!("HTTP: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(http)?
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok(ApiAnswer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_sits_beside_the_sync_path() {
        let (tls, host, port, path) = api_uri("wss://coach.example/sync", "/api/x").unwrap();
        assert_eq!(
            (tls, host.as_str(), port, path.as_str()),
            (true, "coach.example", 443, "/api/x")
        );
        let (tls, host, port, path) =
            api_uri("ws://127.0.0.1:3030/coachsync/sync", "/api/x").unwrap();
        assert_eq!(
            (tls, host.as_str(), port, path.as_str()),
            (false, "127.0.0.1", 3030, "/coachsync/api/x")
        );
        assert!(api_uri("http://x/sync", "/api").is_err());
    }
}
