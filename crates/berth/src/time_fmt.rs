//! Time formatting for API responses (RFC 3339, UTC).

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-27T13:18:09Z`).
pub fn rfc3339(unix_seconds: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
