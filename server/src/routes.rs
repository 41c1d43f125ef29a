//! The HTTP routes: `/sync` (WebSocket), `/api/docs/{id}/grants`, `/api/audit`,
//! `/api/invites/{code}`, `/api/me`, `/healthz`, `/metrics`, and the coach app at `/`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use coachsync_core::access::{Access, Principal, Subject, UserRole, Who};
use coachsync_core::store::Store;
use coachsync_core::{AutomergeUrl, DocumentId};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::accounts::SharedAccounts;
use crate::app_files::AppFiles;
use crate::audit::{AuditLog, Record};
use crate::driver::{DriverHandle, DriverMsg, GrantRequest, Session};
use crate::jwt::JwtVerifier;
use crate::metrics::Metrics;
use crate::rate_limit::{LoginRefusals, RateLimits};
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
    /// Users and tokens.
    pub accounts: SharedAccounts,
    /// Whether `/sync` takes connections without a token (demos and tests only).
    pub allow_anonymous: bool,
    /// The store, for reading the audit log.
    pub store: Arc<dyn Store>,
    /// Rate limits per connection and per user.
    pub rates: RateLimits,
    /// Refused logins per address, to bound their audit entries.
    pub login_refusals: LoginRefusals,
    /// JWTs from an external identity provider, if configured.
    pub jwt: Option<Arc<JwtVerifier>>,
    /// The coach app's files.
    pub app: AppFiles,
    /// The audit log, for entries written in the same batch as what they record.
    pub audit_log: Arc<AuditLog>,
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sync", get(sync))
        .route("/api/docs/{document}/grants", post(grant).delete(revoke))
        .route("/api/docs/{document}/access-log", get(access_log))
        .route("/api/audit", get(audit))
        .route("/api/invites/{code}", post(redeem_invite))
        .route("/api/me", get(me))
        .route("/api/docs", get(readable))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(app)
        .with_state(state)
}

/// The token a request carries: `Authorization: Bearer`, else `?token=` (browsers
/// cannot set headers on a WebSocket).
fn token<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| query.get("token").map(String::as_str))
}

/// An API error: its status and a JSON body `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

impl AppState {
    /// Ask the driver something and wait for its answer; 503 while it stops.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> DriverMsg,
    ) -> Result<T, ApiError> {
        let stopping = || error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
        let (reply, answer) = oneshot::channel();
        self.driver
            .send(request(reply))
            .await
            .map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())
    }

    /// Queue an audit entry; the driver writes it with its next group commit.
    fn audit(&self, record: Record) {
        if let Err(e) = self.driver.try_send(DriverMsg::Audit(record)) {
            tracing::error!(error = %e, "an audit entry could not be queued");
        }
    }

    /// The user behind a request, or the 401 to answer. Refusals are audited.
    fn authenticate(
        &self,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
        from: SocketAddr,
    ) -> Result<(Principal, String), ApiError> {
        let Some(token) = token(headers, query) else {
            self.refuse_login(from, "no token");
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required",
            ));
        };
        let accounts = self.accounts.read().expect("accounts lock");
        if let Some(found) = accounts.authenticate(token, coachsync_core::utc::unix_ms()) {
            return Ok(found);
        }
        // Not one of ours: perhaps the identity provider's.
        let why = match self.jwt.as_deref().map(|jwt| jwt.verify(token)) {
            Some(Ok(verified)) => match accounts.user(&verified.user).filter(|u| !u.disabled) {
                Some(user) => return Ok((user.principal(), verified.id)),
                None => format!(
                    "the identity provider's user {:?} is not a coachsync user",
                    verified.user
                ),
            },
            Some(Err(why)) => why,
            None => "unknown, revoked or expired token".to_owned(),
        };
        drop(accounts);
        self.refuse_login(from, &why);
        Err(error(
            StatusCode::UNAUTHORIZED,
            "the token is unknown, revoked or expired",
        ))
    }

    fn refuse_login(&self, from: SocketAddr, why: &str) {
        self.metrics.auth_failures.inc();
        if !self
            .login_refusals
            .audit(from.ip(), tokio::time::Instant::now())
        {
            tracing::debug!(%from, why, "refused login (not audited: over the per-minute count)");
            return;
        }
        self.audit(Record {
            who: "unknown".into(),
            action: "login-refused",
            from: Some(from.to_string()),
            detail: Some(why.into()),
            ..Record::default()
        });
    }
}

