//! RFC 3339 timestamps as `metav1.Time` and `metav1.MicroTime` write them in
//! JSON: UTC, `Z`, whole seconds or exactly six fractional digits.

/// Seconds from the Unix epoch to 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z:
/// Go's RFC 3339 layouts have four-digit years.
const MIN_SECONDS: i64 = -62_167_219_200;
const END_SECONDS: i64 = 253_402_300_800;
/// Unix seconds of Go's zero `time.Time`, 0001-01-01T00:00:00Z.
pub(super) const GO_ZERO_SECONDS: i64 = -62_135_596_800;

/// Formats Unix `seconds` (plus `micros` when given) as `2006-01-02T15:04:05Z`
/// or `2006-01-02T15:04:05.000000Z`; `None` outside years 0–9999.
pub fn format(seconds: i64, micros: Option<u32>) -> Option<String> {
    if !(MIN_SECONDS..END_SECONDS).contains(&seconds) {
        return None;
    }
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let secs = seconds.rem_euclid(86_400);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
    if let Some(micros) = micros {
        out.push_str(&format!(".{micros:06}"));
    }
    out.push('Z');
    Some(out)
}

/// Parses an RFC 3339 timestamp (`Z` or a `±hh:mm` offset, optional fraction cut
/// to nine digits) into Unix seconds and nanoseconds.
pub fn parse(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    // Go takes `.` or `,` and any number of digits, keeping nine.
    if let Some(fraction) = rest.strip_prefix(b".").or_else(|| rest.strip_prefix(b",")) {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let kept = n.min(9);
        nanos = u32::try_from(digits(&fraction[..kept])? * 10i64.pow(9 - kept as u32)).ok()?;
        rest = &fraction[n..];
    }
    let offset = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            // Go's own bounds on an offset.
            if h > 24 || m > 60 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian, day 0 = 1970-01-01).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(format(0, None).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(format(1_514_764_800, None).unwrap(), "2018-01-01T00:00:00Z");
        assert_eq!(
            format(951_782_400 + 3661, Some(7)).unwrap(),
            "2000-02-29T01:01:01.000007Z"
        );
        assert_eq!(format(-1, None).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(format(MIN_SECONDS, None).unwrap(), "0000-01-01T00:00:00Z");
        assert_eq!(
            format(END_SECONDS - 1, None).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(format(END_SECONDS, None), None);
        assert_eq!(format(i64::MIN, None), None);
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(parse("2018-01-01T00:00:00Z"), Some((1_514_764_800, 0)));
        assert_eq!(parse("2018-01-01T02:30:00+02:30"), Some((1_514_764_800, 0)));
        assert_eq!(parse("2017-12-31T23:00:00-01:00"), Some((1_514_764_800, 0)));
        assert_eq!(
            parse("2018-01-01T00:00:00.123456Z"),
            Some((1_514_764_800, 123_456_000))
        );
        assert_eq!(
            parse("2018-01-01T00:00:00.5Z"),
            Some((1_514_764_800, 500_000_000))
        );
        assert_eq!(parse("2018-01-02T01:00:00+24:60"), Some((1_514_764_800, 0)));
        assert_eq!(parse("2018-01-01T00:00:00+25:00"), None);
        assert_eq!(parse("2018-01-01T00:00:00+00:61"), None);
        // Past nine digits Go truncates.
        assert_eq!(
            parse("2018-01-01T00:00:00.99999999999999999999Z"),
            Some((1_514_764_800, 999_999_999))
        );
        assert_eq!(
            parse("2018-01-01T00:00:00,5Z"),
            Some((1_514_764_800, 500_000_000))
        );
        for seconds in [MIN_SECONDS, -86_401, 0, 951_782_400, END_SECONDS - 1] {
            assert_eq!(parse(&format(seconds, None).unwrap()), Some((seconds, 0)));
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            "2018-01-01",
            "2018-01-01 00:00:00Z",
            "2018-01-01T00:00:00",
            "2018-02-30T00:00:00Z",
            "2018-13-01T00:00:00Z",
            "2018-01-01T24:00:00Z",
            "2018-01-01T00:00:60Z",
            "2018-01-01T00:00:00.Z",
            "2018-01-01T00:00:00+0200",
            "2018-01-01T00:00:00Zx",
            "+018-01-01T00:00:00Z",
            "2018-01-01T00:00:00é",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
