//! Time on the wire: RFC 3339 in UTC with whole seconds and a `Z`
//! (`2026-11-23T10:00:00Z`), the form the seeds' Python client parses with
//! `%Y-%m-%dT%H:%M:%SZ`.

use jiff::Timestamp;

/// Formats an instant as `YYYY-MM-DDTHH:MM:SSZ`, dropping sub-second digits.
pub fn rfc3339(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The current time, formatted by [`rfc3339`].
pub fn now_rfc3339() -> String {
    rfc3339(Timestamp::now())
}

/// Parses an RFC 3339 instant (any offset, any precision).
pub fn parse(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok()
}

/// Whole seconds since the Unix epoch.
pub fn unix_seconds(ts: Timestamp) -> i64 {
    ts.as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_and_z() {
        let ts =
            Timestamp::from_second(1_700_000_000).unwrap() + jiff::SignedDuration::from_millis(999);
        assert_eq!(rfc3339(ts), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn parses_offsets() {
        let a = parse("2023-11-14T23:13:20+01:00").unwrap();
        assert_eq!(unix_seconds(a), 1_700_000_000);
        assert!(parse("yesterday").is_none());
    }
}
