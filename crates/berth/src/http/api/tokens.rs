//! Personal access tokens, under `/api/berth/v1` (Harbor has no such endpoint):
//! `GET|POST /api/berth/v1/users/current/tokens`, `DELETE .../tokens/{id}`.

use super::{ApiResult, Caller, require_login, time};
use crate::app::AppState;
use crate::domain::tokens::{self, TokenRequest};
use crate::http::ClientAddr;
use crate::meta::AccessTokenRow;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/berth/v1/users/current/tokens", get(list).post(create))
        .route("/api/berth/v1/users/current/tokens/{id}", delete(revoke))
}

fn view(t: &AccessTokenRow) -> Value {
    let parse = |s: &Option<String>| s.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok());
    json!({
        "id": t.id,
        "name": t.name,
        "projects": parse(&t.projects),
        "actions": parse(&t.actions),
        "expires_at": t.expires_at.map(time),
        "creation_time": time(t.creation_time),
        "last_used": t.last_used.map(time),
    })
}

async fn list(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Value>>> {
    require_login(&caller.0)?;
    Ok(Json(tokens::list(&app, &caller.0).await?.iter().map(view).collect()))
}

async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Response> {
    require_login(&caller.0)?;
    let a = super::caller_audit(&caller, &headers, peer);
    let (row, secret) = tokens::create(&app, &caller.0, req, a).await?;
    let mut body = view(&row);
    body["token"] = json!(secret);
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("/api/berth/v1/users/current/tokens/{}", row.id)) {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(r)
}

async fn revoke(
    State(app): State<AppState>,
    caller: Caller,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    require_login(&caller.0)?;
    let a = super::caller_audit(&caller, &headers, peer);
    tokens::revoke(&app, &caller.0, id, a).await?;
    Ok(StatusCode::OK)
}
