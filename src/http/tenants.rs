//! Tenant endpoints: the tenant itself, its members, its audit log, its usage, search.
//!
//! Member changes go through the control plane's rules (`control::rules`), checked inside
//! the transaction that makes the change: an admin never adds, changes or removes an
//! owner, nobody grants above their own role, and the last owner stays.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::authorize::{Access, Signed};
use super::dto::{
    AddMemberIn, AiUsageIn, AuditPage, ChangeMemberIn, HitsOut, MemberAddedOut, MembersOut,
    TenantView, UsageOut,
};
use super::error::{ApiError, ErrorCode};
use super::extract::{JsonBody, blocking};
use super::rights::{AuditFilter, audit_page};
use crate::audit::Scope;
use crate::coffer::Coffer;
use crate::control::MemberChange;
use crate::names::{Email, UserId};

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}",
    responses((status = 200, description = "The tenant and your role in it", body = TenantView)))]
pub async fn show(
    State(coffer): State<Coffer>,
    Signed(principal): Signed,
    Access(access): Access,
) -> Result<Json<TenantView>, ApiError> {
    blocking(move || {
        let permissions = coffer
            .auth()
            .permissions(&principal, access.tenant().slug.as_str())?;
        Ok(Json(TenantView {
            tenant: access.tenant().into(),
            role: access.role(),
            permissions,
        }))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/members",
    responses((status = 200, description = "Members and roles", body = MembersOut)))]
pub async fn members(
    State(coffer): State<Coffer>,
    Access(access): Access,
) -> Result<Json<MembersOut>, ApiError> {
    let members = blocking(move || Ok(coffer.control().members(access.tenant().id)?)).await?;
    Ok(Json(MembersOut {
        members: members.iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/members", request_body = AddMemberIn,
    responses(
        (status = 201, description = "Added; someone without a password yet (a new account) is sent a one-time code to set one", body = MemberAddedOut),
        (status = 409, description = "Already a member (`already-member`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn add_member(
    State(coffer): State<Coffer>,
    Access(access): Access,
    JsonBody(body): JsonBody<AddMemberIn>,
) -> Result<(StatusCode, Json<MemberAddedOut>), ApiError> {
    let email = Email::parse(&body.email).map_err(|e| ApiError::from(e).with_pointer("/email"))?;
    let invited = blocking(move || Ok(coffer.auth().invite(&access, &email, body.role)?)).await?;
    Ok((StatusCode::CREATED, Json(MemberAddedOut { invited })))
}

fn target_user(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidUserId,
            "user ids are 32 hexadecimal digits",
        )
    })
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/members/{user}", request_body = ChangeMemberIn,
    responses(
        (status = 204, description = "The role is changed"),
        (status = 409, description = "The last owner cannot stop being one (`last-owner`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn change_member(
    State(coffer): State<Coffer>,
    Access(access): Access,
    Path((_, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<ChangeMemberIn>,
) -> Result<StatusCode, ApiError> {
    let user = target_user(&user)?;
    blocking(move || {
        access.change_member(coffer.control(), user, body.role, MemberChange::Change)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/members/{user}",
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "The last owner cannot be removed (`last-owner`)"),
    ))]
pub async fn remove_member(
    State(coffer): State<Coffer>,
    Access(access): Access,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = target_user(&user)?;
    blocking(move || {
        access.remove_member(coffer.control(), user)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit", params(AuditFilter),
    responses((status = 200, description = "One page of the tenant's audit events", body = AuditPage)))]
pub async fn audit(
    State(coffer): State<Coffer>,
    Access(access): Access,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>, ApiError> {
    let scope = Scope::Tenant(access.tenant().id);
    Ok(Json(audit_page(coffer, scope, filter).await?))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/usage",
    responses((status = 200, description = "Storage, counters, metered calls and logins", body = UsageOut)))]
pub async fn usage(
    State(coffer): State<Coffer>,
    Access(access): Access,
) -> Result<Json<UsageOut>, ApiError> {
    blocking(move || Ok(Json(usage_of(&coffer, access.tenant())?))).await
}

/// Any tenant's usage (operators, P16), by slug or, for a purged tenant whose billing
/// records remain, by id: the same document as the tenant's own. No access to the
/// tenant's content is issued for it.
#[utoipa::path(get, path = "/api/v1/admin/tenants/{tenant}/usage",
    responses((status = 200, description = "The tenant's usage", body = UsageOut)))]
pub async fn admin_usage(
    State(coffer): State<Coffer>,
    Path(tenant): Path<String>,
) -> Result<Json<UsageOut>, ApiError> {
    blocking(move || {
        let control = coffer.control();
        let found = match crate::names::TenantId::parse(&tenant) {
            Ok(id) => control.tenant(id)?,
            Err(_) => match crate::names::TenantSlug::parse(&tenant) {
                Ok(slug) => control.tenant_by_slug(&slug)?,
                Err(_) => None,
            },
        };
        let tenant = found.ok_or_else(ApiError::not_found)?;
        Ok(Json(usage_of(&coffer, &tenant)?))
    })
    .await
}

fn usage_of(coffer: &Coffer, tenant: &crate::control::Tenant) -> Result<UsageOut, ApiError> {
    let report = coffer.usage_report(tenant)?;
    Ok(UsageOut {
        tenant: tenant.slug.clone(),
        quota_bytes: tenant.quota_bytes,
        counters: report.counters.into_iter().collect(),
        metered: report.metered.iter().map(Into::into).collect(),
        recent_logins: report.logins.iter().map(Into::into).collect(),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The words to find (up to 512 characters, no control characters).
    #[param(
        max_length = 512,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "boiler invoice"
    )]
    q: String,
    /// Hits to return (default 20).
    #[param(minimum = 1, maximum = 100, example = 20)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/search", params(SearchQuery),
    responses((status = 200, description = "Matching records and file names, best first", body = HitsOut)))]
pub async fn search(
    Access(access): Access,
    Query(q): Query<SearchQuery>,
) -> Result<Json<HitsOut>, ApiError> {
    if q.q.chars().count() > 512 {
        return Err(ApiError::bad_request(
            ErrorCode::QueryTooLong,
            "search text is limited to 512 characters",
        ));
    }
    // SQLite reads a NUL as the end of the text; no control character is search text.
    if q.q.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "search text may not contain control characters",
        ));
    }
    let limit = super::rights::page_limit(q.limit, 20, 100)?;
    let hits = blocking(move || Ok(access.vault().search(&q.q, limit)?)).await?;
    Ok(Json(HitsOut {
        hits: hits.iter().map(Into::into).collect(),
    }))
}

/// An AI integration reports the tokens it consumed (its API token carries the `ai-usage`
/// scope; refused while the tenant's processing is restricted).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/usage/ai", request_body = AiUsageIn,
    responses(
        (status = 204, description = "Recorded"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn report_ai_usage(
    State(coffer): State<Coffer>,
    Access(access): Access,
    JsonBody(body): JsonBody<AiUsageIn>,
) -> Result<StatusCode, ApiError> {
    let model = body.model.trim();
    if model.is_empty() || model.len() > 100 || model.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "model is 1 to 100 printable characters",
        )
        .with_pointer("/model"));
    }
    let model = model.to_owned();
    blocking(move || {
        coffer.control().report_ai_usage(
            access.caller(),
            access.tenant().id,
            &model,
            body.input_tokens,
            body.output_tokens,
        )?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
