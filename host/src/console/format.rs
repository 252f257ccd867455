//! How the console shows values: times in UTC, ages, and stored payloads with
//! credentials masked.

use serde_json::Value;

/// What a masked value is shown as.
pub const MASK: &str = "••••";

/// `2026-12-03 15:35:31 UTC` for milliseconds since the epoch.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

pub fn utc_opt(ms: Option<i64>) -> String {
    ms.map(utc).unwrap_or_else(|| "—".into())
}

/// `YYYY-MM-DDTHH:MM` (UTC), as a `datetime-local` input takes it.
pub fn utc_input(ms: i64) -> String {
    let s = utc(ms);
    format!("{}T{}", &s[..10], &s[11..16])
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` or `YYYY-MM-DD HH:MM[:SS]`, read as
/// UTC, to milliseconds.
pub fn parse_utc(text: &str) -> Option<i64> {
    let text = text
        .trim()
        .trim_end_matches("UTC")
        .trim_end_matches('Z')
        .trim();
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (text, "00:00"),
    };
    let mut date_parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    if date_parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut time_parts = time.split(':').map(|p| p.parse::<i64>().ok());
    let hh = time_parts.next()??;
    let mm = time_parts.next().unwrap_or(Some(0))?;
    let ss = time_parts.next().unwrap_or(Some(0))?;
    if !(0..24).contains(&hh) || !(0..60).contains(&mm) || !(0..61).contains(&ss) {
        return None;
    }
    Some((days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss) * 1000)
}

/// `3 h 12 min`, `45 s`: how long ago `ms` was at `now`.
pub fn age(ms: i64, now: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether a header or JSON field of this name holds a credential.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization"
        || name == "cookie"
        || name == "set-cookie"
        || name.starts_with("x-hub-signature")
        || ["secret", "token", "password", "signature"]
            .iter()
            .any(|part| name.contains(part))
        // `api_key`, `privateKey`…, but not the identifiers trackers call
        // keys (an issue's `key`, a project's, an Atlassian Connect client's).
        || (name.contains("key")
            && !matches!(
                name.as_str(),
                "key" | "issuekey" | "issue_key" | "projectkey" | "project_key" | "clientkey"
                    | "client_key"
            ))
}

/// `value` with every sensitive field's value replaced by [`MASK`].
pub fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_sensitive(k) {
                    *v = Value::String(MASK.into());
                } else {
                    mask_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

/// Stored bytes for reading: pretty-printed masked JSON, else the text.
pub fn pretty_masked(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut value) => {
            mask_json(&mut value);
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_read_and_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_732_370_000_123), "2024-11-23 13:53:20 UTC");
        assert_eq!(parse_utc("2024-11-23T13:53:20"), Some(1_732_370_000_000));
        assert_eq!(parse_utc("2024-11-23 13:53"), Some(1_732_369_980_000));
        assert_eq!(parse_utc("2024-11-23"), Some(1_732_320_000_000));
        assert_eq!(parse_utc("2024-13-01"), None);
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(utc_input(1_732_370_000_123), "2024-11-23T13:53");
    }

    #[test]
    fn credentials_are_masked_at_any_depth() {
        let mut v = json!({"a": {"api_token": "x", "list": [{"Password": "y"}]}, "name": "n"});
        mask_json(&mut v);
        assert_eq!(
            v,
            json!({"a": {"api_token": MASK, "list": [{"Password": MASK}]}, "name": "n"})
        );
        assert!(is_sensitive("X-Hub-Signature-256"));
        assert!(is_sensitive("Cookie"));
        assert!(!is_sensitive("content-type"));
        assert!(is_sensitive("private_key") && is_sensitive("apiKey"));
        assert!(!is_sensitive("key") && !is_sensitive("clientKey"));
    }
}
