//! Record endpoints: collections of JSON documents with optimistic concurrency.
//!
//! A record's `ETag` is its version. `PUT` requires `If-Match` (428 without it, 412 when
//! stale) so that no client overwrites a change it has not seen; `PATCH` takes a JSON
//! merge patch (RFC 7386) with an optional `If-Match`. Bodies must be JSON objects within
//! the configured size and depth limits.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::authorize::Access;
use super::dto::{CollectionOut, CollectionsOut, RecordOut, RecordsPage};
use super::error::{ApiError, ErrorCode};
use super::extract::{JsonBody, blocking};
use crate::vault::index::Record;
use crate::vault::path::{CollectionName, RecordId};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

fn with_etag(status: StatusCode, record: &Record) -> Response {
    let mut response = (status, Json(RecordOut::from(record))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", record.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// The version named by `If-Match: "<n>"`, if any.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .trim_matches('"')
            .parse::<i64>()
            .map(Some)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    ErrorCode::PreconditionFailed,
                    "If-Match names no version of this record",
                )
            }),
    }
}

fn parse_names(
    collection: &str,
    id: Option<&str>,
) -> Result<(CollectionName, Option<RecordId>), ApiError> {
    let collection = CollectionName::parse(collection)?;
    let id = id.map(RecordId::parse).transpose()?;
    Ok((collection, id))
}

fn object(body: serde_json::Value) -> Result<serde_json::Value, ApiError> {
    if body.is_object() {
        Ok(body)
    } else {
        Err(ApiError::bad_request(
            ErrorCode::NotAnObject,
            "a record body must be a JSON object",
        )
        .with_pointer(""))
    }
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/records",
    responses((status = 200, description = "Collections and their record counts", body = CollectionsOut)))]
pub async fn collections(Access(access): Access) -> Result<Json<CollectionsOut>, ApiError> {
    let list = blocking(move || Ok(access.vault().collections()?)).await?;
    Ok(Json(CollectionsOut {
        collections: list
            .into_iter()
            .map(|(name, count)| CollectionOut { name, count })
            .collect(),
    }))
}

/// `?limit=&cursor=` plus `eq.<field>=<value>` equality filters on top-level fields. A
/// value that parses as JSON (number, true, false, null) is compared as such, otherwise
/// as a string.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/records/{collection}",
    params(
        ("limit" = Option<u32>, Query, description = "Records per page (default 50)", minimum = 1, maximum = 500, example = 50),
        ("cursor" = Option<String>, Query, description = "The `next` of the previous page", example = "2026-11-30T12:05:00.000Z|client-0042", pattern = "^[^|\\x00-\\x1f\\x7f-\\x9f]*\\|[^\\x00-\\x1f\\x7f-\\x9f]*$"),
        ("eq.status" = Option<String>, Query, description = "Only records whose top-level `status` equals this. Any top-level field filters the same way, `eq.<field>=<value>` (field names: letters, digits and `_`, up to 64), any number of them: a value that parses as a number, `true`, `false` or `null` compares as JSON, anything else as a string.", example = "open", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"),
        ("eq.name" = Option<String>, Query, description = "Only records whose top-level `name` equals this (see `eq.status`).", example = "Hannah Reyes", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"),
    ),
    responses((status = 200, description = "One page of records, newest first", body = RecordsPage)))]
pub async fn list(
    Access(access): Access,
    Path((_, collection)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<RecordsPage>, ApiError> {
    let (collection, _) = parse_names(&collection, None)?;
    let mut limit = DEFAULT_PAGE;
    let mut cursor: Option<(String, String)> = None;
    let mut filters = Vec::new();
    for (key, value) in query {
        if value.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("query parameter {key:?} may not contain control characters"),
            ));
        }
        match key.as_str() {
            "limit" => {
                let n = value.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(ErrorCode::InvalidQuery, "limit must be a number")
                })?;
                limit = super::rights::page_limit(Some(n), DEFAULT_PAGE, MAX_PAGE)?;
            }
            "cursor" => {
                let (updated, id) = value.split_once('|').ok_or_else(|| {
                    ApiError::bad_request(ErrorCode::InvalidQuery, "malformed cursor")
                })?;
                cursor = Some((updated.to_owned(), id.to_owned()));
            }
            k => match k.strip_prefix("eq.") {
                Some(field)
                    if !field.is_empty()
                        && field.len() <= 64
                        && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    let parsed = serde_json::from_str::<serde_json::Value>(&value)
                        .ok()
                        .filter(|v| !v.is_object() && !v.is_array() && !v.is_string())
                        .unwrap_or(serde_json::Value::String(value));
                    filters.push((field.to_owned(), parsed));
                }
                _ => {
                    return Err(ApiError::bad_request(
                        ErrorCode::InvalidQuery,
                        format!("unknown query parameter {k:?}"),
                    ));
                }
            },
        }
    }
    let records = blocking(move || {
        let before = cursor.as_ref().map(|(u, i)| (u.as_str(), i.as_str()));
        Ok(access
            .vault()
            .list_records(&collection, &filters, before, limit)?)
    })
    .await?;
    let next = (records.len() as u32 == limit)
        .then(|| records.last().map(|r| format!("{}|{}", r.updated_at, r.id)))
        .flatten();
    Ok(Json(RecordsPage {
        records: records.iter().map(Into::into).collect(),
        next,
    }))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// The new record's id (default: one is made); for imports from another system.
    #[param(pattern = "^[A-Za-z0-9_-]{1,128}$", example = "client-0042")]
    id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/records/{collection}", params(CreateQuery),
    request_body(content = Object, description = "The record: any JSON object", example = json!({"name": "Ada Lovelace", "phone": "+44 20 7946 0000"})),
    responses(
        (status = 201, description = "Created", body = RecordOut, headers(("etag" = String, description = "The version, quoted"), ("location" = String))),
        (status = 409, description = "A record with that id exists"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn create(
    Access(access): Access,
    Path((tenant, collection)): Path<(String, String)>,
    Query(q): Query<CreateQuery>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    let (collection, id) = parse_names(&collection, q.id.as_deref())?;
    let body = object(body)?;
    let record = blocking(move || {
        Ok(access
            .vault()
            .create_record(access.caller(), &collection, id, &body)?)
    })
    .await?;
    let mut response = with_etag(StatusCode::CREATED, &record);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "/api/v1/tenants/{tenant}/records/{}/{}",
        record.collection, record.id
    )) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/records/{collection}/{id}",
    params(("id" = String, Path, description = "The record's id", pattern = "^[A-Za-z0-9_-]{1,128}$", example = "client-0042")),
    responses((status = 200, description = "The record", body = RecordOut, headers(("etag" = String, description = "The version, quoted")))))]
