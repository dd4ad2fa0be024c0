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
use crate::coffer::moving::HeldFiles;
use crate::coffer::moving::token::NodeClaims;
use crate::names::TenantId;
use crate::vault::transfer::Held;

#[utoipa::path(get, path = "/api/v1/nodes/moves/{tenant}",
    params(("tenant" = String, Path, description = "The tenant's id", pattern = "^[0-9a-f]{32}$", example = "01939a1e0c4b7d2e8f10a2b3c4d5e6f7")),
    responses(
        (status = 200, description = "The tenant's copy: a tar stream of its vault, ended by a manifest of every file's size and SHA-256", content_type = "application/x-tar", body = Vec<u8>,
            headers(("x-coffer-copy-bytes" = u64, description = "What the copy's files come to (its files and trash as the index counts them, and the index): the taking node checks its free space against it, and refuses a copy that grows past it"))),
        (status = 403, description = "The tenant is not fenced on this node at the token's epoch"),
    ))]
pub async fn move_copy(
    State(coffer): State<Coffer>,
    Extension(claims): Extension<NodeClaims>,
    Path(tenant): Path<String>,
) -> Result<Response, ApiError> {
    send_copy(coffer, claims, tenant, Held::new()).await
}

#[utoipa::path(post, path = "/api/v1/nodes/moves/{tenant}",
    params(("tenant" = String, Path, description = "The tenant's id", pattern = "^[0-9a-f]{32}$", example = "01939a1e0c4b7d2e8f10a2b3c4d5e6f7")),
    request_body(content = Object, description = "`{\"held\": {PATH: {\"size\": N, \"sha256\": HEX}}}`: the files the taking node holds from its live copy, as it received them"),
    responses(
        (status = 200, description = "The fenced tenant's copy as for GET, except that a file held with the size and SHA-256 the index records is listed in the manifest without its bytes", content_type = "application/x-tar", body = Vec<u8>,
            headers(("x-coffer-copy-bytes" = u64, description = "What the whole copy comes to, as for GET"))),
        (status = 400, description = "The body is not such a list"),
        (status = 413, description = "The list is larger than 64 MiB"),
        (status = 403, description = "The tenant is not fenced on this node at the token's epoch"),
    ))]
pub async fn move_copy_rest(
    State(coffer): State<Coffer>,
    Extension(claims): Extension<NodeClaims>,
    Path(tenant): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_HELD_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the list of held files is larger than 64 MiB",
            )
        })?;
    let held: HeldFiles = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!("the list of held files: {e}"),
        )
    })?;
    send_copy(coffer, claims, tenant, held.held).await
}

/// The largest list of held files a node reads (a few hundred thousand files).
const MAX_HELD_BODY: usize = 64 << 20;

async fn send_copy(
    coffer: Coffer,
    claims: NodeClaims,
    tenant: String,
    held: Held,
) -> Result<Response, ApiError> {
    let id = TenantId::parse(&tenant).map_err(|_| ApiError::not_found())?;
    let (pull, bytes) = {
        let coffer = coffer.clone();
        blocking(move || {
            let pull = coffer.check_move_pull(claims, id)?;
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