async fn sync(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    // Refused here, before the upgrade: no message of an unauthenticated peer is
    // ever read.
    let session = if token(&headers, &query).is_none() && state.allow_anonymous {
        Session {
            who: Who::Anonymous,
            token_id: None,
            from: from.to_string(),
        }
    } else {
        match state.authenticate(&headers, &query, from) {
            Ok((principal, token_id)) => {
                state.audit(Record {
                    who: principal.name.clone(),
                    action: "login",
                    from: Some(from.to_string()),
                    detail: Some(format!("token {token_id}")),
                    ..Record::default()
                });
                Session {
                    who: Who::User(Arc::new(principal)),
                    token_id: Some(token_id),
                    from: from.to_string(),
                }
            }
            Err(e) => return e.into_response(),
        }
    };
    let driver = state.driver.clone();
    let limits = state.limits;
    let rates = state.rates.clone();
    let metrics = state.metrics.clone();
    ws.max_message_size(state.max_frame_bytes)
        .max_frame_size(state.max_frame_bytes)
        .on_upgrade(move |socket| serve_socket(socket, driver, limits, session, rates, metrics))
}

/// The document of an API path: a bare ID or an `automerge:` URL.
fn document_of(path: &str) -> Result<DocumentId, ApiError> {
    let parsed = match path.strip_prefix("automerge:") {
        Some(_) => path.parse::<AutomergeUrl>().map(|u| u.document_id),
        None => path.parse::<DocumentId>(),
    };
    parsed.map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))
}

/// The subject of a grant body or query: `{"user": …}` or `{"group": …}`.
fn subject_of(state: &AppState, body: &Value) -> Result<(Subject, Option<UserRole>), ApiError> {
    match (
        body.get("user").and_then(Value::as_str),
        body.get("group").and_then(Value::as_str),
    ) {
        (Some(user), None) => {
            let role = state
                .accounts
                .read()
                .expect("accounts lock")
                .user(user)
                .map(|u| u.role)
                .ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("no user named {user:?}")))?;
            Ok((Subject::User(user.to_owned()), Some(role)))
        }
        (None, Some(group)) => Ok((Subject::Group(group.to_owned()), None)),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "name exactly one of \"user\" or \"group\"",
        )),
    }
}

async fn grant(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    Path(document): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (granter, _) = state.authenticate(&headers, &query, from)?;
    let body = json_object(&body)?;
    let access = match body
        .get("access")
        .and_then(Value::as_str)
        .map(Access::parse)
    {
        Some(Ok(a)) => a,
        Some(Err(e)) => return Err(error(StatusCode::BAD_REQUEST, e.to_string())),
        None => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "\"access\" (\"read\" or \"write\") is required",
            ));
        }
    };
    change_access(state, granter, from, &document, &body, Some(access)).await
}

async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    Path(document): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (granter, _) = state.authenticate(&headers, &query, from)?;
    // The subject from a JSON body, or from `?user=` / `?group=`.
    let body = if body.is_empty() {
        json!({ "user": query.get("user"), "group": query.get("group") })
    } else {
        json_object(&body)?
    };
    change_access(state, granter, from, &document, &body, None).await
}

fn json_object(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )),
    }
}

async fn change_access(
    state: AppState,
    granter: Principal,
    from: SocketAddr,
    document: &str,
    body: &Value,
    access: Option<Access>,
) -> Result<Response, ApiError> {
    let document = document_of(document)?;
    let (subject, subject_role) = subject_of(&state, body)?;
    let answer = state
        .ask(|reply| {
            DriverMsg::Grant(GrantRequest {
                granter,
                document: document.clone(),
                subject: subject.clone(),
                subject_role,
                access,
                from: from.to_string(),
                reply,
            })
        })
        .await?;
    match answer {
        Ok(()) => {
            let mut out = json!({ "document": document.to_string() });
            match &subject {
                Subject::User(u) => out["user"] = json!(u),
                Subject::Group(g) => out["group"] = json!(g),
            }
            out["access"] = access.map_or(Value::Null, |a| json!(a.as_str()));
            Ok(axum::Json(out).into_response())
        }
        Err(e) => {
            use coachsync_core::Error as E;
            let status = match e {
                E::NotFound(_) => StatusCode::NOT_FOUND,
                E::Forbidden(_) => StatusCode::FORBIDDEN,
                E::Access(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err(error(status, e.to_string()))
        }
    }
}

/// Who opened, synced, shared or was refused a document, and when: for its owner and
/// its relationship's members. Anyone else gets 404, as for a missing document.
async fn access_log(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    Path(document): Path<String>,
) -> Result<Response, ApiError> {
    let (user, _) = state.authenticate(&headers, &query, from)?;
    let document = document_of(&document)?;
    let may_see = state
        .ask(|reply| DriverMsg::MaySeeLog {
            user,
            document: document.clone(),
            reply,
        })
        .await?;
    if !may_see {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no document {document}"),
        ));
    }
    let store = state.store.clone();
    let id = document.to_string();
    let internal = |e: String| error(StatusCode::INTERNAL_SERVER_ERROR, e);
    let entries = tokio::task::spawn_blocking(move || AuditLog::read_document(&*store, &id))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| internal(e.to_string()))?;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| json!({ "time": e.time, "who": e.who, "action": e.action, "subject": e.subject, "detail": e.detail }))
        .collect();
    Ok(axum::Json(entries).into_response())
}

