//! Platform-operator endpoints: tenants and users across the data root. Operators manage
//! accounts; they read no tenant content here (they are not members of tenants).

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{ClientIp, JsonBody, blocking};
use crate::auth::Principal;
use crate::control::Role;
use crate::vault::path::{Email, TenantSlug};

pub async fn list_tenants(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let coffer = state.coffer.clone();
    let tenants = blocking(move || Ok(coffer.control.store().tenants()?)).await?;
    Ok(Json(serde_json::json!({ "tenants": tenants })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    slug: String,
    name: String,
    owner_email: Option<String>,
    quota_bytes: Option<u64>,
}

pub async fn create_tenant(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Extension(principal): Extension<Principal>,
    JsonBody(body): JsonBody<CreateTenant>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let slug = TenantSlug::parse(&body.slug)
        .map_err(|e| ApiError::from(e).with_pointer("/slug".into()))?;
    let owner = body
        .owner_email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(|e| ApiError::from(e).with_pointer("/owner_email".into()))?;
    let coffer = state.coffer.clone();
    let caller = principal.caller(ip);
    let tenant = blocking(move || {
        let owner = match owner {
            Some(email) => Some(coffer.control.store().user_by_email(&email)?.ok_or_else(
                || {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "unknown-user",
                        "no account with this e-mail address",
                    )
                    .with_pointer("/owner_email".into())
                },
            )?),
            None => None,
        };
        let tenant = coffer.create_tenant(&caller, &slug, &body.name, body.quota_bytes)?;
        if let Some(owner) = owner {
            coffer
                .control
                .set_member(&caller, tenant.id, owner.id, Role::Owner)?;
        }
        Ok(tenant)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "tenant": tenant })),
    ))
}

pub async fn list_users(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let coffer = state.coffer.clone();
    let users = blocking(move || Ok(coffer.control.store().users()?)).await?;
    Ok(Json(serde_json::json!({ "users": users })))
}
