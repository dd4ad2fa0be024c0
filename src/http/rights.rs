//! The customer's rights as endpoints (P9, P11, P15): everything held about me in one
//! call, correcting my name and e-mail, my sessions (list and revoke), my account's
//! audit events; and the audit log's reading for every reader, with one filter shape
//! (time range, action, actor, cursor) shared by the tenant's, the operator's and mine.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::authorize::Signed;
use super::dto::{
    AuditEventOut, AuditPage, LoginOut, MembershipOut, SessionOut, SessionsOut, TokenOut, UserOut,
    session_handle,
};
use super::error::{ApiError, ErrorCode};
use super::extract::{ClientIp, JsonBody, blocking};
use crate::audit::{Actor, AuditAction, EventQuery, Scope, StoredEvent};
use crate::coffer::Coffer;
use crate::control::User;
use crate::names::Email;

/// Audit filters and the cursor: `?after=SEQ&limit=N&since=TIME&until=TIME&action=NAME&actor=ACTOR`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Events after this sequence number (the `next` of the previous page).
    #[param(example = 42)]
    after: Option<u64>,
    /// Events per page (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    limit: Option<u32>,
    /// Events at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-30T12:00:00Z")]
    since: Option<String>,
    /// Events before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-30T12:00:00Z")]
    until: Option<String>,
    /// Only this action.
    #[param(value_type = Option<crate::audit::AuditAction>, example = "file.write")]
    action: Option<String>,
    /// Only this actor: `user:<id>`, `token:<id>`, `operator:cli[:name]`, `system` or
    /// `anonymous`.
    #[param(
        max_length = 128,
        pattern = "^(system|anonymous|operator:cli(:.+)?|user:[0-9a-f]{32}|token:.*)$",
        example = "operator:cli"
    )]
    actor: Option<String>,
}

/// A page size: `default` when absent, refused outside 1..=`max` (not silently
/// clamped, so a client learns its page is not the size it asked for).
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(bad_query(&format!("limit is 1 to {max}"), "limit")),
    }
}

fn bad_query(detail: &str, name: &str) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidQuery, detail.to_owned())
        .with_pointer(&format!("/{name}"))
}

/// A time filter in the stored format (so that comparisons are by time).
fn time_filter(value: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    value
        .map(|v| {
            crate::clock::parse_stamp(&v)
                .map(crate::db::timestamp)
                .ok_or_else(|| bad_query("times are RFC 3339 (2026-11-30T12:00:00Z)", name))
        })
        .transpose()
}

/// Reads one page of `scope`'s events through `filter`.
pub async fn audit_page(
    coffer: Coffer,
    scope: Scope,
    filter: AuditFilter,
) -> Result<AuditPage, ApiError> {
    let limit = page_limit(filter.limit, 100, 1000)?;
    let since = time_filter(filter.since, "since")?;
    let until = time_filter(filter.until, "until")?;
    if let Some(action) = &filter.action
        && AuditAction::parse(action).is_none()
    {
        return Err(bad_query("unknown action", "action"));
    }
    if let Some(actor) = &filter.actor
        && Actor::parse(actor).is_none()
    {
        return Err(bad_query(
            "actor is user:<id>, token:<id>, operator:cli[:name], system or anonymous",
            "actor",
        ));
    }
    let events: Vec<StoredEvent> = blocking(move || {
        coffer
            .audit()
            .query(&EventQuery {
                scope,
                after_seq: i64::try_from(filter.after.unwrap_or(0))
                    .map_err(|_| bad_query("after is a sequence number", "after"))?,
                limit,
                since: since.as_deref(),
                until: until.as_deref(),
                action: filter.action.as_deref(),
                actor: filter.actor.as_deref(),
            })
            .map_err(ApiError::internal)
    })
    .await?;
    let next = (events.len() as u32 == limit)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(AuditPage {
        events: events.iter().map(Into::into).collect(),
        next,
    })
}

/// Every event (operators).
#[utoipa::path(get, path = "/api/v1/admin/audit", params(AuditFilter),
    responses((status = 200, description = "One page of every audit event, oldest first", body = AuditPage)))]
pub async fn all_events(
    State(coffer): State<Coffer>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(Json(audit_page(coffer, Scope::All, filter).await?))
}

/// My account's events (logins, password and profile changes).
#[utoipa::path(get, path = "/api/v1/auth/me/events", params(AuditFilter),
    responses((status = 200, description = "One page of your account's audit events", body = AuditPage)))]
pub async fn my_events(
    State(coffer): State<Coffer>,
    Signed(principal): Signed,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>, ApiError> {
    let scope = Scope::Account(principal.user().id);
    Ok(Json(audit_page(coffer, scope, filter).await?))
}

/// Everything Coffer holds about me (P9), in one document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyDataOut {
    #[schema(examples("2026-11-30T12:00:00.000Z"))]
    pub generated_at: String,
    pub user: UserOut,
    pub memberships: Vec<MembershipOut>,
    pub sessions: Vec<SessionOut>,
    pub api_tokens: Vec<TokenOut>,
    pub logins: Vec<LoginOut>,
    /// My account's audit events (a tenant's content events are in its export).
    pub account_events: Vec<AuditEventOut>,
}

