//! The `current_time` tool: the time now in UTC, and in an IANA time zone when asked.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

/// Input of `current_time`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrentTimeInput {
    /// An IANA time zone name such as "Europe/Paris" or "America/New_York". UTC when omitted.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// The time `now` in UTC and in `timezone`, or an error naming the unknown zone.
pub fn describe(now: DateTime<Utc>, timezone: Option<&str>) -> Result<Value, String> {
    let utc = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let Some(name) = timezone.map(str::trim).filter(|name| !name.is_empty()) else {
        return Ok(json!({
            "utc": utc,
            "timezone": "UTC",
            "local": utc,
            "weekday": now.format("%A").to_string(),
        }));
    };
    let zone: Tz = name.parse().map_err(|_| {
        format!("unknown time zone '{name}': use an IANA name such as 'Europe/Paris' or 'UTC'")
    })?;
    let local = now.with_timezone(&zone);
    Ok(json!({
        "utc": utc,
        "timezone": zone.name(),
        "local": local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "utc_offset": local.format("%:z").to_string(),
        "weekday": local.format("%A").to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0)
            .single()
            .expect("valid date")
    }

    #[test]
    fn without_a_zone_it_answers_in_utc() {
        let value = describe(noon(), None).expect("utc");
        assert_eq!(value["utc"], "2026-07-01T12:00:00Z");
        assert_eq!(value["timezone"], "UTC");
        assert_eq!(value["weekday"], "Wednesday");
    }

    #[test]
    fn with_a_zone_it_applies_the_zones_offset_on_that_date() {
        let value = describe(noon(), Some("Europe/Paris")).expect("paris");
        assert_eq!(value["local"], "2026-07-01T14:00:00+02:00");
        assert_eq!(value["utc_offset"], "+02:00");
    }

    #[test]
    fn an_unknown_zone_is_a_clear_error() {
        let error = describe(noon(), Some("Mars/Olympus")).expect_err("unknown");
        assert!(error.contains("unknown time zone 'Mars/Olympus'"));
    }
}