async fn audit(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (user, _) = state.authenticate(&headers, &query, from)?;
    if user.role != UserRole::Admin {
        return Err(error(
            StatusCode::FORBIDDEN,
            "only admins read the audit log",
        ));
    }
    let number = |key: &str, default: u64| -> Result<u64, ApiError> {
        query.get(key).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| error(StatusCode::BAD_REQUEST, format!("{key} must be a number")))
        })
    };
    let after = number("after", 0)?;
    let limit = number("limit", 1000)?.min(10_000) as usize;
    let store = state.store.clone();
    let internal = |e: String| error(StatusCode::INTERNAL_SERVER_ERROR, e);
    let entries = tokio::task::spawn_blocking(move || AuditLog::read(&*store, after, limit))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| internal(e.to_string()))?;
    Ok(axum::Json(entries).into_response())
}

/// The store is opened before the listener is bound, so answering at all means it
/// is open; a closed driver means the server is stopping.
/// 200 while serving with a store that answers; 503 while stopping, or when the
/// store (a database) does not answer within two seconds.
async fn healthz(State(state): State<AppState>) -> Response {
    if state.driver.is_closed() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    let store = state.store.clone();
    let checked = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::task::spawn_blocking(move || store.check()),
    )
    .await;
    match checked {
        Ok(Ok(Ok(()))) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Ok(Err(e))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store does not answer: {e}\n"),
        )
            .into_response(),
        Ok(Err(_)) | Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store does not answer in time\n",
        )
            .into_response(),
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

/// The coach app: any other `GET` or `HEAD`.
async fn app(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "not found").into_response();
    }
    state.app.response(uri.path())
}

/// Exchange a one-time sign-in code for a device token.
async fn redeem_invite(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let accounts = state.accounts.clone();
    let audit = state.audit_log.clone();
    let where_from = from.to_string();
    let outcome = tokio::task::spawn_blocking(move || {
        crate::invites::redeem(
            &*store,
            &accounts,
            &code,
            coachsync_core::utc::unix_ms(),
            |user| {
                audit.write(Record {
                    who: user.name.clone(),
                    action: "invite-redeemed",
                    from: Some(where_from),
                    ..Record::default()
                })
            },
        )
    })
    .await
    .map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the exchange failed: {e}"),
        )
    })?
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match outcome {
        Ok((user, token)) => Ok(axum::Json(json!({
            "token": token,
            "user": {"name": user.name, "role": user.role, "org": user.org, "groups": user.groups},
        }))
        .into_response()),
        Err(refusal) => {
            state.refuse_login(from, &format!("sign-in link: {refusal:?}"));
            let status = match refusal {
                crate::invites::Refusal::Unknown => StatusCode::NOT_FOUND,
                _ => StatusCode::GONE,
            };
            Err(error(status, refusal.message()))
        }
    }
}

/// Who the token is for, and the coaching relationships they belong to.
async fn me(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (user, _) = state.authenticate(&headers, &query, from)?;
    let relationships: Vec<Value> = state
        .store
        .meta(coachsync_core::access::RELATIONSHIP_KEY_PREFIX)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .into_iter()
        .filter_map(|(_, v)| {
            serde_json::from_slice::<coachsync_core::access::Relationship>(&v).ok()
        })
        .filter(|r| r.is_member(&user))
        .map(|r| serde_json::to_value(&r).expect("a relationship serializes"))
        .collect();
    Ok(axum::Json(json!({
        "name": user.name,
        "role": user.role,
        "org": user.org,
        "groups": user.groups,
        "relationships": relationships,
    }))
    .into_response())
}

/// The documents the token's user may read, each with its kind, class,
/// relationship, owner and the user's access (`read` or `write`): how an app finds
/// what was shared with its user on another device.
async fn readable(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (user, _) = state.authenticate(&headers, &query, from)?;
    let listed = state
        .ask(|reply| DriverMsg::Readable { user, reply })
        .await?;
    Ok(axum::Json(Value::Array(listed)).into_response())
}
