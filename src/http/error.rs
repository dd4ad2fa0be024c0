//! The one error type of the HTTP layer and its RFC 9457 `application/problem+json` form.
//!
//! Subsystem errors are mapped here and nowhere else, each to a status and a stable code
//! from the closed `ErrorCode` set. Bodies never carry host paths, SQL text or internal
//! messages: a 5xx says only "internal error" and the real error is logged once, here,
//! with the request id the client also sees. A 4xx is the client's mistake and is never
//! logged as an error.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::audit::AuditError;
use crate::auth::AuthError;
use crate::auth::password::PasswordError;
use crate::coffer::CofferError;
use crate::control::{ControlError, TenantState};
use crate::export::ExportError;
use crate::export::import::ImportError;
use crate::names::NameError;
use crate::vault::VaultError;
use crate::vault::path::PathError;

pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        /// Every error a client can see, by a stable kebab-case code: clients and the web
        /// UI branch on these, so a code is never renamed or reused for another condition.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];
            pub fn as_str(&self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }
        }
    };
}

error_codes! {
    BadRequest => "bad-request",
    NotFound => "not-found",
    MethodNotAllowed => "method-not-allowed",
    PayloadTooLarge => "payload-too-large",
    UnsupportedMediaType => "unsupported-media-type",
    RequestTimeout => "request-timeout",
    Internal => "internal-error",
    InvalidPath => "invalid-path",
    InvalidName => "invalid-name",
    InvalidJson => "invalid-json",
    JsonTooDeep => "json-too-deep",
    InvalidQuery => "invalid-query",
    QueryTooLong => "query-too-long",
    InvalidUserId => "invalid-user-id",
    InvalidTrashId => "invalid-trash-id",
    InvalidRequest => "invalid-request",
    NotAnObject => "not-an-object",
    WeakPassword => "weak-password",
    AlreadyExists => "already-exists",
    CaseConflict => "case-conflict",
    SlugTaken => "slug-taken",
    EmailTaken => "email-taken",
    AlreadyMember => "already-member",
    LastOwner => "last-owner",
    UnknownUser => "unknown-user",
    PreconditionFailed => "precondition-failed",
    PreconditionRequired => "if-match-required",
    UnsupportedPrecondition => "unsupported-precondition",
    IsADirectory => "is-a-directory",
    NotADirectory => "not-a-directory",
    MoveIntoSelf => "move-into-self",
    RefusedEntry => "refused-entry",
    FileTooLarge => "file-too-large",
    QuotaExceeded => "quota-exceeded",
    UploadStalled => "upload-stalled",
    UploadFailed => "upload-failed",
    RangeNotSatisfiable => "range-not-satisfiable",
    Unauthenticated => "unauthenticated",
    BadCredentials => "bad-credentials",
    TooManyAttempts => "too-many-attempts",
    Forbidden => "forbidden",
    SessionRequired => "session-required",
    CrossSiteRequest => "cross-site-request",
    CsrfTokenMissing => "csrf-token-missing",
    SignupDisabled => "signup-disabled",
    BadResetToken => "bad-reset-token",
    ExportChanged => "export-changed",
    ArchiveRefused => "archive-refused",
    ArchiveTooLarge => "archive-too-large",
    MetricsUnavailable => "metrics-unavailable",
    TooManyUploads => "too-many-uploads",
    TooManyExports => "too-many-exports",
    Busy => "busy",
    TooManyLogins => "too-many-logins",
    DiskFull => "disk-full",
    TenantRestricted => "tenant-restricted",
    TenantCancelled => "tenant-cancelled",
    WrongState => "wrong-state",
    LegalHold => "legal-hold",
    DestinationElsewhere => "destination-elsewhere",
    Misdirected => "misdirected",
    TenantMoving => "tenant-moving",
    InfiniteDepth => "infinite-depth",
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub detail: String,
    /// Rarely set parts, boxed so that `Result<_, ApiError>` stays small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    /// JSON Pointer (RFC 6901) to the offending part of a request body.
    pointer: Option<String>,
    /// A more precise reason inside the code (an archive refusal's own code).
    reason: Option<&'static str>,
    retry_after: Option<Duration>,
    /// For 416: the size of the representation.
    content_range_size: Option<u64>,
    /// For lifecycle refusals: the tenant's current state.
    state: Option<&'static str>,
    /// For quota refusals: the numbers.
    quota: Option<QuotaFacts>,
    /// The real cause of a 5xx, logged and never sent.
    internal: Option<String>,
}

