//! The HTTP routes: `/sync` (WebSocket), `/healthz`, `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::driver::DriverHandle;
use crate::metrics::Metrics;
use crate::ws::{ConnLimits, serve_socket};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The driver.
    pub driver: DriverHandle,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-connection limits.
    pub limits: ConnLimits,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sync", get(sync))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn sync(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let driver = state.driver.clone();
    let limits = state.limits;
    ws.max_message_size(state.max_frame_bytes)
        .max_frame_size(state.max_frame_bytes)
        .on_upgrade(move |socket| serve_socket(socket, driver, limits))
}

/// The store is opened before the listener is bound, so answering at all means it
/// is open; a closed driver means the server is stopping.
async fn healthz(State(state): State<AppState>) -> Response {
    if state.driver.is_closed() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
