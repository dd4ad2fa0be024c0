//! Node-to-node routes (nodes sharing a PostgreSQL control plane): the copy of a tenant,
//! pulled by the node taking it (`coffer tenant move`, README "Scaling out"): first a
//! live copy (`GET` with a live token, the tenant placed here), then the fenced copy
//! (`POST` with the files the live copy brought; the tenant fenced here at the token's
//! epoch). The guard has checked the node token. The body is a tar stream ended by its manifest
//! (`vault::transfer`); a failure mid-stream aborts the response, so the taking node
//! never mistakes a short copy for a whole one (and checks the manifest besides).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::error::{ApiError, ErrorCode};
use super::extract::blocking;
use super::streaming::blocking_body;
use crate::coffer::Coffer;
use crate::coffer::moving::token::NodeClaims;
use crate::coffer::moving::{HeldFiles, MAX_HELD_BODY, MovePull};
use crate::names::TenantId;
use crate::vault::transfer::Held;

#[utoipa::path(get, path = "/api/v1/nodes/moves/{tenant}",
    params(("tenant" = String, Path, description = "The tenant's id", pattern = "^[0-9a-f]{32}$", example = "01939a1e0c4b7d2e8f10a2b3c4d5e6f7")),
    responses(
        (status = 200, description = "The tenant's copy: a tar stream of its vault, ended by a manifest of every file's size and SHA-256", content_type = "application/x-tar", body = Vec<u8>,
            headers(("x-coffer-copy-bytes" = u64, description = "What the copy's files come to (its files and trash as the index counts them, and the index): the taking node checks its free space against it, and refuses a copy that grows past it"))),
        (status = 403, description = "The tenant is not placed on this node at the token's epoch (a live copy's token), or not fenced there (any other)"),
    ))]
pub async fn move_copy(
    State(coffer): State<Coffer>,
    Extension(claims): Extension<NodeClaims>,
    Path(tenant): Path<String>,
) -> Result<Response, ApiError> {
    let pull = checked_pull(&coffer, claims, &tenant, false).await?;
    send_copy(coffer, pull, Held::new()).await
}

#[utoipa::path(post, path = "/api/v1/nodes/moves/{tenant}",
    params(("tenant" = String, Path, description = "The tenant's id", pattern = "^[0-9a-f]{32}$", example = "01939a1e0c4b7d2e8f10a2b3c4d5e6f7")),
    request_body(content = HeldFiles, description = "The files the taking node holds from its live copy, as it received them"),
    responses(
        (status = 200, description = "The fenced tenant's copy as for GET, except that a file held with the size and SHA-256 the index records is listed in the manifest without its bytes", content_type = "application/x-tar", body = Vec<u8>,
            headers(("x-coffer-copy-bytes" = u64, description = "What the whole copy comes to, as for GET"))),
        (status = 400, description = "The body is not such a list"),
        (status = 403, description = "The tenant is not fenced on this node at the token's epoch, or the token is a live copy's"),
        (status = 413, description = "The list is larger than 64 MiB"),
    ))]
pub async fn move_copy_rest(
    State(coffer): State<Coffer>,
    Extension(claims): Extension<NodeClaims>,
    Path(tenant): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    // Checked before the body is read: only a node about to take this fenced tenant
    // makes this node buffer and parse a list.
    let pull = checked_pull(&coffer, claims, &tenant, true).await?;
    let bytes = axum::body::to_bytes(body, MAX_HELD_BODY)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    "the list of held files is larger than 64 MiB",
                )
            } else {
                ApiError::bad_request(ErrorCode::InvalidRequest, "the body did not arrive whole")
            }
        })?;
    let held: HeldFiles = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!("the list of held files: {e}"),
        )
    })?;
    send_copy(coffer, pull, held.held).await
}

async fn checked_pull(
    coffer: &Coffer,
    claims: NodeClaims,
    tenant: &str,
    fenced_pull: bool,
) -> Result<MovePull, ApiError> {
    let id = TenantId::parse(tenant).map_err(|_| ApiError::not_found())?;
    let coffer = coffer.clone();
    blocking(move || Ok(coffer.check_move_pull(claims, id, fenced_pull)?)).await
}

async fn send_copy(coffer: Coffer, pull: MovePull, held: Held) -> Result<Response, ApiError> {
    let (pull, bytes) = {
        let coffer = coffer.clone();
        blocking(move || {
            let bytes = coffer.move_copy_bytes(&pull)?;
            Ok((pull, bytes))
        })
        .await?
    };
    let body =
        blocking_body(0, None, move |out| {
            coffer.send_move_copy(&pull, &held, out).map(|_| ()).map_err(|e| {
            tracing::warn!(error = %e, "sending a tenant's copy failed; aborting the response");
            e.to_string()
        })
        });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .header(header::CACHE_CONTROL, "no-store")
        .header(crate::coffer::moving::COPY_BYTES_HEADER, bytes)
        .body(Body::from_stream(body))
        .map_err(ApiError::internal)
}
