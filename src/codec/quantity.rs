//! `resource.Quantity` (`"500m"`, `"1Gi"`, `"1e3"`): the string kube-apiserver
//! stores and serves for one, `ParseQuantity(text).String()`.
//!
//! That is not always the canonical form: a string Go judges canonical while
//! parsing is kept as written (`"+1"`, `"01"`, `"1e3"`, `"1.500"`), and
//! Go's formatting has quirks that are kept too (a decimal value past the `E`
//! suffix loses its suffix: `"1000E"` is `"1"`). Values that fit an int64 at
//! nano precision follow Go's int64 arithmetic, int32 exponents included;
//! the rest follow its `inf.Dec` path, which rounds up to 10^-9 and caps
//! binary-suffixed values at 2^63-1.

use num_bigint::BigUint;

use super::CodecError;

type Result<T> = std::result::Result<T, CodecError>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalExponent,
    BinarySI,
    DecimalSI,
}

/// The number of 10^-9 units in 2^63-1, the cap of binary values.
const MAX_NANOS: &str = "9223372036854775807000000000";

/// `ParseQuantity(text).String()`, or why Go rejects `text`.
pub fn canonical(text: &str) -> Result<String> {
    match text {
        "" => return Err(invalid(text, "is empty")),
        "0" => return Ok(text.into()),
        _ => {}
    }
    let parts = split(text).ok_or_else(|| invalid(text, "is not a quantity"))?;
    let (exponent, format) =
        suffix(parts.suffix).ok_or_else(|| invalid(text, "has an unknown suffix"))?;

    // Go's own bound on the digits its int64 path takes.
    let digits = parts.num.len() + parts.denom.len();
    let (precision, mut scale, multiplier) = match format {
        Format::BinarySI if parts.denom.is_empty() => (
            14 - parts.num.len() as i64 - i64::from(exponent) * 3 / 10,
            0,
            1i64 << exponent,
        ),
        Format::BinarySI => (-1, 0, 1),
        _ => (18 - digits as i64, exponent, 1),
    };
    if precision >= 0 {
        scale = scale.wrapping_sub(parts.denom.len() as i32);
        if scale >= -9 {
            let shifted = format!("{}{}", parts.num, parts.denom);
            let value: i64 = shifted.parse().expect("at most 18 digits");
            if let Some(mut result) = value.checked_mul(multiplier) {
                if parts.negative {
                    result = -result;
                }
                // Go keeps the text of what its heuristic deems canonical.
                let kept = match format {
                    Format::BinarySI => value & 7 != 0,
                    _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
                };
                return Ok(if kept {
                    text.into()
                } else {
                    small(result, scale, format)
                });
            }
        }
    }

    if !parts.value.bytes().any(|b| b.is_ascii_digit()) {
        return Err(invalid(text, "has a bad number"));
    }
    match format {
        Format::BinarySI => Ok(large_binary(&parts, exponent)),
        _ => large_decimal(text, &parts, exponent, format),
    }
}

fn invalid(text: &str, why: &str) -> CodecError {
    if text.len() <= 40 {
        CodecError::Corrupt(format!("quantity {text:?} {why}"))
    } else {
        CodecError::Corrupt(format!("quantity of {} bytes {why}", text.len()))
    }
}

/// A quantity split as Go's scanner does it; `num` has no leading zeros
/// and is "0" when empty.
struct Parts<'a> {
    negative: bool,
    /// Sign, number and fraction, as written.
    value: &'a str,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

fn split(text: &str) -> Option<Parts<'_>> {
    let s = text.as_bytes();
    let end = s.len();
    let digits_from = |mut at: usize| {
        while at < end && s[at].is_ascii_digit() {
            at += 1;
        }
        at
    };
    let mut parts = Parts {
        negative: s.first() == Some(&b'-'),
        value: text,
        num: "0",
        denom: "",
        suffix: "",
    };
    let mut pos = usize::from(matches!(s.first(), Some(b'-' | b'+')));
    while pos < end && s[pos] == b'0' {
        pos += 1;
    }
    if pos == end {
        parts.value = "0";
        return Some(parts);
    }
    let start = pos;
    pos = digits_from(pos);
    if pos > start {
        parts.num = &text[start..pos];
    }
    if pos < end && s[pos] == b'.' {
        let start = pos + 1;
        pos = digits_from(start);
        parts.denom = &text[start..pos];
    }
    parts.value = &text[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&s[pos]) {
        pos += 1;
    }
    if pos < end && matches!(s[pos], b'-' | b'+') {
        pos += 1;
    }
    // Every byte so far was ASCII, so the slices are on char boundaries.
    (digits_from(pos) == end).then(|| {
        parts.suffix = &text[suffix_start..];
        parts
    })
}

