//! The restrictions a capability carries: checked for sense when it is requested, and for truth
//! at every validation.
//!
//! - `ipAddresses`: addresses or CIDR blocks; the validation context's `ipAddress` must fall in
//!   one. A validation without an address fails (a constraint is never skipped for lack of data).
//! - `timeWindow`: `hours` (0–23) and `daysOfWeek` (0 = Sunday) in UTC, or in the one IANA
//!   time zone `timezones` names (from the system's tz database); `blackoutPeriods` of RFC 3339
//!   `start`/`end` during which use is refused.
//! - `environment`: key/values the validation context must state: in its `environment`, or in
//!   upstream's `runtime` by dotted key (`type`, `container.image`, `host.hostname`, …). At
//!   least one of them must state each key, and every one that states it must state the
//!   required value; an empty required value is refused at request time (it would match a
//!   client that states nothing). What a client states is not checked by the kernel: this
//!   guards against a capability being used in the wrong place by mistake, it does not stop a
//!   holder that claims the values.
//! - `rateLimit`, `geography`: upstream names that cannot be enforced on a local socket; a
//!   request carrying them is refused rather than granted without them.

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;

use crate::protocol::types::{Constraints, RequestContext};

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Checks that a requested set of constraints is well-formed and enforceable.
pub fn check_well_formed(c: &Constraints) -> Result<(), String> {
    if c.rate_limit.as_ref().is_some_and(|v| !v.is_null()) {
        return Err("constraint rateLimit cannot be enforced by this agent; remove it".into());
    }
    if c.geography.as_ref().is_some_and(|v| !v.is_null()) {
        return Err("constraint geography cannot be enforced by this agent; remove it".into());
    }
    if let Some(ips) = &c.ip_addresses {
        if ips.is_empty() {
            return Err(
                "constraint ipAddresses is empty, so the capability could never be used".into(),
            );
        }
        if let Some(bad) = ips.iter().find(|s| parse_net(s).is_none()) {
            return Err(format!(
                "constraint ipAddresses: {bad:?} is not an IP address or CIDR block"
            ));
        }
    }
    if let Some(w) = &c.time_window {
        if w.hours.as_ref().is_some_and(Vec::is_empty)
            || w.days_of_week.as_ref().is_some_and(Vec::is_empty)
        {
            return Err(
                "constraint timeWindow has an empty list, so the capability could never be used"
                    .into(),
            );
        }
        if let Some(bad) = w.hours.iter().flatten().find(|h| **h > 23) {
            return Err(format!(
                "constraint timeWindow.hours: {bad} is not an hour from 0 to 23"
            ));
        }
        if let Some(bad) = w.days_of_week.iter().flatten().find(|d| **d > 6) {
            return Err(format!(
                "constraint timeWindow.daysOfWeek: {bad} is not a day from 0 (Sunday) to 6"
            ));
        }
        if let Some(zones) = &w.timezones {
            zone_of(zones).map_err(|e| format!("constraint timeWindow.timezones: {e}"))?;
        }
        for p in w.blackout_periods.iter().flatten() {
            let (Some(s), Some(e)) = (
                crate::timefmt::parse(&p.start),
                crate::timefmt::parse(&p.end),
            ) else {
                return Err(format!(
                    "constraint blackoutPeriods: {:?}–{:?} is not a pair of RFC 3339 times",
                    p.start, p.end
                ));
            };
            if e <= s {
                return Err(format!(
                    "constraint blackoutPeriods: end {} is not after start {}",
                    p.end, p.start
                ));
            }
        }
    }
    if let Some(env) = &c.environment {
        if let Some((k, _)) = env.iter().find(|(k, v)| k.is_empty() || v.is_empty()) {
            return Err(format!(
                "constraint environment: {k:?} has an empty key or value, which a validation \
                 that states nothing would match"
            ));
        }
    }
    Ok(())
}

/// The longest time zone name accepted.
const ZONE_NAME_MAX: usize = 64;

/// The one time zone a `timezones` list names (UTC when empty is refused earlier).
fn zone_of(zones: &[String]) -> Result<jiff::tz::TimeZone, String> {
    let name = match zones {
        [one] => one,
        [] => return Err("the list is empty; leave it out for UTC".into()),
        _ => {
            return Err(format!(
                "{} time zones given; only one is supported (the hours and days are read in it)",
                zones.len()
            ));
        }
    };
    if name.len() > ZONE_NAME_MAX || name.is_empty() {
        return Err(format!("{name:?} is not a time zone name"));
    }
    jiff::tz::TimeZone::get(name).map_err(|_| {
        format!("{name:?} is not a time zone this host knows (IANA names, e.g. Europe/Paris)")
    })
}

