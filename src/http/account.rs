//! Account endpoints: sign-up, login, logout, the current user, passwords, API tokens.
//!
//! The session token travels only in the `Set-Cookie` header (HttpOnly, Secure,
//! SameSite=Strict, Path=/); bodies carry the CSRF token that a page must echo. Actions on
//! the account itself (password, deletion, new tokens) need a session: a program's API
//! token cannot take them. Logging out with a token revokes that token.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::CookieName;
use super::authorize::Signed;
use super::bodies::PasswordGate;
use super::dto::{
    ChangePasswordIn, ConfirmResetIn, CreateTokenIn, LoginIn, NewTokenOut, PasswordChangedOut,
    PasswordIn, ResetIn, SessionInfo, SignupIn, SignupOut, TokensOut,
};
use super::error::ApiError;
use super::extract::{ClientIp, JsonBody, blocking};
use super::telemetry::LogIds;
use crate::auth::{Auth, AuthError, NewSession, TokenSpec};
use crate::coffer::Coffer;

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}

pub(super) fn session_cookie(name: CookieName, token: &str, max_age: i64) -> HeaderValue {
    let value = format!(
        "{}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}",
        name.0
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_cookie(name: CookieName, mut response: Response, session: Option<&NewSession>) -> Response {
    let cookie = match session {
        Some(s) => session_cookie(name, &s.token, s.max_age_secs),
        None => session_cookie(name, "", 0),
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

#[utoipa::path(post, path = "/api/v1/auth/signup", request_body = SignupIn,
    responses(
        (status = 201, description = "The user and their tenant; the session cookie is set", body = SignupOut,
            headers(("set-cookie" = String, description = "The session cookie (HttpOnly, Secure, SameSite=Strict)"))),
        (status = 403, description = "Sign-up is disabled on this server (`signup-disabled`)"),
        (status = 409, description = "The e-mail address or the slug is taken"),
        (status = 422, description = "The password is too short or too long (`weak-password`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn signup(
    State(gate): State<PasswordGate>,
    State(coffer): State<Coffer>,
    State(cookie): State<CookieName>,
    ClientIp(ip): ClientIp,
    Extension(log_ids): Extension<LogIds>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignupIn>,
) -> Result<Response, ApiError> {
    let turn = gate.enter().await?;
    let ua = user_agent(&headers);
    let (session, tenant) = blocking(move || {
        let _turn = turn;
        let name = body.name.unwrap_or_default();
        let tenant_name = body.tenant_name.unwrap_or_else(|| body.tenant_slug.clone());
        Ok(coffer.signup(
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
    log_ids.set(
        Some(tenant.id.to_string()),
        Some(session.user.id.to_string()),
    );
    let out = SignupOut {
        user: (&session.user).into(),
        tenant: (&tenant).into(),
        csrf_token: session.csrf_token.clone(),
    };
    let response = (StatusCode::CREATED, Json(out)).into_response();
    Ok(with_cookie(cookie, response, Some(&session)))
}

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginIn,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionInfo,
            headers(("set-cookie" = String, description = "The session cookie (HttpOnly, Secure, SameSite=Strict)"))),
        (status = 401, description = "Wrong e-mail address or password (`bad-credentials`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 429, description = "Too many failed attempts for this account or address (`too-many-logins`)"),
    ))]
pub async fn login(
    State(gate): State<PasswordGate>,
    State(coffer): State<Coffer>,
    State(cookie): State<CookieName>,
    ClientIp(ip): ClientIp,
    Extension(log_ids): Extension<LogIds>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginIn>,
) -> Result<Response, ApiError> {
    if let Some(retry) = coffer
        .auth()
        .login_throttled(&body.email, ip.as_deref(), Instant::now())
    {
        return Err(AuthError::Throttled(retry).into());
    }
    let turn = gate.enter().await?;
    let ua = user_agent(&headers);
    let (session, info) = blocking(move || {
        let _turn = turn;
        let session = coffer.auth().login(
            &body.email,
            &body.password,
            ip.as_deref(),
            ua.as_deref(),
            Instant::now(),
        )?;
        let memberships = coffer.control().memberships(session.user.id)?;
        let info = SessionInfo::new(&session, &memberships);
        Ok((session, info))
    })
    .await?;
    log_ids.set(None, Some(session.user.id.to_string()));
    Ok(with_cookie(
        cookie,
        Json(info).into_response(),
        Some(&session),
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/logout",
    responses((status = 204, description = "Signed out; the cookie is cleared (or the API token in use is revoked)")))]
pub async fn logout(
    State(auth): State<Arc<Auth>>,
    State(cookie): State<CookieName>,
    ClientIp(ip): ClientIp,
    Signed(principal): Signed,
) -> Result<Response, ApiError> {
    blocking(move || Ok(auth.logout(&principal, ip)?)).await?;
    Ok(with_cookie(
        cookie,
        StatusCode::NO_CONTENT.into_response(),
        None,
    ))
}

#[utoipa::path(get, path = "/api/v1/auth/me",
    responses((status = 200, description = "You, your memberships and the session's CSRF token", body = SessionInfo)))]
pub async fn me(
    State(coffer): State<Coffer>,
    Signed(principal): Signed,
) -> Result<Json<SessionInfo>, ApiError> {
    blocking(move || {
        let user = principal.user();
        let memberships = coffer.control().memberships(user.id)?;
        let csrf = principal
            .session_id()
            .map(|sid| coffer.auth().keys().csrf_token(sid));
        let api_token = principal.api_token().map(Into::into);
        Ok(Json(SessionInfo {
            user: user.into(),
            memberships: memberships.iter().map(Into::into).collect(),
            csrf_token: csrf,
            api_token,
        }))
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/auth/me/delete", request_body = PasswordIn,
    responses(
        (status = 204, description = "The account is deleted; tenants you owned alone are cancelled"),
        (status = 401, description = "Wrong password"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn delete_me(
    State(coffer): State<Coffer>,
    State(gate): State<PasswordGate>,
    State(auth): State<Arc<Auth>>,
    State(cookie): State<CookieName>,
    ClientIp(ip): ClientIp,
    Signed(principal): Signed,
    JsonBody(body): JsonBody<PasswordIn>,
) -> Result<Response, ApiError> {
    let turn = gate.enter().await?;
    // Tenants the account owned alone are now cancelled: their other members may export
    // them during the grace period, then the lifecycle pass purges them.
    let grace = coffer.purge_grace();
    blocking(move || {
        let _turn = turn;
        Ok(auth.delete_account(&principal, &body.password, ip, grace)?)
    })
    .await?;
    Ok(with_cookie(
        cookie,
        StatusCode::NO_CONTENT.into_response(),
        None,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/password", request_body = ChangePasswordIn,
    responses(
        (status = 200, description = "Changed; every other session ended and a new session cookie is set", body = PasswordChangedOut,
            headers(("set-cookie" = String, description = "The new session cookie"))),
        (status = 401, description = "Wrong current password"),
        (status = 422, description = "The new password is too short or too long (`weak-password`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn change_password(
    State(gate): State<PasswordGate>,
    State(auth): State<Arc<Auth>>,
    State(cookie): State<CookieName>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Signed(principal): Signed,
    JsonBody(body): JsonBody<ChangePasswordIn>,
) -> Result<Response, ApiError> {
    let turn = gate.enter().await?;
    let ua = user_agent(&headers);
    let session = blocking(move || {
        let _turn = turn;
        Ok(auth.change_password(
            &principal,
            &body.current_password,
            &body.new_password,
            ip.as_deref(),
            ua.as_deref(),
        )?)
    })
    .await?;
    let body = PasswordChangedOut {
        user: (&session.user).into(),
        csrf_token: session.csrf_token.clone(),
    };
    Ok(with_cookie(
        cookie,
        Json(body).into_response(),
        Some(&session),
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset", request_body = ResetIn,
    responses(
        (status = 202, description = "If the address has an account, a reset token is on its way (the answer is the same either way)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn request_reset(
    State(auth): State<Arc<Auth>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ResetIn>,
) -> Result<StatusCode, ApiError> {
    // A malformed address is the caller's typo, said as such; a well-formed one gets the
    // same answer whether or not it has an account.
    crate::names::Email::parse(&body.email)
        .map_err(|e| ApiError::from(e).with_pointer("/email"))?;
    blocking(move || Ok(auth.request_reset(&body.email, ip.as_deref())?)).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", request_body = ConfirmResetIn,
    responses(
        (status = 204, description = "The password is set; every session of the account ended"),
        (status = 400, description = "The token is unknown, used or expired (`bad-reset-token`)"),
        (status = 422, description = "The new password is too short or too long (`weak-password`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn confirm_reset(
    State(gate): State<PasswordGate>,
    State(auth): State<Arc<Auth>>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ConfirmResetIn>,
) -> Result<StatusCode, ApiError> {
    // A wrong token is refused before the request waits for a hashing slot.
    let check = (auth.clone(), body.token.clone(), ip.clone());
    blocking(move || Ok(check.0.check_reset_token(&check.1, check.2.as_deref())?)).await?;
    let turn = gate.enter().await?;
    blocking(move || {
        let _turn = turn;
        Ok(auth.confirm_reset(&body.token, &body.new_password, ip.as_deref())?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/tokens",
    responses((status = 200, description = "Your API tokens (never their secrets)", body = TokensOut)))]
pub async fn list_tokens(
    State(coffer): State<Coffer>,
    Signed(principal): Signed,
) -> Result<Json<TokensOut>, ApiError> {
    blocking(move || {
        principal.require_session()?;
        // Show usage noted since the last flush, too.
        coffer.auth().flush_touches()?;
        let tokens = coffer.control().tokens_of(principal.user().id)?;
        Ok(Json(TokensOut {
            tokens: tokens.iter().map(Into::into).collect(),
        }))
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/auth/tokens", request_body = CreateTokenIn,
    responses(
        (status = 201, description = "The token: its secret is in this answer only", body = NewTokenOut),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn create_token(
    State(auth): State<Arc<Auth>>,
    ClientIp(ip): ClientIp,
    Signed(principal): Signed,
    JsonBody(body): JsonBody<CreateTokenIn>,
) -> Result<(StatusCode, Json<NewTokenOut>), ApiError> {
    blocking(move || {
        let name = body.name.unwrap_or_else(|| "api token".to_owned());
        let spec = TokenSpec {
            role: body.role,
            name: &name,
            expires_in_days: body.expires_in_days,
            scopes: &body.scopes,
        };
        let (secret, token) = auth.create_token(&principal, &body.tenant, &spec, ip)?;
        // The one time the secret is shown: the token is the credential a program keeps.
        Ok((
            StatusCode::CREATED,
            Json(NewTokenOut {
                token: secret,
                details: (&token).into(),
            }),
        ))
    })
    .await
}

#[utoipa::path(delete, path = "/api/v1/auth/tokens/{id}",
    params(("id" = String, Path, description = "The token's id", max_length = 64, example = "7af8cc310cf6b920bb2147184e343934")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_token(
    State(auth): State<Arc<Auth>>,
    ClientIp(ip): ClientIp,
    Signed(principal): Signed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || Ok(auth.revoke_token(&principal, &id, ip)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
