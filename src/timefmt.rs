//! Time on the wire: RFC 3339 in UTC with whole seconds and a `Z`
//! (`2026-11-23T10:00:00Z`), the form the seeds' Python client parses with
//! `%Y-%m-%dT%H:%M:%SZ`.

use jiff::Timestamp;

/// Formats an instant as `YYYY-MM-DDTHH:MM:SSZ`, dropping sub-second digits.
///
/// Every answer and audit record carries a few of these, so the years 1970 to 9999 are
/// formatted by plain arithmetic (the civil-from-days algorithm), identical to jiff's
/// `strftime`, which formats the rest.
pub fn rfc3339(ts: Timestamp) -> String {
    let secs = ts.as_second();
    // Before 1970 the second is rounded towards zero, not down: leave that to jiff.
    if !(0..=MAX_FAST_SECOND).contains(&secs) || ts.subsec_nanosecond() < 0 {
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    let mut out = String::with_capacity(20);
    for (n, width, sep) in [
        (y, 4, '-'),
        (m, 2, '-'),
        (d, 2, 'T'),
        (hh, 2, ':'),
        (mm, 2, ':'),
        (ss, 2, 'Z'),
    ] {
        let digits = [1000, 100, 10, 1];
        for p in &digits[4 - width..] {
            out.push(char::from(b'0' + (n / p % 10) as u8));
        }
        out.push(sep);
    }
    out
}

/// 9999-12-31T23:59:59Z: up to here a year has four digits.
const MAX_FAST_SECOND: i64 = 253_402_300_799;

/// Year, month, day of the proleptic Gregorian calendar for days since 1970-01-01 (`days` ≥ 0).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The current time, formatted by [`rfc3339`]; formatted once per second per thread.
pub fn now_rfc3339() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let now = Timestamp::now();
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return rfc3339(now);
        };
        if last.0 != now.as_second() {
            *last = (now.as_second(), rfc3339(now));
        }
        last.1.clone()
    })
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
    fn arithmetic_formatting_matches_jiff_everywhere() {
        let jiff = |ts: Timestamp| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut edges = vec![
            0,
            59,
            86_399,
            86_400,
            951_782_400, // 2000-02-29
            1_709_251_199,
            1_709_251_200, // 2024-03-01
            4_107_542_400, // 2100-03-01
            MAX_FAST_SECOND,
            MAX_FAST_SECOND + 1,
            -1,
            -86_401,
            -62_135_596_800, // 0001-01-01
        ];
        // Every day from 1970 to 2500 at a varying time of day, and a spread beyond.
        edges.extend((0..194_000i64).map(|d| d * 86_400 + (d * 7919) % 86_400));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            edges.push((x % (MAX_FAST_SECOND as u64 + 10_000_000)) as i64 - 5_000_000);
        }
        for s in edges {
            let Ok(ts) = Timestamp::from_second(s) else {
                continue;
            };
            for t in [ts, ts + jiff::SignedDuration::from_millis(999)] {
                assert_eq!(rfc3339(t), jiff(t), "second {s}");
            }
        }
        let now = Timestamp::now();
        let a = now_rfc3339();
        assert!(a == rfc3339(now) || a == rfc3339(Timestamp::now()));
    }

    #[test]
    fn parses_offsets() {
        let a = parse("2023-11-14T23:13:20+01:00").unwrap();
        assert_eq!(unix_seconds(a), 1_700_000_000);
        assert!(parse("yesterday").is_none());
    }
}
