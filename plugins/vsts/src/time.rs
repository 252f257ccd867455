//! RFC 3339 timestamps as Azure DevOps writes them (`createdDate`), into
//! milliseconds since the Unix epoch.

/// Parses `2018-07-05T20:52:16.3051288Z` (any number of fraction digits, `Z`
/// or `±hh:mm`, no zone = UTC). Whitespace anywhere is ignored: Sentry's
/// fixtures carry `"2018-07-05T23:23:11.1935112   Z"`. `None` when it is not
/// such a timestamp or lies before 1970.
pub fn parse_ms(text: &str) -> Option<u64> {
    let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let (date, time) = s.split_once(['T', 't'])?;
    let mut d = date.split('-');
    let year: i64 = number(d.next()?, 4)?;
    let month: i64 = number(d.next()?, 2)?;
    let day: i64 = number(d.next()?, 2)?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        (clock, sign * (number(h, 2)? * 60 + number(m, 2)?))
    } else {
        (time, 0)
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (hms, f),
        Some(_) => return None,
        None => (clock, ""),
    };
    let mut t = hms.split(':');
    let hour: i64 = number(t.next()?, 2)?;
    let minute: i64 = number(t.next()?, 2)?;
    let second: i64 = number(t.next()?, 2)?;
    if t.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

fn number(s: &str, digits: usize) -> Option<i64> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_azure_devops_dates() {
        assert_eq!(parse_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_ms("2018-07-05T20:52:16.3051288Z"),
            Some(1_530_823_936_305)
        );
        assert_eq!(
            parse_ms("2018-07-05T23:23:11.1935112   Z"),
            Some(1_530_832_991_193)
        );
        assert_eq!(
            parse_ms("2014-10-27T15:37:24.873Z"),
            Some(1_414_424_244_873)
        );
        assert_eq!(
            parse_ms("2014-10-27T16:37:24.8+01:00"),
            Some(1_414_424_244_800)
        );
        assert_eq!(parse_ms("2024-02-29T12:00:00"), Some(1_709_208_000_000));
    }

    #[test]
    fn refuses_other_text() {
        for bad in [
            "",
            "yesterday",
            "2018-07-05",
            "2018-13-05T00:00:00Z",
            "2018-07-05T25:00:00Z",
            "2018-07-05T20:52:16.Z",
            "1969-12-31T23:59:59Z",
            "18-07-05T20:52:16Z",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }
}
