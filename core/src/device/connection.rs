//! One connection attempt to the server and, if it succeeds, the pumps that carry
//! frames between the socket and the device's task.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::runtime::Input;
use crate::sync::ConnId;

/// Connect to `url` and pump frames until either side ends; every outcome is
/// reported to the device's task as an [`Input`].
pub(super) fn spawn(
    url: String,
    conn: ConnId,
    timeout: Duration,
    inputs: mpsc::UnboundedSender<Input>,
) {
    tokio::spawn(async move {
        let error = run(&url, conn, timeout, &inputs).await;
        let _ = inputs.send(Input::Disconnected { conn, error });
    });
}

/// Returns why the connection ended (or never started).
async fn run(
    url: &str,
    conn: ConnId,
    timeout: Duration,
    inputs: &mpsc::UnboundedSender<Input>,
) -> String {
    let ws = match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return format!("cannot connect to {url}: {e}"),
        Err(_) => return format!("cannot connect to {url}: no answer within {timeout:?}"),
    };
    let (outbound, mut frames) = mpsc::unbounded_channel::<Vec<u8>>();
    if inputs.send(Input::Connected { conn, outbound }).is_err() {
        return "the device stopped".into();
    }
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
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
            message = stream.next() => match message {
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
            },
        }
    }
}
