//! Platform-operator endpoints: tenants and users across the data root. Operators manage
//! accounts; they read no tenant content here (they are not members of tenants).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::authorize::Signed;
use super::dto::{CreateTenantIn, TenantCreatedOut, TenantsOut, UsersOut};
use super::error::ApiError;
use super::extract::{ClientIp, JsonBody, blocking};
use crate::coffer::Coffer;
use crate::control::{NewTenant, NewUser, TenantOwner};
use crate::names::{Email, TenantSlug};

#[utoipa::path(get, path = "/api/v1/admin/tenants",
    responses((status = 200, description = "Every tenant", body = TenantsOut)))]
pub async fn list_tenants(State(coffer): State<Coffer>) -> Result<Json<TenantsOut>, ApiError> {
    let tenants = blocking(move || Ok(coffer.control().tenants()?)).await?;
    Ok(Json(TenantsOut {
        tenants: tenants.iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/admin/tenants", request_body = CreateTenantIn,
    responses(
        (status = 201, description = "The new tenant; an owner without an account is invited to set a password", body = TenantCreatedOut),
        (status = 409, description = "The slug is taken (`slug-taken`)"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn create_tenant(
    State(coffer): State<Coffer>,
    ClientIp(ip): ClientIp,
    Signed(principal): Signed,
    JsonBody(body): JsonBody<CreateTenantIn>,
) -> Result<(StatusCode, Json<TenantCreatedOut>), ApiError> {
    let slug =
        TenantSlug::parse(&body.slug).map_err(|e| ApiError::from(e).with_pointer("/slug"))?;
    let name = crate::names::display_name(&body.name)
        .map_err(|e| ApiError::from(e).with_pointer("/name"))?;
    let owner = body
        .owner_email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(|e| ApiError::from(e).with_pointer("/owner_email"))?;
    let caller = principal.caller(ip);
    let (tenant, owner_invited) = blocking(move || {
        // An owner without an account gets one (no password) with the tenant, in the
        // same transaction, and then an invitation to set a password.
        // Someone invited before who never set a password is invited again, as owner.
        let (owner, invite) = match &owner {
            Some(email) => match coffer.control().user_by_email(email)? {
                Some(user) => (
                    Some(TenantOwner::Existing(user.id)),
                    user.awaits_password().then(|| email.clone()),
                ),
                None => (
                    Some(TenantOwner::New(NewUser::invited(email))),
                    Some(email.clone()),
                ),
            },
            None => (None, None),
        };
        let new = NewTenant {
            slug,
            name,
            quota_bytes: body.quota_bytes,
            owner,
        };
        let tenant = coffer.create_tenant(&caller, new)?;
        // The tenant exists now: a message that cannot be stored or sent is reported
        // (`owner_invited: false`, a warning in the log), and the owner can still ask
        // for a reset code, or the operator create the invitation again by inviting.
        let invited = match &invite {
            Some(email) => match coffer.auth().invite_owner(&caller, &tenant, email) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(tenant = %tenant.id, error = %e, "owner invitation not sent");
                    false
                }
            },
            None => false,
        };
        Ok((tenant, invited))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantCreatedOut {
            tenant: (&tenant).into(),
            owner_invited,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/admin/users",
    responses((status = 200, description = "Every user", body = UsersOut)))]
pub async fn list_users(State(coffer): State<Coffer>) -> Result<Json<UsersOut>, ApiError> {
    let users = blocking(move || Ok(coffer.control().users()?)).await?;
    Ok(Json(UsersOut {
        users: users.iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IsolationQuery {
    /// Rehash every file against the index (slow on a large data root).
    #[serde(default)]
    #[param(example = false)]
    deep: bool,
}

/// The isolation report (`coffer audit isolation`), read-only, for operators.
#[utoipa::path(get, path = "/api/v1/admin/audit/isolation", params(IsolationQuery),
    responses((status = 200, description = "The isolation report: tenants and files checked, findings", body = crate::inspect::IsolationReport)))]
pub async fn isolation(
    State(coffer): State<Coffer>,
    Query(query): Query<IsolationQuery>,
) -> Result<Json<crate::inspect::IsolationReport>, ApiError> {
    blocking(move || Ok(Json(coffer.isolation_audit(query.deep)?))).await
}