/// The value a validation context states for an `environment` key: from `runtime` by dotted
/// path (upstream's keys), ending in a string.
fn runtime_value<'a>(runtime: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    key.split('.')
        .try_fold(runtime, |v, part| v.as_object()?.get(part))?
        .as_str()
}

/// Checks the constraints against a validation's context at `now`; the error says which failed.
pub fn check_holds(
    c: &Constraints,
    ctx: Option<&RequestContext>,
    now: Timestamp,
) -> Result<(), String> {
    if let Some(ips) = &c.ip_addresses {
        let addr = ctx.and_then(|c| c.ip_address.as_deref());
        let Some(addr) = addr else {
            return Err(
                "the capability is restricted to certain IP addresses and no ipAddress was given"
                    .into(),
            );
        };
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return Err(format!("ipAddress {addr:?} is not an IP address"));
        };
        if !ips
            .iter()
            .filter_map(|s| parse_net(s))
            .any(|n| n.contains(&ip))
        {
            return Err(format!("ipAddress {ip} is not among the allowed addresses"));
        }
    }
    if let Some(w) = &c.time_window {
        let (zone, zone_name) = match &w.timezones {
            None => (jiff::tz::TimeZone::UTC, "UTC"),
            Some(zones) => (
                zone_of(zones)
                    .map_err(|e| format!("the capability's time zone cannot be used: {e}"))?,
                zones.first().map_or("UTC", String::as_str),
            ),
        };
        let t = now.to_zoned(zone);
        if let Some(hours) = &w.hours {
            if !hours.contains(&(t.hour() as u8)) {
                return Err(format!(
                    "hour {} {zone_name} is outside the capability's time window",
                    t.hour()
                ));
            }
        }
        if let Some(days) = &w.days_of_week {
            let d = t.weekday().to_sunday_zero_offset() as u8;
            if !days.contains(&d) {
                return Err(format!(
                    "day {d} (0 = Sunday) is outside the capability's time window"
                ));
            }
        }
        for p in w.blackout_periods.iter().flatten() {
            let (Some(s), Some(e)) = (
                crate::timefmt::parse(&p.start),
                crate::timefmt::parse(&p.end),
            ) else {
                return Err("a blackout period cannot be read".into());
            };
            if s <= now && now < e {
                return Err(format!("use is blacked out from {} to {}", p.start, p.end));
            }
        }
    }
    if let Some(env) = &c.environment {
        let given = ctx.and_then(|c| c.environment.as_ref());
        let runtime = ctx.and_then(|c| c.runtime.as_ref());
        for (k, v) in env {
            let stated = [
                given.and_then(|g| g.get(k)).map(String::as_str),
                runtime.and_then(|r| runtime_value(r, k)),
            ];
            let mut stated = stated.into_iter().flatten().peekable();
            if stated.peek().is_none() {
                return Err(format!(
                    "environment {k} is required and the validation context states none (in environment or runtime)"
                ));
            }
            if !stated.all(|s| s == v) {
                return Err(format!("environment {k} does not have the required value"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(v: serde_json::Value) -> Constraints {
        serde_json::from_value(v).unwrap()
    }
    fn ctx(v: serde_json::Value) -> RequestContext {
        serde_json::from_value(v).unwrap()
    }
    // 2023-11-14T22:13:20Z, a Tuesday.
    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    #[test]
    fn ip_addresses_with_cidr() {
        let k = c(json!({"ipAddresses":["10.0.0.0/8","192.168.1.5","::1"]}));
        check_well_formed(&k).unwrap();
        assert!(check_holds(&k, Some(&ctx(json!({"ipAddress":"10.2.3.4"}))), now()).is_ok());
        assert!(check_holds(&k, Some(&ctx(json!({"ipAddress":"192.168.1.5"}))), now()).is_ok());
        assert!(check_holds(&k, Some(&ctx(json!({"ipAddress":"::1"}))), now()).is_ok());
        assert!(check_holds(&k, Some(&ctx(json!({"ipAddress":"192.168.1.6"}))), now()).is_err());
        assert!(
            check_holds(&k, None, now()).is_err(),
            "no address must fail, not skip"
        );
        assert!(check_holds(&k, Some(&ctx(json!({"ipAddress":"nope"}))), now()).is_err());
        assert!(check_well_formed(&c(json!({"ipAddresses":["10.0.0.0/33"]}))).is_err());
        assert!(check_well_formed(&c(json!({"ipAddresses":[]}))).is_err());
    }

    #[test]
    fn time_windows_and_blackouts() {
        assert!(check_holds(&c(json!({"timeWindow":{"hours":[22]}})), None, now()).is_ok());
        assert!(check_holds(&c(json!({"timeWindow":{"hours":[9,10]}})), None, now()).is_err());
        assert!(check_holds(&c(json!({"timeWindow":{"daysOfWeek":[2]}})), None, now()).is_ok());
        assert!(check_holds(&c(json!({"timeWindow":{"daysOfWeek":[0,6]}})), None, now()).is_err());
        let b = c(
            json!({"timeWindow":{"blackoutPeriods":[{"start":"2023-11-14T22:00:00Z","end":"2023-11-14T23:00:00Z"}]}}),
        );
        check_well_formed(&b).unwrap();
        assert!(check_holds(&b, None, now()).is_err());
        assert!(check_well_formed(&c(json!({"timeWindow":{"hours":[24]}}))).is_err());
        assert!(check_well_formed(&c(json!({"timeWindow":{"hours":[]}}))).is_err());
        assert!(check_well_formed(&c(json!({"timeWindow":{"daysOfWeek":[]}}))).is_err());
        assert!(
            check_well_formed(&c(
                json!({"timeWindow":{"blackoutPeriods":[{"start":"x","end":"y"}]}})
            ))
            .is_err()
        );
    }

    #[test]
    fn environment_and_unenforceable_constraints() {
        let k = c(json!({"environment":{"stage":"prod"}}));
        assert!(
            check_holds(
                &k,
                Some(&ctx(json!({"environment":{"stage":"prod","x":"y"}}))),
                now()
            )
            .is_ok()
        );
        assert!(
            check_holds(
                &k,
                Some(&ctx(json!({"environment":{"stage":"dev"}}))),
                now()
            )
            .is_err()
        );
        assert!(check_holds(&k, None, now()).is_err());
        assert!(check_well_formed(&c(json!({"rateLimit":{"requests":5}}))).is_err());
        assert!(check_well_formed(&c(json!({"geography":["EU"]}))).is_err());
    }

    #[test]
    fn a_time_zone_moves_the_window() {
        // 22:13 UTC on a Tuesday is 07:13 on Wednesday in Tokyo.
        let tokyo = |w: serde_json::Value| {
            let mut w = w;
            w["timezones"] = json!(["Asia/Tokyo"]);
            c(json!({ "timeWindow": w }))
        };
        check_well_formed(&tokyo(json!({"hours":[7]}))).unwrap();
        assert!(check_holds(&tokyo(json!({"hours":[7]})), None, now()).is_ok());
        assert!(check_holds(&tokyo(json!({"hours":[22]})), None, now()).is_err());
        assert!(check_holds(&tokyo(json!({"daysOfWeek":[3]})), None, now()).is_ok());
        assert!(check_holds(&tokyo(json!({"daysOfWeek":[2]})), None, now()).is_err());
        let bad = |zones: serde_json::Value| {
            check_well_formed(&c(json!({"timeWindow":{"hours":[1],"timezones":zones}})))
                .unwrap_err()
        };
        assert!(bad(json!(["Mars/Olympus"])).contains("not a time zone this host knows"));
        assert!(bad(json!(["UTC", "Asia/Tokyo"])).contains("only one"));
        assert!(bad(json!([])).contains("empty"));
        assert!(bad(json!(["x".repeat(100)])).contains("not a time zone name"));
    }

    #[test]
    fn environment_constraints_read_upstreams_runtime_too() {
        let k = c(json!({"environment":{"type":"k8s","container.image":"app:1"}}));
        check_well_formed(&k).unwrap();
        let rt = |v: serde_json::Value| ctx(json!({ "runtime": v }));
        let good = rt(json!({"type":"k8s","id":"x","container":{"id":"c","image":"app:1"}}));
        assert!(check_holds(&k, Some(&good), now()).is_ok());
        // A key stated nowhere, a wrong value, a non-string: not satisfied.
        assert!(check_holds(&k, Some(&rt(json!({"type":"k8s"}))), now()).is_err());
        assert!(
            check_holds(
                &k,
                Some(&rt(json!({"type":"docker","container":{"image":"app:1"}}))),
                now()
            )
            .is_err()
        );
        assert!(
            check_holds(
                &c(json!({"environment":{"host.pid":"1"}})),
                Some(&rt(json!({"host":{"pid":1}}))),
                now()
            )
            .is_err()
        );
        // Both sources stating it: both must agree.
        let both = ctx(
            json!({"environment":{"type":"k8s","container.image":"app:1"},
                              "runtime":{"type":"docker"}}),
        );
        assert!(check_holds(&k, Some(&both), now()).is_err());
        // An empty required value would match a client that states an empty field.
        assert!(check_well_formed(&c(json!({"environment":{"type":""}}))).is_err());
        assert!(check_well_formed(&c(json!({"environment":{"":"x"}}))).is_err());
    }
}
