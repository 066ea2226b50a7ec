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

/// Parses a time in a query filter: Harbor's `YYYY-MM-DD hh:mm:ss` (UTC; also with `T`,
/// fractional seconds, a trailing `Z`, or a date alone), RFC 3339 with an offset, or Unix
/// seconds. Returns Unix milliseconds.
pub fn parse_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    parse_harbor_time(s).or_else(|| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    })
}

/// Harbor's own time form in `q` values: `2020-04-09 02:36:00` (UTC), also with a `T`,
/// fractional seconds and a trailing `Z`, or a date alone; as Unix milliseconds.
fn parse_harbor_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, clock) = match s.split_once([' ', 'T']) {
        Some((d, c)) => (d, Some(c)),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d.iter().any(|x| x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let (y, mo, da) = (d[0].parse::<i32>().ok()?, d[1].parse::<u8>().ok()?, d[2].parse::<u8>().ok()?);
    let date = time::Date::from_calendar_date(y, time::Month::try_from(mo).ok()?, da).ok()?;
    let (h, mi, sec, ms) = match clock {
        None => (0, 0, 0, 0),
        Some(c) => {
            let (hms, frac) = c.split_once('.').unwrap_or((c, ""));
            let mut t = hms.splitn(3, ':');
            let h = t.next()?.parse::<u8>().ok()?;
            let mi = t.next()?.parse::<u8>().ok()?;
            let sec = t.next().map(str::parse::<u8>).transpose().ok()?.unwrap_or(0);
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let ms = format!("{frac:0<3}")[..3].parse::<u16>().ok()?;
            (h, mi, sec, ms)
        }
    };
    let t = time::Time::from_hms_milli(h, mi, sec, ms).ok()?;
    Some((time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
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
        assert_eq!(super::parse_ms("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(super::parse_ms("2020-04-09 02:36:00"), Some(1_586_399_760_000));
        assert_eq!(super::parse_ms("2020-04-09T02:36:00.5Z"), Some(1_586_399_760_500));
        assert_eq!(super::parse_ms("2020-04-09"), Some(1_586_390_400_000));
        assert_eq!(super::parse_ms("2020-13-09 00:00:00"), None);
        assert_eq!(super::parse_ms("yesterday"), None);
        assert_eq!(super::parse_ms("2020-04-09 02:36:00.x"), None);
    }
}