pub async fn get_one(
    Access(access): Access,
    Path((_, collection, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (collection, id) = parse_names(&collection, Some(&id))?;
    let id = id.ok_or_else(ApiError::not_found)?;
    let record = blocking(move || Ok(access.vault().record(&collection, &id)?)).await?;
    Ok(with_etag(StatusCode::OK, &record))
}

#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/records/{collection}/{id}",
    params(
        ("id" = String, Path, description = "The record's id", pattern = "^[A-Za-z0-9_-]{1,128}$", example = "client-0042"),
        ("If-Match" = String, Header, description = "The version being replaced (the record's ETag)", example = "\"3\""),
    ),
    request_body(content = Object, description = "The whole new record", example = json!({"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "status": "active"})),
    responses(
        (status = 200, description = "Replaced", body = RecordOut, headers(("etag" = String))),
        (status = 412, description = "The record changed since that version"),
        (status = 428, description = "`If-Match` is required"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn replace(
    Access(access): Access,
    Path((_, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    let (collection, id) = parse_names(&collection, Some(&id))?;
    let id = id.ok_or_else(ApiError::not_found)?;
    // The body's shape first: a malformed request is refused as such, whatever its
    // precondition says.
    let body = object(body)?;
    let version = if_match(&headers)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            ErrorCode::PreconditionRequired,
            "send If-Match with the version you are replacing",
        )
    })?;
    let record = blocking(move || {
        Ok(access.vault().replace_record(
            access.caller(),
            &collection,
            &id,
            &body,
            Some(version),
        )?)
    })
    .await?;
    Ok(with_etag(StatusCode::OK, &record))
}

/// RFC 7386: objects merge recursively, `null` removes a member, anything else replaces.
fn apply_merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(patch_map) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            let target_map = target.as_object_mut().expect("made an object above");
            for (key, value) in patch_map {
                if value.is_null() {
                    target_map.remove(key);
                } else {
                    apply_merge_patch(
                        target_map
                            .entry(key.clone())
                            .or_insert(serde_json::Value::Null),
                        value,
                    );
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/records/{collection}/{id}",
    params(
        ("id" = String, Path, description = "The record's id", pattern = "^[A-Za-z0-9_-]{1,128}$", example = "client-0042"),
        ("If-Match" = Option<String>, Header, description = "Patch only this version", example = "\"3\""),
    ),
    request_body(content = Object, content_type = "application/merge-patch+json", description = "An RFC 7396 merge patch: `null` removes a field", example = json!({"phone": "+44 20 7946 0001", "fax": null})),
    responses(
        (status = 200, description = "Patched", body = RecordOut, headers(("etag" = String))),
        (status = 412, description = "The record changed since that version"),
        (status = 413, description = "The body is larger than the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
    ))]
pub async fn merge_patch(
    Access(access): Access,
    Path((_, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    let (collection, id) = parse_names(&collection, Some(&id))?;
    let id = id.ok_or_else(ApiError::not_found)?;
    let patch = object(patch)?;
    let expected = if_match(&headers)?;
    let record = blocking(move || {
        let current = access.vault().record(&collection, &id)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                ErrorCode::PreconditionFailed,
                "the record has changed",
            ));
        }
        let mut body = current.body;
        apply_merge_patch(&mut body, &patch);
        // Replace against the version read, so a concurrent change is not lost.
        Ok(access.vault().replace_record(
            access.caller(),
            &collection,
            &id,
            &body,
            Some(current.version),
        )?)
    })
    .await?;
    Ok(with_etag(StatusCode::OK, &record))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/records/{collection}/{id}",
    params(
        ("id" = String, Path, description = "The record's id", pattern = "^[A-Za-z0-9_-]{1,128}$", example = "client-0042"),
        ("If-Match" = Option<String>, Header, description = "Delete only this version", example = "\"3\""),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 412, description = "The record changed since that version"),
    ))]
pub async fn remove(
    Access(access): Access,
    Path((_, collection, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (collection, id) = parse_names(&collection, Some(&id))?;
    let id = id.ok_or_else(ApiError::not_found)?;
    let expected = if_match(&headers)?;
    blocking(move || {
        Ok(access
            .vault()
            .delete_record(access.caller(), &collection, &id, expected)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = serde_json::json!({"a": "b", "c": {"d": "e", "f": "g"}});
        apply_merge_patch(&mut doc, &serde_json::json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, serde_json::json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = serde_json::json!({"a": [1, 2]});
        apply_merge_patch(&mut doc, &serde_json::json!({"a": [3], "n": {"x": null}}));
        assert_eq!(doc, serde_json::json!({"a": [3], "n": {}}));
    }
}
