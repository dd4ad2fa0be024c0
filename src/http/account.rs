//! Account endpoints: sign-up, login, logout, the current user, passwords, API tokens.
//!
//! The session token travels only in the `Set-Cookie` header (HttpOnly, Secure,
//! SameSite=Strict, Path=/); bodies carry the CSRF token that a page must echo.

use std::time::Instant;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{ClientIp, JsonBody, blocking};
use crate::auth::{NewSession, Principal};
use crate::control::Role;

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}

fn session_cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
    let value = format!(
        "{}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}",
        state.cookie_name
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_session(
    state: &AppState,
    status: StatusCode,
    session: &NewSession,
    body: serde_json::Value,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(state, &session.token, session.max_age_secs),
    );
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    email: String,
    #[serde(default)]
    name: Option<String>,
    password: String,
    tenant_slug: String,
    #[serde(default)]
    tenant_name: Option<String>,
}

pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignupBody>,
) -> Result<Response, ApiError> {
    let auth = state.auth.clone();
    let ua = user_agent(&headers);
    let (session, tenant) = blocking(move || {
        let name = body.name.unwrap_or_default();
        let tenant_name = body.tenant_name.unwrap_or_else(|| body.tenant_slug.clone());
        Ok(auth.signup(
            &body.email,
            &name,
            &body.password,
            &body.tenant_slug,
            &tenant_name,
            ip.as_deref(),
            ua.as_deref(),
        )?)
    })
    .await?;
    let body = serde_json::json!({ "user": session.user, "tenant": tenant, "csrf_token": session.csrf_token });
    Ok(with_session(&state, StatusCode::CREATED, &session, body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let auth = state.auth.clone();
    let ua = user_agent(&headers);
    let (session, memberships) = blocking(move || {
        let session = auth.login(
            &body.email,
            &body.password,
            ip.as_deref(),
            ua.as_deref(),
            Instant::now(),
        )?;
        let memberships = auth.coffer().control.store().memberships(session.user.id)?;
        Ok((session, memberships))
    })
    .await?;
    let body = serde_json::json!({
        "user": session.user, "memberships": memberships, "csrf_token": session.csrf_token,
    });
    Ok(with_session(&state, StatusCode::OK, &session, body))
}

pub async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Extension(principal): Extension<Principal>,
) -> Result<Response, ApiError> {
    let auth = state.auth.clone();
    blocking(move || Ok(auth.logout(&principal, ip)?)).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

pub async fn me(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let auth = state.auth.clone();
    blocking(move || {
        let user = principal.user();
        let memberships = auth.coffer().control.store().memberships(user.id)?;
        let csrf = principal
            .session_id()
            .map(|sid| auth.keys().csrf_token(sid));
        let token = match &principal {
            Principal::Token { token, .. } => Some(token.clone()),
            Principal::Session { .. } => None,
        };
        Ok(Json(serde_json::json!({
            "user": user, "memberships": memberships, "csrf_token": csrf, "api_token": token,
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    password: String,
}

pub async fn delete_me(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<Response, ApiError> {
    let auth = state.auth.clone();
    blocking(move || Ok(auth.delete_account(&principal, &body.password, ip)?)).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<ChangePasswordBody>,
) -> Result<Response, ApiError> {
    if principal.session_id().is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "session-required",
            "API tokens cannot change passwords",
        ));
    }
    let auth = state.auth.clone();
    let ua = user_agent(&headers);
    let session = blocking(move || {
        Ok(auth.change_password(
            &principal,
            &body.current_password,
            &body.new_password,
            ip.as_deref(),
            ua.as_deref(),
        )?)
    })
    .await?;
    let body = serde_json::json!({ "user": session.user, "csrf_token": session.csrf_token });
    Ok(with_session(&state, StatusCode::OK, &session, body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    email: String,
}

pub async fn request_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ResetBody>,
) -> Result<StatusCode, ApiError> {
    let auth = state.auth.clone();
    blocking(move || Ok(auth.request_reset(&body.email, ip.as_deref())?)).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmResetBody {
    token: String,
    new_password: String,
}

pub async fn confirm_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ConfirmResetBody>,
) -> Result<StatusCode, ApiError> {
    let auth = state.auth.clone();
    blocking(move || Ok(auth.confirm_reset(&body.token, &body.new_password, ip.as_deref())?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_tokens(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let auth = state.auth.clone();
    blocking(move || {
        let tokens = auth
            .coffer()
            .control
            .store()
            .tokens_of(principal.user().id)?;
        Ok(Json(serde_json::json!({ "tokens": tokens })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenBody {
    tenant: String,
    role: Role,
    #[serde(default)]
    name: Option<String>,
}

pub async fn create_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<CreateTokenBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let auth = state.auth.clone();
    blocking(move || {
        let name = body.name.unwrap_or_else(|| "api token".to_owned());
        let (secret, token) = auth.create_token(&principal, &body.tenant, body.role, &name, ip)?;
        // The one time the secret is shown: the token is the credential a program keeps.
        Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({ "token": secret, "details": token })),
        ))
    })
    .await
}

pub async fn revoke_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let auth = state.auth.clone();
    blocking(move || Ok(auth.revoke_token(&principal, &id, ip)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