/// The power of ten or two a suffix stands for, and the format it picks.
fn suffix(suffix: &str) -> Option<(i32, Format)> {
    let decimal = |exponent| Some((exponent, Format::DecimalSI));
    let binary = |exponent| Some((exponent, Format::BinarySI));
    match suffix {
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ if suffix.len() > 1 && matches!(suffix.as_bytes()[0], b'e' | b'E') => {
            // Go parses an int64 and keeps its low 32 bits.
            let exponent: i64 = suffix[1..].parse().ok()?;
            Some((exponent as i32, Format::DecimalExponent))
        }
        _ => None,
    }
}

fn decimal_suffix(exponent: i32, format: Format) -> String {
    if format == Format::DecimalExponent {
        return match exponent {
            0 => String::new(),
            e => format!("e{e}"),
        };
    }
    // Go finds no suffix past E (nor below n) and writes none.
    let suffix = match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => "",
    };
    suffix.into()
}

/// The string of `value` × 10^`scale`, by Go's int64 arithmetic.
fn small(value: i64, scale: i32, format: Format) -> String {
    if value == 0 {
        return "0".into();
    }
    // Binary values here are whole (scale 0).
    if format == Format::BinarySI && !(-1023..=1023).contains(&value) {
        return base1024(value);
    }
    let format = match format {
        Format::BinarySI => Format::DecimalSI,
        other => other,
    };
    let (mut amount, times) = strip_tens(value);
    let mut exponent = scale.wrapping_add(times);
    let step = match exponent % 3 {
        1 | -2 => 1,
        2 | -1 => 2,
        _ => 0,
    };
    match amount.checked_mul(10i64.pow(step)) {
        Some(a) => {
            amount = a;
            exponent = exponent.wrapping_sub(step as i32);
        }
        None => {
            // Go redoes it on a big.Int one digit at a time, which differs
            // only when the exponent wraps around: at most three steps.
            let mut wide = i128::from(amount);
            while exponent % 3 != 0 {
                wide *= 10;
                exponent = exponent.wrapping_sub(1);
            }
            return format!("{wide}{}", decimal_suffix(exponent, format));
        }
    }
    format!("{amount}{}", decimal_suffix(exponent, format))
}

fn strip_tens(value: i64) -> (i64, i32) {
    let mut amount = value;
    let mut times = 0;
    while amount % 10 == 0 && amount != 0 {
        amount /= 10;
        times += 1;
    }
    (amount, times)
}

/// A whole value as a multiple of the largest power of 1024 it is one of.
fn base1024(value: i64) -> String {
    let mut amount = value;
    let mut times = 0;
    while amount % 1024 == 0 && amount != 0 {
        amount /= 1024;
        times += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][times];
    format!("{amount}{suffix}")
}

/// A decimal-suffixed quantity beyond the int64 path: `digits` × 10^(exponent
/// - fraction digits), rounded up to 10^-9, never capped.
fn large_decimal(text: &str, parts: &Parts, exponent: i32, format: Format) -> Result<String> {
    let digits: String = parts.value.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok("0".into());
    }
    // Go keeps the scale (fraction digits - exponent) and its steps in int32;
    // past that it would work on numbers of billions of digits.
    let range = || invalid(text, "has an exponent out of range");
    let in_range = |n: i64| i32::try_from(n).is_ok();
    let scale = parts.denom.len() as i64 - i64::from(exponent);
    if exponent == i32::MIN || !in_range(scale) || !in_range(9 - scale) {
        return Err(range());
    }
    let kept = significant.trim_end_matches('0');
    let mut power = -scale + (significant.len() - kept.len()) as i64;
    let mut amount = kept.to_string();
    if power < -9 {
        let cut = (-9 - power) as u64;
        amount = match amount.len() as u64 {
            len if cut >= len => "1".into(),
            // The digits cut end in a non-zero one: round up.
            len => increment(&amount[..(len - cut) as usize]),
        };
        let whole = amount.trim_end_matches('0').len();
        power = -9 + (amount.len() - whole) as i64;
        amount.truncate(whole);
    }
    if !in_range(power + 9) {
        return Err(range());
    }
    Ok(canonical_decimal(
        parts.negative,
        amount,
        power as i32,
        format,
    ))
}

/// `amount` × 10^`power`, `amount` without trailing zeros, in the largest
/// power of a thousand that keeps it whole.
fn canonical_decimal(negative: bool, mut amount: String, mut power: i32, format: Format) -> String {
    while power % 3 != 0 {
        amount.push('0');
        power -= 1;
    }
    let sign = if negative { "-" } else { "" };
    format!("{sign}{amount}{}", decimal_suffix(power, format))
}