/// A quota refusal's numbers, in bytes: what is used, the limit, what was attempted.
#[derive(Debug, Clone, Copy, Serialize)]
struct QuotaFacts {
    used: u64,
    limit: u64,
    attempted: u64,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaFacts>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            extra: None,
        }
    }

    pub fn bad_request(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no such resource",
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; the request id identifies it in the server log",
        );
        e.extra_mut().internal = Some(cause.to_string());
        e
    }

    /// 507: the server's disk is full. Nothing partial was kept; the client may retry
    /// once space is freed.
    pub fn disk_full() -> Self {
        tracing::warn!("a request failed: the disk is full");
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::DiskFull,
            "the server's storage is full; nothing was changed, retry later",
        )
        .with_retry_after(Duration::from_secs(60))
    }

    /// 409: the tenant's lifecycle state does not allow this; the state is named.
    pub fn tenant_state(state: TenantState) -> Self {
        let code = match state {
            TenantState::Restricted => ErrorCode::TenantRestricted,
            TenantState::Cancelled => ErrorCode::TenantCancelled,
            _ => ErrorCode::WrongState,
        };
        let detail = match state {
            TenantState::Restricted => {
                "processing of this tenant is restricted: programs may not change its data"
            }
            TenantState::Cancelled => {
                "this tenant is cancelled: its data is read-only (export it, or reactivate it)"
            }
            _ => "not possible in the tenant's current state",
        };
        ApiError::new(StatusCode::CONFLICT, code, detail).with_state(state)
    }

    /// Names the tenant's current state in the problem (`"state": "cancelled"`).
    pub fn with_state(mut self, state: TenantState) -> Self {
        self.extra_mut().state = Some(state.as_str());
        self
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
    }

    pub fn with_pointer(mut self, pointer: &str) -> Self {
        self.extra_mut().pointer = Some(pointer.to_owned());
        self
    }

    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.extra_mut().reason = Some(reason);
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
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
            s if s.is_server_error() => ErrorCode::Internal,
            _ => ErrorCode::BadRequest,
        };
        ApiError::new(status, code, status.canonical_reason().unwrap_or("error"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extra = self.extra.map(|b| *b).unwrap_or_default();
        if let Some(cause) = &extra.internal {
            tracing::error!(code = self.code.as_str(), cause = %cause, "request failed");
        }
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = serde_json::to_vec(&Problem {
            kind: format!("urn:coffer:problem:{}", self.code.as_str()),
            title,
            status: self.status.as_u16(),
            code: self.code.as_str(),
            detail: &self.detail,
            pointer: extra.pointer.as_deref(),
            reason: extra.reason,
            state: extra.state,
            quota: extra.quota,
        })
        .unwrap_or_default();
        let mut response = (self.status, body).into_response();
        // For the metrics (errors by code), read by `telemetry::observe`.
        response.extensions_mut().insert(self.code);
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
        ApiError::bad_request(ErrorCode::InvalidPath, e.to_string())
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::bad_request(ErrorCode::InvalidName, e.to_string())
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Hashing => ApiError::internal(e),
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::WeakPassword,
                other.to_string(),
            ),
        }
    }
}