/// The most account events and logins one access request returns.
const MY_DATA_LIMIT: u32 = 10_000;

#[utoipa::path(get, path = "/api/v1/auth/me/data",
    responses((status = 200, description = "Everything held about you", body = MyDataOut)))]
pub async fn my_data(
    State(coffer): State<Coffer>,
    Signed(principal): Signed,
) -> Result<Json<MyDataOut>, ApiError> {
    blocking(move || {
        Ok(Json(personal_data(
            &coffer,
            principal.user(),
            principal.session_id(),
        )?))
    })
    .await
}

/// Everything held about `user` (also `coffer user show`); `current_sid` marks the session
/// in use.
pub fn personal_data(
    coffer: &Coffer,
    user: &User,
    current_sid: Option<&str>,
) -> Result<MyDataOut, ApiError> {
    let control = coffer.control();
    let events = coffer
        .audit()
        .query(&EventQuery {
            scope: Scope::Account(user.id),
            limit: MY_DATA_LIMIT,
            ..Default::default()
        })
        .map_err(ApiError::internal)?;
    Ok(MyDataOut {
        generated_at: crate::clock::stamp(coffer.clock().as_ref()),
        user: user.into(),
        memberships: control
            .memberships(user.id)?
            .iter()
            .map(Into::into)
            .collect(),
        sessions: control
            .sessions_of(user.id)?
            .iter()
            .map(|s| SessionOut::new(s, current_sid))
            .collect(),
        api_tokens: control.tokens_of(user.id)?.iter().map(Into::into).collect(),
        logins: control
            .user_logins(user.id, MY_DATA_LIMIT)?
            .iter()
            .map(Into::into)
            .collect(),
        account_events: events.iter().map(Into::into).collect(),
    })
}

/// A correction of my profile (P11): either or both fields.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeIn {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        examples("Ada Lovelace")
    )]
    name: Option<String>,
    #[schema(
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f][^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*[^\s@.\x00-\x1f\x7f-\x9f]$",
        examples("ada@example.com")
    )]
    email: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/auth/me", request_body = UpdateMeIn,
    responses(
        (status = 200, description = "Your corrected profile", body = UserOut),
        (status = 409, description = "The e-mail address belongs to another account (`email-taken`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn update_me(
    State(coffer): State<Coffer>,
    ClientIp(ip): ClientIp,
    Signed(principal): Signed,
    JsonBody(body): JsonBody<UpdateMeIn>,
) -> Result<Json<UserOut>, ApiError> {
    principal.require_session()?;
    let email = body
        .email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(|e| ApiError::from(e).with_pointer("/email"))?;
    let name = body
        .name
        .map(|n| crate::names::display_name(&n))
        .transpose()
        .map_err(|e| ApiError::from(e).with_pointer("/name"))?;
    if name.as_deref() == Some("") {
        return Err(
            ApiError::bad_request(ErrorCode::InvalidName, "a name cannot be empty")
                .with_pointer("/name"),
        );
    }
    let caller = principal.caller(ip);
    let user = blocking(move || {
        Ok(coffer.control().update_profile(
            &caller,
            principal.user().id,
            name.as_deref(),
            email.as_ref(),
        )?)
    })
    .await?;
    Ok(Json((&user).into()))
}

#[utoipa::path(get, path = "/api/v1/auth/sessions",
    responses((status = 200, description = "Your sessions", body = SessionsOut)))]
pub async fn sessions(
    State(coffer): State<Coffer>,
    Signed(principal): Signed,
) -> Result<Json<SessionsOut>, ApiError> {
    blocking(move || {
        let list = coffer.control().sessions_of(principal.user().id)?;
        Ok(Json(SessionsOut {
            sessions: list
                .iter()
                .map(|s| SessionOut::new(s, principal.session_id()))
                .collect(),
        }))
    })
    .await
}

/// Revokes one of my sessions by its public handle (a person's session only).
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}",
    params(("id" = String, Path, description = "The session's handle (`id` in the list)", pattern = "^[0-9a-f]{32}$", example = "5d41402abc4b2a76b9719d911017c592")),
    responses((status = 204, description = "The session has ended")))]
pub async fn revoke_session(
    State(coffer): State<Coffer>,
    ClientIp(ip): ClientIp,
    Signed(principal): Signed,
    Path(handle): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require_session()?;
    let caller = principal.caller(ip);
    blocking(move || {
        let user = principal.user().id;
        let control = coffer.control();
        let session = control
            .sessions_of(user)?
            .into_iter()
            .find(|s| session_handle(&s.id) == handle)
            .ok_or_else(ApiError::not_found)?;
        control.end_session(&caller, user, &session.id, false)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
