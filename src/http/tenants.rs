//! Tenant endpoints: the tenant itself, its members, its audit log, its usage, search.
//!
//! Object-level rules live here on top of the route permission: an admin may manage
//! members but never add, change or remove an owner, and never grant the owner role.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{JsonBody, blocking};
use crate::auth::TenantAccess;
use crate::auth::permission::may_grant;
use crate::control::Role;
use crate::vault::path::{Email, UserId};

pub async fn show(Extension(access): Extension<TenantAccess>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "tenant": access.tenant, "role": access.role }))
}

pub async fn members(
    State(state): State<AppState>,
    Extension(access): Extension<TenantAccess>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let coffer = state.coffer.clone();
    let members = blocking(move || Ok(coffer.control.store().members(access.tenant.id)?)).await?;
    Ok(Json(serde_json::json!({ "members": members })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    email: String,
    role: Role,
}

pub async fn add_member(
    State(state): State<AppState>,
    Extension(access): Extension<TenantAccess>,
    JsonBody(body): JsonBody<AddMember>,
) -> Result<StatusCode, ApiError> {
    if !may_grant(access.role, body.role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "you cannot grant this role",
        ));
    }
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::from(e).with_pointer("/email".into()))?;
    let coffer = state.coffer.clone();
    blocking(move || {
        let store = coffer.control.store();
        // The user must already have an account; no account is created on someone's behalf.
        let user = store.user_by_email(&email)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-user",
                "no account with this e-mail address",
            )
        })?;
        if store.membership(user.id, access.tenant.id)?.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already-member",
                "already a member; change the role instead",
            ));
        }
        coffer
            .control
            .set_member(&access.caller, access.tenant.id, user.id, body.role)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeMember {
    role: Role,
}

fn target_user(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw)
        .map_err(|_| ApiError::bad_request("invalid-user-id", "user ids are 32 hexadecimal digits"))
}

pub async fn change_member(
    State(state): State<AppState>,
    Extension(access): Extension<TenantAccess>,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<ChangeMember>,
) -> Result<StatusCode, ApiError> {
    let user = target_user(&user)?;
    let coffer = state.coffer.clone();
    blocking(move || {
        let current = coffer
            .control
            .store()
            .membership(user, access.tenant.id)?
            .ok_or_else(ApiError::not_found)?;
        if !may_grant(access.role, body.role)
            || (current == Role::Owner && access.role != Role::Owner)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only owners can change owners or make owners",
            ));
        }
        coffer
            .control
            .set_member(&access.caller, access.tenant.id, user, body.role)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_member(
    State(state): State<AppState>,
    Extension(access): Extension<TenantAccess>,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = target_user(&user)?;
    let coffer = state.coffer.clone();
    blocking(move || {
        let current = coffer
            .control
            .store()
            .membership(user, access.tenant.id)?
            .ok_or_else(ApiError::not_found)?;
        if current == Role::Owner && access.role != Role::Owner {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only owners can remove owners",
            ));
        }
        coffer
            .control
            .remove_member(&access.caller, access.tenant.id, user)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

pub async fn audit(
    State(state): State<AppState>,
    Extension(access): Extension<TenantAccess>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let coffer = state.coffer.clone();
    let events = blocking(move || {
        coffer
            .audit
            .events_for_tenant(access.tenant.id, q.after.unwrap_or(0), limit)
            .map_err(ApiError::internal)
    })
    .await?;
    let next = (events.len() as u32 == limit)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(serde_json::json!({ "events": events, "next": next })))
}

pub async fn usage(
    State(state): State<AppState>,
    Extension(access): Extension<TenantAccess>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let coffer = state.coffer.clone();
    blocking(move || {
        let counters: std::collections::BTreeMap<String, i64> =
            access.vault.usage()?.into_iter().collect();
        let logins = coffer
            .control
            .store()
            .tenant_logins(access.tenant.id, 100)?;
        Ok(Json(serde_json::json!({
            "tenant": access.tenant.slug, "quota_bytes": access.tenant.quota_bytes,
            "counters": counters, "recent_logins": logins,
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: String,
    limit: Option<u32>,
}

pub async fn search(
    Extension(access): Extension<TenantAccess>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if q.q.len() > 512 {
        return Err(ApiError::bad_request(
            "query-too-long",
            "search text is limited to 512 bytes",
        ));
    }
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let hits = blocking(move || Ok(access.vault.search(&q.q, limit)?)).await?;
    Ok(Json(serde_json::json!({ "hits": hits })))
}
