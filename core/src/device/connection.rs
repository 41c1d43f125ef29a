//! One connection attempt to the server and, if it succeeds, the pumps that carry
//! frames between the socket and the device's task.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::runtime::Input;
use crate::sync::ConnId;

/// Connect to `url` and pump frames until either side ends; every outcome is
/// reported to the device's task as an [`Input`].
pub(super) fn spawn(
    url: String,
    token: Option<String>,
    tls: Arc<rustls::ClientConfig>,
    conn: ConnId,
    timeouts: Timeouts,
    inputs: mpsc::UnboundedSender<Input>,
) {
    tokio::spawn(async move {
        let error = run(&url, token.as_deref(), tls, conn, timeouts, &inputs).await;
        let _ = inputs.send(Input::Disconnected { conn, error });
    });
}

/// How long a connection may take to come up, and to stay silent once up.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub connect: Duration,
    pub idle: Duration,
}

/// The TLS settings of `wss://` connections: Mozilla's public roots (built in, so
/// they are the same on every platform) and any extra ones the app trusts.
pub(super) fn tls_config(extra_roots: &[Vec<u8>]) -> crate::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| crate::Error::Config(format!("a trusted certificate is unusable: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| crate::Error::Config(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Returns why the connection ended (or never started).
async fn run(
    url: &str,
    token: Option<&str>,
    tls: Arc<rustls::ClientConfig>,
    conn: ConnId,
    Timeouts {
        connect: timeout,
        idle,
    }: Timeouts,
    inputs: &mpsc::UnboundedSender<Input>,
) -> String {
    let mut request = match url.into_client_request() {
        Ok(request) => request,
        Err(e) => return format!("cannot connect to {url}: {e}"),
    };
    if let Some(token) = token {
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(value) => {
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            Err(_) => return "the token cannot be sent in a header".into(),
        }
    }
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        // Replies are often several small frames in a row.
        true,
        Some(Connector::Rustls(tls)),
    );
    let ws = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return format!("cannot connect to {url}: {e}"),
        Err(_) => return format!("cannot connect to {url}: no answer within {timeout:?}"),
    };
    let (outbound, mut frames) = mpsc::unbounded_channel::<Vec<u8>>();
    if inputs.send(Input::Connected { conn, outbound }).is_err() {
        return "the device stopped".into();
    }
    let (mut sink, mut stream) = ws.split();
    // The server pings every few seconds: a connection that hears nothing at all for
    // `idle` is gone (a phone that changed networks leaves the old socket half open).
    let silence = tokio::time::sleep(idle);
    tokio::pin!(silence);
    loop {
        tokio::select! {
            () = &mut silence => {
                return format!("the server sent nothing for {idle:?}");
            }
            frame = frames.recv() => match frame {
                Some(bytes) => {
                    if let Err(e) = sink.send(WsMessage::Binary(bytes.into())).await {
                        return format!("sending to the server failed: {e}");
                    }
                }
                None => {
                    // The device closed the connection (or stopped).
                    let close = CloseFrame {
                        code: CloseCode::Normal,
                        reason: "device closed the connection".into(),
                    };
                    let _ = sink.send(WsMessage::Close(Some(close))).await;
                    let _ = sink.close().await;
                    return "closed by the device".into();
                }
            },
            message = stream.next() => {
                silence.as_mut().reset(tokio::time::Instant::now() + idle);
                match message {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    if inputs.send(Input::Frame { conn, bytes: bytes.to_vec() }).is_err() {
                        return "the device stopped".into();
                    }
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    return match frame {
                        Some(f) => format!("the server closed the connection ({}: {})", u16::from(f.code), f.reason),
                        None => "the server closed the connection".into(),
                    };
                }
                // Pings are answered by the library; the protocol has no text frames.
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("the connection failed: {e}"),
                None => return "the connection ended".into(),
                }
            }
        }
    }
}
