//! Time formatting for API responses (RFC 3339, UTC).

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-27T13:18:09Z`).
pub fn rfc3339(unix_seconds: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-11-27T13:18:09.123Z`), as Harbor's API does.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z")).ok()
        })
        .unwrap_or_default()
}

/// Parses a time as Harbor's query filters accept it: `YYYY-MM-DD hh:mm:ss` (UTC), RFC 3339,
/// or Unix seconds. Returns Unix milliseconds.
pub fn parse_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    let plain = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &plain) {
        return Some((t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339_ms(1_795_786_249_123), "2026-11-27T13:30:49.123Z");
        assert_eq!(super::parse_ms("2026-11-27 13:30:49"), Some(1_795_786_249_000));
        assert_eq!(super::parse_ms("2026-11-27T13:30:49.123Z"), Some(1_795_786_249_123));
        assert_eq!(super::parse_ms("1795786249"), Some(1_795_786_249_000));
        assert_eq!(super::parse_ms("yesterday"), None);
    }
}
