//! HTTP byte ranges (RFC 9110 §14): the one parser for file downloads and resumed
//! exports. Only single ranges are honoured; a multi-range request gets the whole
//! representation, which the RFC allows.

use axum::http::StatusCode;

use super::error::{ApiError, ErrorCode};

/// A single range as asked for, before the size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b`
    FromTo(u64, u64),
    /// `bytes=a-`
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// The outcome of reading a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range (or one that the server may ignore): the whole representation.
    Whole,
    One(ByteRange),
    /// A `bytes=` range that can never be satisfied (malformed numbers, `a > b`).
    Invalid,
}

impl RangeRequest {
    pub fn parse(value: Option<&str>) -> RangeRequest {
        let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
            return RangeRequest::Whole;
        };
        if spec.contains(',') {
            return RangeRequest::Whole;
        }
        let Some((start, end)) = spec.split_once('-') else {
            return RangeRequest::Invalid;
        };
        let num = |s: &str| s.trim().parse::<u64>().ok();
        let range = match (start.trim(), end.trim()) {
            ("", "") => None,
            ("", suffix) => num(suffix).map(ByteRange::Suffix),
            (s, "") => num(s).map(ByteRange::From),
            (s, e) => match (num(s), num(e)) {
                (Some(s), Some(e)) if s <= e => Some(ByteRange::FromTo(s, e)),
                _ => None,
            },
        };
        range.map_or(RangeRequest::Invalid, RangeRequest::One)
    }
}

impl ByteRange {
    /// The inclusive `(start, end)` within a representation of `size` bytes, or a 416.
    pub fn resolve(self, size: u64) -> Result<(u64, u64), ApiError> {
        let last = size.checked_sub(1);
        let resolved = match (self, last) {
            (_, None) => None,
            (ByteRange::FromTo(s, e), Some(last)) => (s <= last).then(|| (s, e.min(last))),
            (ByteRange::From(s), Some(last)) => (s <= last).then_some((s, last)),
            (ByteRange::Suffix(0), _) => None,
            (ByteRange::Suffix(n), Some(last)) => Some((size.saturating_sub(n), last)),
        };
        resolved.ok_or_else(|| unsatisfiable(size))
    }
}

/// The 416 answer, naming the size.
pub fn unsatisfiable(size: u64) -> ApiError {
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorCode::RangeNotSatisfiable,
        "the range is outside the representation",
    )
    .with_content_range_size(size)
}

/// A `Range` header resolved against `size`: `None` for the whole representation.
pub fn resolve(value: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    match RangeRequest::parse(value) {
        RangeRequest::Whole => Ok(None),
        RangeRequest::Invalid => Err(unsatisfiable(size)),
        RangeRequest::One(r) => r.resolve(size).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let ok = |v: &str, size| resolve(Some(v), size).unwrap();
        assert_eq!(ok("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(ok("bytes=90-", 100), Some((90, 99)));
        assert_eq!(ok("bytes=-10", 100), Some((90, 99)));
        assert_eq!(ok("bytes=95-200", 100), Some((95, 99)));
        assert_eq!(ok("bytes=-200", 100), Some((0, 99)));
        assert_eq!(ok("bytes=0-1,5-6", 100), None);
        assert_eq!(ok("items=0-1", 100), None);
        assert_eq!(resolve(None, 100).unwrap(), None);
        for bad in [
            "bytes=100-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=x-y",
            "bytes=5",
            "bytes=-",
        ] {
            assert_eq!(
                resolve(Some(bad), 100).unwrap_err().status,
                StatusCode::RANGE_NOT_SATISFIABLE,
                "{bad}"
            );
        }
        assert!(resolve(Some("bytes=0-0"), 0).is_err());
        assert_eq!(
            RangeRequest::parse(Some("bytes=100-")),
            RangeRequest::One(ByteRange::From(100))
        );
    }
}
