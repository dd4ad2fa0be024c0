//! The one error type of the HTTP layer and its RFC 9457 `application/problem+json` form.
//!
//! Subsystem errors are mapped here and nowhere else, each to a status and a stable
//! kebab-case `code`. Bodies never carry host paths, SQL text or internal messages: a 5xx
//! says only "internal error" and the real error is logged once, here, with the request
//! id the client also sees.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::auth::password::PasswordError;
use crate::coffer::CofferError;
use crate::control::ControlError;
use crate::vault::VaultError;
use crate::vault::path::{NameError, PathError};

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Rarely set parts, boxed so that `Result<_, ApiError>` stays small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    /// JSON Pointer (RFC 6901) to the offending part of a request body.
    pointer: Option<String>,
    retry_after: Option<Duration>,
    /// For 416: the size of the representation.
    content_range_size: Option<u64>,
    /// The real cause of a 5xx, logged and never sent.
    internal: Option<String>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            extra: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such resource")
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "internal error; the request id identifies it in the server log",
        );
        e.extra_mut().internal = Some(cause.to_string());
        e
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
    }

    pub fn with_pointer(mut self, pointer: String) -> Self {
        self.extra_mut().pointer = Some(pointer);
        self
    }

    pub fn with_retry_after(mut self, retry: Duration) -> Self {
        self.extra_mut().retry_after = Some(retry);
        self
    }

    pub fn with_content_range_size(mut self, size: u64) -> Self {
        self.extra_mut().content_range_size = Some(size);
        self
    }

    /// The JSON Pointer of a body error, if any.
    pub fn pointer(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.pointer.as_deref())
    }

    /// A bare problem for a status produced outside any handler (no route, no method).
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            StatusCode::REQUEST_TIMEOUT => "request-timeout",
            s if s.is_server_error() => "internal-error",
            _ => "bad-request",
        };
        ApiError::new(status, code, status.canonical_reason().unwrap_or("error"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extra = self.extra.map(|b| *b).unwrap_or_default();
        if let Some(cause) = &extra.internal {
            tracing::error!(code = self.code, cause = %cause, "request failed");
        }
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = serde_json::to_vec(&Problem {
            kind: format!("urn:coffer:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            code: self.code,
            detail: &self.detail,
            pointer: extra.pointer.as_deref(),
        })
        .unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(retry) = extra.retry_after
            && let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if let Some(size) = extra.content_range_size
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            headers.insert(header::CONTENT_RANGE, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"coffer\""),
            );
        }
        response
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        ApiError::bad_request("invalid-path", e.to_string())
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::bad_request("invalid-name", e.to_string())
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Hashing => ApiError::internal(e),
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak-password",
                other.to_string(),
            ),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        use StatusCode as S;
        match e {
            VaultError::NotFound => ApiError::not_found(),
            VaultError::AlreadyExists => {
                ApiError::new(S::CONFLICT, "already-exists", e.to_string())
            }
            VaultError::CaseConflict(..) => {
                ApiError::new(S::CONFLICT, "case-conflict", e.to_string())
            }
            VaultError::PreconditionFailed => {
                ApiError::new(S::PRECONDITION_FAILED, "precondition-failed", e.to_string())
            }
            VaultError::VersionMismatch { .. } => {
                ApiError::new(S::PRECONDITION_FAILED, "precondition-failed", e.to_string())
            }
            VaultError::IsADirectory => ApiError::new(S::CONFLICT, "is-a-directory", e.to_string()),
            VaultError::NotADirectory => {
                ApiError::new(S::CONFLICT, "not-a-directory", e.to_string())
            }
            VaultError::MoveIntoSelf => ApiError::new(S::CONFLICT, "move-into-self", e.to_string()),
            VaultError::NotRegular | VaultError::Escape => ApiError::new(
                S::FORBIDDEN,
                "refused-entry",
                "this entry cannot be accessed",
            ),
            VaultError::TooLarge { .. } => {
                ApiError::new(S::PAYLOAD_TOO_LARGE, "file-too-large", e.to_string())
            }
            VaultError::QuotaExceeded { .. } => {
                ApiError::new(S::INSUFFICIENT_STORAGE, "quota-exceeded", e.to_string())
            }
            VaultError::Upload(ref io) if io.kind() == std::io::ErrorKind::TimedOut => {
                ApiError::new(S::REQUEST_TIMEOUT, "upload-stalled", "the upload stalled")
            }
            VaultError::Upload(_) => {
                ApiError::bad_request("upload-failed", "the upload stream ended with an error")
            }
            VaultError::Damaged(_)
            | VaultError::Io(_)
            | VaultError::Index(_)
            | VaultError::Audit(_) => ApiError::internal(e),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        use StatusCode as S;
        match e {
            ControlError::NotFound => ApiError::not_found(),
            ControlError::SlugTaken | ControlError::EmailTaken | ControlError::AlreadyMember => {
                ApiError::new(S::CONFLICT, "already-exists", e.to_string())
            }
            ControlError::NotMember => ApiError::not_found(),
            ControlError::LastOwner => ApiError::new(S::CONFLICT, "last-owner", e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<CofferError> for ApiError {
    fn from(e: CofferError) -> Self {
        match e {
            CofferError::Vault(v) => v.into(),
            CofferError::Control(c) => c.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        match e {
            AuthError::Unauthenticated => {
                ApiError::new(S::UNAUTHORIZED, "unauthenticated", e.to_string())
            }
            AuthError::BadCredentials => {
                ApiError::new(S::UNAUTHORIZED, "bad-credentials", e.to_string())
            }
            AuthError::Throttled(retry) => {
                ApiError::new(S::TOO_MANY_REQUESTS, "too-many-attempts", e.to_string())
                    .with_retry_after(retry)
            }
            AuthError::Forbidden => ApiError::new(S::FORBIDDEN, "forbidden", e.to_string()),
            AuthError::NotFound => ApiError::not_found(),
            AuthError::Password(p) => p.into(),
            AuthError::Invalid(m) => ApiError::bad_request("invalid-request", m),
            AuthError::Conflict(m) => ApiError::new(S::CONFLICT, "conflict", m),
            AuthError::SignupDisabled => {
                ApiError::new(S::FORBIDDEN, "signup-disabled", e.to_string())
            }
            AuthError::BadResetToken => ApiError::bad_request("bad-reset-token", e.to_string()),
            AuthError::Coffer(c) => c.into(),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(e)
    }
}