fn increment(digits: &str) -> String {
    let mut out = digits.as_bytes().to_vec();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return String::from_utf8(out).expect("ASCII digits");
        }
    }
    format!("1{}", String::from_utf8(out).expect("ASCII digits"))
}

/// A binary-suffixed quantity beyond the int64 path: rounded up to 10^-9
/// and capped at 2^63-1; below 1 it turns decimal.
fn large_binary(parts: &Parts, exponent: i32) -> String {
    let max = MAX_NANOS.parse::<BigUint>().expect("a number");
    let nanos = if parts.num.len() > 19 {
        // At least 10^19.
        max.clone()
    } else {
        let mut fraction = parts.denom.trim_end_matches('0').to_string();
        // With 2^60 at most, digits past the 100th cannot move the result
        // over a whole nano, only off one; a last 1 stands in for them.
        if fraction.len() > 100 {
            fraction.truncate(100);
            fraction.push('1');
        }
        let scaled = format!("{}{fraction}", parts.num)
            .parse::<BigUint>()
            .expect("digits")
            << exponent;
        let nanos = match fraction.len() as u32 {
            len if len <= 9 => scaled * BigUint::from(10u32).pow(9 - len),
            len => {
                let divisor = BigUint::from(10u32).pow(len - 9);
                let rounded_down = &scaled / &divisor;
                if scaled % divisor == BigUint::ZERO {
                    rounded_down
                } else {
                    rounded_down + 1u32
                }
            }
        };
        nanos.min(max)
    };
    if nanos == BigUint::ZERO {
        return "0".into();
    }
    let billion = BigUint::from(1_000_000_000u32);
    if nanos >= BigUint::from(1024u32) * &billion && &nanos % &billion == BigUint::ZERO {
        // At most 2^63-1.
        let whole = i64::try_from(nanos / billion).expect("capped");
        return base1024(if parts.negative { -whole } else { whole });
    }
    let digits = nanos.to_string();
    let kept = digits.trim_end_matches('0');
    let power = -9 + (digits.len() - kept.len()) as i32;
    canonical_decimal(parts.negative, kept.into(), power, Format::DecimalSI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pairs() {
        for (input, output) in [
            ("0", "0"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("-.5Ki", "-512"),
            ("100Ki", "100Ki"),
            ("1e3", "1e3"),
            ("1000e0", "1e3"),
            ("1.5e3", "1500"),
            ("+1", "+1"),
            ("01", "01"),
            ("1.500", "1.500"),
            ("1.5", "1500m"),
            ("0.1n", "1n"),
            ("1e-12", "1e-9"),
            ("-0.0000000001", "-1n"),
            ("1000E", "1"),
            ("1000000000000000000000", "1"),
            ("1234567890123456789012", "1234567890123456789012"),
            ("10Ei", "9223372036854775807"),
            ("8Ei", "9223372036854775807"),
            ("7Ei", "7Ei"),
            ("0.9999999999Ki", "1023999999898n"),
            (".", "0"),
            ("-", "0"),
            ("Ki", "0"),
            ("1e4294967296", "1e4294967296"),
            ("1e4294967297", "10"),
            ("0.5e-2147483648", "50e2147483646"),
        ] {
            assert_eq!(canonical(input).as_deref(), Ok(output), "{input}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for input in [
            "", " ", " 1", "1 ", "1.2.3", "1Kb", "--1", "1e", "0x10", "1ki", "e-10", "1e+",
        ] {
            assert!(canonical(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn exponents_go_cannot_reach_are_errors() {
        let long = "1234567890123456789";
        for input in [
            format!("{long}e2147483647"),
            format!("{long}e-2147483648"),
            format!("0.{long}e-2147483647"),
        ] {
            let err = canonical(&input).unwrap_err();
            assert!(err.to_string().contains("out of range"), "{err}");
        }
        // Small values round up to a nano whatever the exponent.
        assert_eq!(
            canonical(&format!("{long}e-2147483647")).as_deref(),
            Ok("1e-9")
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz_config())]
        #[test]
        fn never_panics(text in "[-+0-9.eEinumkKMGTP ]{0,48}|.{0,16}") {
            let _ = canonical(&text);
        }
    }

    #[test]
    fn long_inputs_are_not_quoted() {
        let err = canonical(&"x".repeat(100)).unwrap_err();
        assert_eq!(err.to_string(), "quantity of 100 bytes is not a quantity");
    }
}
