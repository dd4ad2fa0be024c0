//! Lifecycle endpoints: the owner restricts, unrestricts, cancels or reactivates their
//! tenant; an operator does the same for any tenant, places or lifts a legal hold, deletes
//! a tenant (cancel and purge at once, answering with the signed receipt), and fetches a
//! purged tenant's receipt. Each is one control-plane transition with its audit event;
//! refusals answer 409 naming the tenant's current state.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::authorize::{Access, Signed};
use super::dto::{AdminLifecycleIn, LifecycleIn, LifecycleOut};
use super::error::{ApiError, ErrorCode};
use super::extract::{ClientIp, JsonBody, blocking};
use crate::coffer::{Coffer, OperatorStep};
use crate::control::rules::Transition;
use crate::names::{TenantId, TenantSlug};

fn unknown_action() -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidRequest,
        "action must be restrict, unrestrict, cancel or reactivate (operators: also delete, hold, release)",
    )
    .with_pointer("/action")
}

/// The owner's lifecycle changes (in person: API tokens are refused).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/lifecycle", request_body = LifecycleIn,
    responses(
        (status = 200, description = "The tenant in its new state", body = LifecycleOut),
        (status = 409, description = "Not allowed from the tenant's current state (`wrong-state`, with `state`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn change(
    State(coffer): State<Coffer>,
    Access(access): Access,
    JsonBody(body): JsonBody<LifecycleIn>,
) -> Result<Json<LifecycleOut>, ApiError> {
    let change = Transition::parse(&body.action).ok_or_else(unknown_action)?;
    let grace = coffer.purge_grace();
    let tenant =
        blocking(move || Ok(access.change_state(coffer.control(), change, grace)?)).await?;
    Ok(Json(LifecycleOut {
        tenant: (&tenant).into(),
        receipt: None,
    }))
}

/// An operator's lifecycle changes, legal hold and deletion, for the tenant named by slug.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{tenant}/lifecycle", request_body = AdminLifecycleIn,
    responses(
        (status = 200, description = "The tenant in its new state; a deletion adds its signed receipt", body = LifecycleOut),
        (status = 409, description = "Not allowed from the tenant's current state, or under legal hold"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn admin_change(
    State(coffer): State<Coffer>,
    ClientIp(ip): ClientIp,
    Signed(principal): Signed,
    Path(slug): Path<String>,
    JsonBody(body): JsonBody<AdminLifecycleIn>,
) -> Result<Json<LifecycleOut>, ApiError> {
    let slug = TenantSlug::parse(&slug).map_err(|_| ApiError::not_found())?;
    let caller = principal.caller(ip);
    let out = blocking(move || {
        let control = coffer.control();
        let tenant = control
            .tenant_by_slug(&slug)?
            .ok_or_else(ApiError::not_found)?;
        let step = match body.action.as_str() {
            "hold" => OperatorStep::Hold,
            "release" => OperatorStep::Release,
            "delete" => OperatorStep::Delete,
            action => OperatorStep::Change(Transition::parse(action).ok_or_else(unknown_action)?),
        };
        let (tenant, receipt) = coffer.operator_step(&caller, tenant.id, step)?;
        Ok(LifecycleOut {
            tenant: (&tenant).into(),
            receipt,
        })
    })
    .await?;
    Ok(Json(out))
}

/// A purged tenant's signed deletion receipt, by tenant id.
#[utoipa::path(get, path = "/api/v1/admin/tenants/{tenant}/receipt",
    params(("tenant" = String, Path, description = "The purged tenant's id", pattern = "^[0-9a-f]{32}$", example = "01939a1e0c4b7d2e8f10a2b3c4d5e6f7")),
    responses((status = 200, description = "The signed deletion receipt", body = crate::signing::Signed)))]
pub async fn receipt(
    State(coffer): State<Coffer>,
    Path(id): Path<String>,
) -> Result<Json<crate::signing::Signed>, ApiError> {
    let id = TenantId::parse(&id).map_err(|_| ApiError::not_found())?;
    let record = blocking(move || Ok(coffer.control().purge_record(id)?)).await?;
    match record.and_then(|r| r.receipt) {
        Some(receipt) => Ok(Json(receipt)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no finished purge for this tenant",
        )),
    }
}
