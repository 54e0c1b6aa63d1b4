//! TTLs on the command line: whole seconds (`300`) or a duration (`5m`, `1h30m`, `90s`,
//! `2h 15m`), read with `humantime`; zero, negative, fractional and absurd (past
//! [`MAX_TTL_LIMIT`], ten years) are refused with a sentence saying what is accepted. And the
//! notice for a grant shorter than asked.

use crate::config::MAX_TTL_LIMIT;
use crate::protocol::types::CapabilityResponse;

/// What `--ttl` accepts, for error messages and `--help`.
pub const TTL_FORMS: &str = "seconds (300) or a duration (5m, 1h30m, 90s)";

/// Parses a `--ttl` value into whole seconds (clap's value parser).
pub fn parse_ttl(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("a TTL is needed: {TTL_FORMS}"));
    }
    let secs: u64 = if let Ok(n) = text.parse::<i128>() {
        if n <= 0 {
            return Err(format!(
                "{text} is not a usable TTL: it must be positive, {TTL_FORMS}"
            ));
        }
        u64::try_from(n).unwrap_or(u64::MAX)
    } else if text.starts_with('-') {
        return Err(format!(
            "{text} is not a usable TTL: it must be positive, {TTL_FORMS}"
        ));
    } else {
        let d = humantime::parse_duration(text)
            .map_err(|e| format!("{text:?} is not a TTL ({e}): give {TTL_FORMS}"))?;
        if d.subsec_nanos() != 0 {
            return Err(format!(
                "{text} is not a whole number of seconds: TTLs are counted in seconds"
            ));
        }
        if d.as_secs() == 0 {
            return Err(format!(
                "{text} is not a usable TTL: it must be positive, {TTL_FORMS}"
            ));
        }
        d.as_secs()
    };
    if secs > MAX_TTL_LIMIT {
        return Err(format!(
            "{text} is too long for a TTL: at most {MAX_TTL_LIMIT} seconds (ten years)"
        ));
    }
    i64::try_from(secs).map_err(|_| format!("{text} is too long for a TTL"))
}

/// The stderr notice for a grant shorter than the TTL asked, naming the limit from the agent's
/// message: `granted for 300 s, not the 3600 s asked: <why>`; `None` when the grant is as asked
/// (or no TTL was asked).
pub fn shortened_notice(asked: Option<i64>, resp: &CapabilityResponse) -> Option<String> {
    let asked = u64::try_from(asked?).ok()?;
    let granted = resp.capability.as_ref()?.ttl;
    if granted >= asked {
        return None;
    }
    // The agent's message for a shortened grant is "Capability granted for N seconds, not the M
    // asked: <limit>"; older agents only say "Capability granted".
    let why = resp
        .message
        .split_once(" asked: ")
        .map(|(_, why)| why.to_string())
        .unwrap_or_else(|| "the agent's limit (it did not say which)".to_string());
    Some(format!(
        "note: granted for {granted} s, not the {asked} s asked: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_durations() {
        assert_eq!(parse_ttl("300"), Ok(300));
        assert_eq!(parse_ttl("5m"), Ok(300));
        assert_eq!(parse_ttl("1h30m"), Ok(5400));
        assert_eq!(parse_ttl("1h 30m"), Ok(5400));
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl(" 2d "), Ok(172_800));
    }

    #[test]
    fn zero_negative_fractional_and_absurd_are_refused() {
        for bad in [
            "0",
            "-5",
            "-5m",
            "0s",
            "",
            "1500ms",
            "fortnight",
            "5 parsecs",
        ] {
            let e = parse_ttl(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(parse_ttl("0").unwrap_err().contains("must be positive"));
        assert!(parse_ttl("-5").unwrap_err().contains("must be positive"));
        assert!(parse_ttl("1500ms").unwrap_err().contains("whole number"));
        assert!(parse_ttl("fortnight").unwrap_err().contains("5m, 1h30m"));
        assert!(parse_ttl("11years").unwrap_err().contains("too long"));
        assert!(
            parse_ttl("99999999999999999999999999")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse_ttl("9999999999999999999999999999999999999999h").is_err());
    }

    fn granted(ttl: u64, message: &str) -> CapabilityResponse {
        serde_json::from_value(serde_json::json!({
            "capability":{"id":"cap_1","type":"read","resource":"secret:/x","actions":["read"],
              "identity":"","issuer":"i","issued_at":"t","expires_at":"t","ttl":ttl,"maxUses":0,
              "usedCount":0,"signature":"s","metadata":{}},
            "status":"granted","message":message,"requestId":"m","processingTime":1
        }))
        .unwrap()
    }

    #[test]
    fn a_shorter_grant_is_noticed_with_the_limit() {
        let resp = granted(
            300,
            "Capability granted for 300 seconds, not the 3600 asked: the max_ttl of rule p/r",
        );
        assert_eq!(
            shortened_notice(Some(3600), &resp).as_deref(),
            Some("note: granted for 300 s, not the 3600 s asked: the max_ttl of rule p/r")
        );
        assert_eq!(shortened_notice(Some(300), &resp), None);
        assert_eq!(shortened_notice(None, &resp), None);
        let old = granted(300, "Capability granted");
        assert!(
            shortened_notice(Some(600), &old)
                .unwrap()
                .ends_with("the agent's limit (it did not say which)")
        );
    }
}