/// An audit log that refused an append: full (507), out of reach or its lock busy (503,
/// worth a retry), or broken (500). Every error that carries one answers the same way.
impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        if e.is_storage_full() {
            ApiError::disk_full()
        } else if e.is_unavailable() {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Busy,
                "the audit log cannot be reached now",
            )
            .with_retry_after(std::time::Duration::from_secs(5))
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        use ErrorCode as C;
        use StatusCode as S;
        let e = match e {
            VaultError::Audit(a) => return a.into(),
            other => other,
        };
        let (status, code) = match &e {
            VaultError::NotFound => return ApiError::not_found(),
            VaultError::Frozen => return ApiError::tenant_state(TenantState::Cancelled),
            VaultError::Moving => {
                return ApiError::new(S::SERVICE_UNAVAILABLE, C::TenantMoving, e.to_string())
                    .with_retry_after(std::time::Duration::from_secs(5));
            }
            VaultError::AlreadyExists | VaultError::ExistsAt(_) => (S::CONFLICT, C::AlreadyExists),
            VaultError::CaseConflict(..) => (S::CONFLICT, C::CaseConflict),
            VaultError::PreconditionFailed | VaultError::VersionMismatch { .. } => {
                (S::PRECONDITION_FAILED, C::PreconditionFailed)
            }
            VaultError::IsADirectory => (S::CONFLICT, C::IsADirectory),
            VaultError::NotADirectory => (S::CONFLICT, C::NotADirectory),
            VaultError::MoveIntoSelf => (S::CONFLICT, C::MoveIntoSelf),
            VaultError::NotRegular | VaultError::Escape => {
                return ApiError::new(
                    S::FORBIDDEN,
                    C::RefusedEntry,
                    "this entry cannot be accessed",
                );
            }
            VaultError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, C::FileTooLarge),
            VaultError::PropertiesTooLarge(_) => (S::PAYLOAD_TOO_LARGE, C::PayloadTooLarge),
            VaultError::QuotaExceeded {
                quota,
                used,
                attempted,
            } => {
                let mut e2 =
                    ApiError::new(S::INSUFFICIENT_STORAGE, C::QuotaExceeded, e.to_string());
                e2.extra_mut().quota = Some(QuotaFacts {
                    used: *used,
                    limit: *quota,
                    attempted: *attempted,
                });
                return e2;
            }
            VaultError::StorageFull => return ApiError::disk_full(),
            VaultError::Upload(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                return ApiError::new(S::REQUEST_TIMEOUT, C::UploadStalled, "the upload stalled");
            }
            VaultError::Upload(_) => {
                return ApiError::bad_request(
                    C::UploadFailed,
                    "the upload stream ended with an error",
                );
            }
            VaultError::Damaged(_)
            | VaultError::Io(_)
            | VaultError::Index(_)
            | VaultError::Audit(_) => return ApiError::internal(e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        use ErrorCode as C;
        use StatusCode as S;
        let e = match e {
            ControlError::Audit(a) => return a.into(),
            other => other,
        };
        let (status, code) = match &e {
            ControlError::NotFound | ControlError::NotMember => return ApiError::not_found(),
            ControlError::SlugTaken => (S::CONFLICT, C::SlugTaken),
            ControlError::EmailTaken => (S::CONFLICT, C::EmailTaken),
            ControlError::AlreadyMember => (S::CONFLICT, C::AlreadyMember),
            ControlError::LastOwner | ControlError::SoleOwner(_) => (S::CONFLICT, C::LastOwner),
            ControlError::Forbidden(_) => (S::FORBIDDEN, C::Forbidden),
            ControlError::WrongState(state) => {
                return ApiError::new(S::CONFLICT, C::WrongState, e.to_string()).with_state(*state);
            }
            ControlError::LegalHold(state) => {
                return ApiError::new(S::CONFLICT, C::LegalHold, e.to_string()).with_state(*state);
            }
            ControlError::Sqlite(s) if crate::db::is_full(s) => return ApiError::disk_full(),
            ControlError::Unavailable(_) => {
                return ApiError::new(S::SERVICE_UNAVAILABLE, C::Busy, e.to_string())
                    .with_retry_after(std::time::Duration::from_secs(5));
            }
            ControlError::Db(_)
            | ControlError::Sqlite(_)
            | ControlError::Postgres(_)
            | ControlError::Audit(_) => {
                return ApiError::internal(e);
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<CofferError> for ApiError {
    fn from(e: CofferError) -> Self {
        match e {
            CofferError::Vault(v) => v.into(),
            CofferError::Control(c) => c.into(),
            CofferError::Auth(a) => a.into(),
            CofferError::SignupDisabled => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::SignupDisabled,
                e.to_string(),
            ),
            CofferError::Busy(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Busy,
                e.to_string(),
            )
            .with_retry_after(std::time::Duration::from_secs(30)),
            other => ApiError::internal(other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use ErrorCode as C;
        use StatusCode as S;
        let e = match e {
            AuthError::Audit(a) => return a.into(),
            other => other,
        };
        let (status, code) = match &e {
            AuthError::Unauthenticated => (S::UNAUTHORIZED, C::Unauthenticated),
            AuthError::BadCredentials => (S::UNAUTHORIZED, C::BadCredentials),
            AuthError::Throttled(retry) => {
                return ApiError::new(S::TOO_MANY_REQUESTS, C::TooManyAttempts, e.to_string())
                    .with_retry_after(*retry);
            }
            AuthError::Forbidden(_) => (S::FORBIDDEN, C::Forbidden),
            AuthError::SessionRequired => (S::FORBIDDEN, C::SessionRequired),
            AuthError::NotFound => return ApiError::not_found(),
            AuthError::TenantState(state) => return ApiError::tenant_state(*state),
            // RFC 9110 §15.5.20: this server is not the one for the request's target (the
            // proxy's map lagged, or a client came straight here); the tenant's node is
            // named, to retry there.
            AuthError::Misdirected(_) => (S::MISDIRECTED_REQUEST, C::Misdirected),
            AuthError::Moving => {
                return ApiError::new(S::SERVICE_UNAVAILABLE, C::TenantMoving, e.to_string())
                    .with_retry_after(std::time::Duration::from_secs(5));
            }
            AuthError::Invalid(_) => (S::BAD_REQUEST, C::InvalidRequest),
            AuthError::BadResetToken => (S::BAD_REQUEST, C::BadResetToken),
            AuthError::Password(_) | AuthError::Control(_) | AuthError::Vault(_) => {
                return match e {
                    AuthError::Password(p) => p.into(),
                    AuthError::Control(c) => c.into(),
                    AuthError::Vault(v) => v.into(),
                    _ => unreachable!("matched above"),
                };
            }
            AuthError::Io(io) if crate::db::io_is_full(io) => return ApiError::disk_full(),
            AuthError::Audit(_) | AuthError::Io(_) => return ApiError::internal(e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Vault(v) => v.into(),
            ExportError::Audit(a) => a.into(),
            ExportError::Changed => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ExportChanged,
                e.to_string(),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        use ErrorCode as C;
        use StatusCode as S;
        match e {
            ImportError::Refused { reason, detail } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, C::ArchiveRefused, detail)
                    .with_reason(reason.code())
            }
            ImportError::TooLarge(m) => ApiError::new(S::PAYLOAD_TOO_LARGE, C::ArchiveTooLarge, m),
            ImportError::Vault(v) => v.into(),
            ImportError::Io(e) => ApiError::internal(e),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients branch on these strings: each is written here once more, so renaming a
    /// code (or dropping one) fails this test.
    #[test]
    fn error_codes_are_pinned_unique_and_kebab_case() {
        use ErrorCode as C;
        let pinned = [
            (C::BadRequest, "bad-request"),
            (C::NotFound, "not-found"),
            (C::MethodNotAllowed, "method-not-allowed"),
            (C::PayloadTooLarge, "payload-too-large"),
            (C::UnsupportedMediaType, "unsupported-media-type"),
            (C::RequestTimeout, "request-timeout"),
            (C::Internal, "internal-error"),
            (C::InvalidPath, "invalid-path"),
            (C::InvalidName, "invalid-name"),
            (C::InvalidJson, "invalid-json"),
            (C::JsonTooDeep, "json-too-deep"),
            (C::InvalidQuery, "invalid-query"),
            (C::QueryTooLong, "query-too-long"),
            (C::InvalidUserId, "invalid-user-id"),
            (C::InvalidTrashId, "invalid-trash-id"),
            (C::InvalidRequest, "invalid-request"),
            (C::NotAnObject, "not-an-object"),
            (C::WeakPassword, "weak-password"),
            (C::AlreadyExists, "already-exists"),
            (C::CaseConflict, "case-conflict"),
            (C::SlugTaken, "slug-taken"),
            (C::EmailTaken, "email-taken"),
            (C::AlreadyMember, "already-member"),
            (C::LastOwner, "last-owner"),
            (C::UnknownUser, "unknown-user"),
            (C::PreconditionFailed, "precondition-failed"),
            (C::PreconditionRequired, "if-match-required"),
            (C::UnsupportedPrecondition, "unsupported-precondition"),
            (C::IsADirectory, "is-a-directory"),
            (C::NotADirectory, "not-a-directory"),
            (C::MoveIntoSelf, "move-into-self"),
            (C::RefusedEntry, "refused-entry"),
            (C::FileTooLarge, "file-too-large"),
            (C::QuotaExceeded, "quota-exceeded"),
            (C::UploadStalled, "upload-stalled"),
            (C::UploadFailed, "upload-failed"),
            (C::RangeNotSatisfiable, "range-not-satisfiable"),
            (C::Unauthenticated, "unauthenticated"),
            (C::BadCredentials, "bad-credentials"),
            (C::TooManyAttempts, "too-many-attempts"),
            (C::Forbidden, "forbidden"),
            (C::SessionRequired, "session-required"),
            (C::CrossSiteRequest, "cross-site-request"),
            (C::CsrfTokenMissing, "csrf-token-missing"),
            (C::SignupDisabled, "signup-disabled"),
            (C::BadResetToken, "bad-reset-token"),
            (C::ExportChanged, "export-changed"),
            (C::ArchiveRefused, "archive-refused"),
            (C::ArchiveTooLarge, "archive-too-large"),
            (C::MetricsUnavailable, "metrics-unavailable"),
            (C::TooManyUploads, "too-many-uploads"),
            (C::TooManyExports, "too-many-exports"),
            (C::Busy, "busy"),
            (C::TooManyLogins, "too-many-logins"),
            (C::DiskFull, "disk-full"),
            (C::TenantRestricted, "tenant-restricted"),
            (C::TenantCancelled, "tenant-cancelled"),
            (C::WrongState, "wrong-state"),
            (C::LegalHold, "legal-hold"),
            (C::DestinationElsewhere, "destination-elsewhere"),
            (C::Misdirected, "misdirected"),
            (C::TenantMoving, "tenant-moving"),
            (C::InfiniteDepth, "infinite-depth"),
        ];
        assert_eq!(
            pinned.len(),
            ErrorCode::ALL.len(),
            "every code is pinned here"
        );
        let mut seen = std::collections::HashSet::new();
        for (code, text) in pinned {
            assert_eq!(code.as_str(), text);
            assert!(seen.insert(text), "duplicate code {text}");
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    && !text.starts_with('-')
                    && !text.ends_with('-'),
                "{text} is not kebab-case"
            );
        }
        let mut reasons = std::collections::HashSet::new();
        for r in crate::export::import::Refusal::ALL {
            assert!(reasons.insert(r.code()), "duplicate refusal {}", r.code());
        }
    }
}
