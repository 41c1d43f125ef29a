//! One WebSocket connection: frames in to the driver, frames out from it, pings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use coachsync_core::sync::ConnId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::driver::{DriverHandle, DriverMsg, Outbound, Session};
use crate::metrics::Metrics;
use crate::rate_limit::{Bucket, RateLimits};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Limits of one connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Frames queued for sending before the connection is dropped.
    pub queue_len: usize,
    /// Close after this long without hearing anything.
    pub idle_timeout: Duration,
    /// Ping this often.
    pub ping_interval: Duration,
}

/// Serve one upgraded socket until it closes.
pub async fn serve_socket(
    mut socket: WebSocket,
    driver: DriverHandle,
    limits: ConnLimits,
    session: Session,
    rates: RateLimits,
    metrics: Arc<Metrics>,
) {
    let conn = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
    let (tx, mut rx) = mpsc::channel(limits.queue_len);
    let user = session.who.user().map(|u| u.name.clone());
    if driver
        .send(DriverMsg::Connected {
            conn,
            outbound: tx,
            session,
        })
        .await
        .is_err()
    {
        return;
    }
    let mut bucket = Bucket::new(rates.connection, Instant::now());
    let mut throttled_logged = false;
    tracing::debug!(conn = conn.0, "connection opened");
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.reset();
    let mut last_heard = Instant::now();
    let reason = loop {
        tokio::select! {
            incoming = socket.recv() => {
                last_heard = Instant::now();
                if let Some(Ok(WsMessage::Binary(bytes))) = &incoming {
                    let now = Instant::now();
                    let wait = bucket.take(bytes.len(), now).max(
                        user.as_deref().map_or(Duration::ZERO, |u| rates.take_user(u, bytes.len(), now)),
                    );
                    if !wait.is_zero() {
                        metrics.throttled.inc();
                        if !throttled_logged {
                            throttled_logged = true;
                            tracing::warn!(conn = conn.0, user = user.as_deref().unwrap_or("anonymous"), "over the rate limit; reading more slowly");
                        }
                        // Not reading is the backpressure; pings and closes wait too.
                        tokio::time::sleep(wait).await;
                    }
                }
                match incoming {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        if driver.send(DriverMsg::Frame { conn, bytes: bytes.to_vec() }).await.is_err() {
                            break "server stopping".to_owned();
                        }
                    }
                    Some(Ok(WsMessage::Text(text))) => {
                        // Not a protocol frame; the engine answers it as one that does
                        // not decode (error, then close).
                        if driver.send(DriverMsg::Frame { conn, bytes: text.as_bytes().to_vec() }).await.is_err() {
                            break "server stopping".to_owned();
                        }
                    }
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                    Some(Ok(WsMessage::Close(_))) | None => break "peer closed".to_owned(),
                    Some(Err(e)) => match too_long(e) {
                        Ok((size, max_size)) => {
                            let reason = format!("a frame of {size} bytes is over the limit of {max_size} bytes");
                            refuse_frame(&mut socket, &reason).await;
                            break reason;
                        }
                        Err(e) => break format!("socket error: {e}"),
                    },
                }
            }
            out = rx.recv() => {
                match out {
                    Some(Outbound::Frame(frame)) => {
                        if let Err(e) = socket.send(WsMessage::Binary(frame.into())).await {
                            break format!("send failed: {e}");
                        }
                    }
                    Some(Outbound::Close { code, reason }) => {
                        let _ = socket
                            .send(WsMessage::Close(Some(CloseFrame {
                                code,
                                reason: truncate(&reason).into(),
                            })))
                            .await;
                        break reason;
                    }
                    None => break "dropped by the server".to_owned(),
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > limits.idle_timeout {
                    break "idle timeout".to_owned();
                }
                if socket.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    break "ping failed".to_owned();
                }
            }
        }
    };
    tracing::debug!(conn = conn.0, %reason, "connection closed");
    let _ = driver.send(DriverMsg::Disconnected { conn }).await;
}

/// The sizes, if the error is a frame over the configured limit.
fn too_long(e: axum::Error) -> Result<(usize, usize), axum::BoxError> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::CapacityError;
    match e.into_inner().downcast::<WsError>() {
        Ok(e) => match *e {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                Ok((size, max_size))
            }
            other => Err(Box::new(other)),
        },
        Err(other) => Err(other),
    }
}

/// Tell the peer why, as the protocol does for any refused input, then close with
/// the WebSocket code for "too big".
async fn refuse_frame(socket: &mut WebSocket, reason: &str) {
    let error = coachsync_core::Message::Error {
        message: reason.to_owned(),
        sender_id: None,
        target_id: None,
    };
    let _ = socket.send(WsMessage::Binary(error.encode().into())).await;
    let _ = socket
        .send(WsMessage::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::SIZE,
            reason: truncate(reason).into(),
        })))
        .await;
}

/// Close reasons must fit a control frame (125 bytes, less the code).
fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
