//! JSON numbers as written: an exact comparison of two number texts, and the
//! exponent spelling that serde_json's parser changes, put back.
//!
//! serde_json (with `arbitrary_precision`) keeps a number's text, except that
//! its parser writes every exponent as `e+N` / `e-N` (`1E2` becomes `1e+2`).
//! [`restore_exponents`] gives the parsed value its input's spelling back, so
//! output keeps numbers exactly as written.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Beyond this, a difference of exponents is only known by its sign. Any two
/// numbers whose magnitudes are that far apart compare by it alone, since a
/// text's digits shift the magnitude by far less (a text is shorter than 2⁶⁴).
const FAR: i128 = 10i128.pow(30);

/// A number text in scientific form: `sign 0.DIGITS × 10^(exponent + shift)`.
struct Decimal<'a> {
    negative: bool,
    /// The mantissa's digits before and after the dot.
    integer: &'a [u8],
    fraction: &'a [u8],
    /// The written exponent's digits, leading zeros removed, and its sign.
    exponent: &'a [u8],
    exponent_negative: bool,
    /// What the mantissa's layout adds to the written exponent: the integer
    /// digits, less the leading zeros of the mantissa.
    shift: i128,
}

impl<'a> Decimal<'a> {
    /// Splits a JSON number text (`-12.50e+3`); `None` when it is not one.
    fn parse(text: &'a str) -> Option<Self> {
        let bytes = text.as_bytes();
        let (negative, rest) = match bytes.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, bytes),
        };
        let mantissa_end = rest
            .iter()
            .position(|b| matches!(b, b'e' | b'E'))
            .unwrap_or(rest.len());
        let (mantissa, exponent) = rest.split_at(mantissa_end);
        let (integer, fraction) = match mantissa.iter().position(|&b| b == b'.') {
            Some(dot) if dot + 1 < mantissa.len() => (&mantissa[..dot], &mantissa[dot + 1..]),
            Some(_) => return None,
            None => (mantissa, &mantissa[..0]),
        };
        let (exponent_negative, exponent) = match exponent {
            [] => (false, exponent),
            [_, b'-', digits @ ..] => (true, digits),
            [_, b'+', digits @ ..] => (false, digits),
            [_, digits @ ..] => (false, digits),
        };
        let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        let exponent_ok = mantissa_end == rest.len() || !exponent.is_empty();
        if integer.is_empty() || !all_digits(integer) || !all_digits(fraction) {
            return None;
        }
        if !exponent_ok || !all_digits(exponent) {
            return None;
        }
        let leading_zeros = integer
            .iter()
            .chain(fraction)
            .take_while(|&&b| b == b'0')
            .count();
        let exponent_start = exponent.iter().take_while(|&&b| b == b'0').count();
        Some(Decimal {
            negative,
            integer,
            fraction,
            exponent: &exponent[exponent_start..],
            exponent_negative,
            shift: integer.len() as i128 - leading_zeros as i128,
        })
    }

    /// The mantissa's digits from its first nonzero one.
    fn significant(&self) -> impl Iterator<Item = u8> + '_ {
        self.integer
            .iter()
            .chain(self.fraction)
            .copied()
            .skip_while(|&b| b == b'0')
    }

    fn is_zero(&self) -> bool {
        self.significant().next().is_none()
    }
}

/// Two digit sequences as the fractions `0.DIGITS`: a sequence that runs on
/// is greater only if a nonzero digit follows (`0.150 == 0.15`).
fn fractions(a: impl Iterator<Item = u8>, b: impl Iterator<Item = u8>) -> Ordering {
    let (mut a, mut b) = (a.fuse(), b.fuse());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let order = x.unwrap_or(b'0').cmp(&y.unwrap_or(b'0'));
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// The value of a digit string, or [`FAR`] when it is that large or larger.
fn saturated(digits: &[u8]) -> i128 {
    let mut value: i128 = 0;
    for &d in digits {
        value = value * 10 + i128::from(d - b'0');
        if value >= FAR {
            return FAR;
        }
    }
    value
}

/// `|a| - |b|` for two digit strings without leading zeros, exact while it is
/// within ±[`FAR`], otherwise ±`FAR`: once a running difference passes `FAR`,
/// the digits still to come change it by less than it already is.
fn difference(a: &[u8], b: &[u8]) -> i128 {
    let len = a.len().max(b.len());
    let digit = |s: &[u8], i: usize| {
        let pad = len - s.len();
        if i < pad {
            0
        } else {
            i128::from(s[i - pad] - b'0')
        }
    };
    let mut value: i128 = 0;
    for i in 0..len {
        value = value * 10 + digit(a, i) - digit(b, i);
        if value.abs() >= FAR {
            return FAR * value.signum();
        }
    }
    value
}

/// The written exponent of `a` minus that of `b`, saturated at ±[`FAR`].
fn exponent_difference(a: &Decimal<'_>, b: &Decimal<'_>) -> i128 {
    match (a.exponent_negative, b.exponent_negative) {
        (false, false) => difference(a.exponent, b.exponent),
        (true, true) => -difference(a.exponent, b.exponent),
        (false, true) => (saturated(a.exponent) + saturated(b.exponent)).min(FAR),
        (true, false) => -(saturated(a.exponent) + saturated(b.exponent)).min(FAR),
    }
}

/// `|a|` against `|b|`, both nonzero.
fn magnitude(a: &Decimal<'_>, b: &Decimal<'_>) -> Ordering {
    let order = exponent_difference(a, b) + (a.shift - b.shift);
    order
        .cmp(&0)
        .then_with(|| fractions(a.significant(), b.significant()))
}

/// Compares two JSON number texts by their exact decimal values (`1 == 1.0`,
/// `1E-400 > 0`, `18446744073709551617 > 18446744073709551616`). Never
/// rounds and never allocates, whatever the exponent. `None` when either text
/// is not a JSON number.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (Decimal::parse(a)?, Decimal::parse(b)?);
    Some(match (a.is_zero(), b.is_zero()) {
        (true, true) => Ordering::Equal,
        (true, false) => sign(!b.negative).reverse(),
        (false, true) => sign(!a.negative),
        (false, false) => match (a.negative, b.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => magnitude(&a, &b),
            (true, true) => magnitude(&b, &a),
        },
    })
}

fn sign(positive: bool) -> Ordering {
    if positive {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}

/// Whether `f` is exactly the number `text` (an f64 stands for its shortest
/// decimal, so `0.1` is and `0.1000000000000000055511151231257827` is not).
pub fn is_exact_f64(text: &str, f: f64) -> bool {
    f.is_finite() && compare(text, &format!("{f:e}")) == Some(Ordering::Equal)
}

/// A number written as `text`, a JSON number (checked by the caller).
///
/// serde_json has no public way to make a number of a given spelling; this
/// uses its hidden `from_string_unchecked` (the lockfile pins the version,
/// and `tests::a_number_keeps_its_spelling` fails should that change).
pub fn as_written(text: &str) -> Number {
    Number::from_string_unchecked(text.to_string())
}

/// Whether a parsed value holds a number written with an exponent, which
/// serde_json may have respelled (`1E2` as `1e+2`). A walk over the value's
/// numbers, so the text walk in [`restore_exponents`] runs only for records
/// that need it (payload text is full of `e`s; numbers seldom have one).
pub fn has_exponent(value: &Value) -> bool {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Number(number) if number.as_str().bytes().any(|b| b == b'e' || b == b'E') => {
                return true;
            }
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    false
}

/// Gives each number of `value` (parsed from the JSON text `text`) the
/// exponent spelling it has in `text`. With duplicate keys the last one wins,
/// as in the parsed value: every number is tried, in order, where it stands.
pub fn restore_exponents(text: &str, value: &mut Value) {
    let bytes = text.as_bytes();
    // Where the walk is: a key per object (raw, quotes included), an index per array.
    let mut at: Vec<Step<'_>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => at.push(Step::Key(None)),
            b'[' => at.push(Step::Index(0)),
            b'}' | b']' => {
                at.pop();
            }
            b',' => {
                if let Some(Step::Index(n)) = at.last_mut() {
                    *n += 1;
                } else if let Some(Step::Key(key)) = at.last_mut() {
                    *key = None;
                }
            }
            b'"' => {
                let end = string_end(bytes, i);
                if let Some(Step::Key(key @ None)) = at.last_mut() {
                    *key = Some(&text[i..end]);
                }
                i = end;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let end = i + bytes[i..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .unwrap_or(bytes.len() - i);
                let written = &text[i..end];
                if written.contains(['e', 'E']) {
                    respell(value, &at, written);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

enum Step<'a> {
    Key(Option<&'a str>),
    Index(usize),
}

/// The index just past the string that starts (with its quote) at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Writes `written` over the number at `at`, if one of the same value and
/// serde_json's spelling of it is there.
fn respell(value: &mut Value, at: &[Step<'_>], written: &str) {
    let mut slot = value;
    for step in at {
        slot = match (step, slot) {
            (Step::Key(Some(raw)), Value::Object(map)) => {
                let inner = &raw[1..raw.len() - 1];
                let found = if inner.contains('\\') {
                    serde_json::from_str::<String>(raw)
                        .ok()
                        .and_then(|key| map.get_mut(&key))
                } else {
                    map.get_mut(inner)
                };
                match found {
                    Some(found) => found,
                    None => return,
                }
            }
            (Step::Index(n), Value::Array(items)) => match items.get_mut(*n) {
                Some(found) => found,
                None => return,
            },
            _ => return,
        };
    }
    if let Value::Number(n) = slot {
        if canonical(n.as_str()) == canonical(written) {
            *n = as_written(written);
        }
    }
}

/// serde_json's spelling of a number text: `e`, and a sign on the exponent.
fn canonical(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, 'e' | 'E') {
            out.push('e');
            if chars.peek().is_some_and(char::is_ascii_digit) {
                out.push('+');
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap_or_else(|| panic!("{a} or {b} is not a number"))
    }

    #[test]
    fn equal_values_of_any_spelling() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "1e0"),
            ("100", "1E2"),
            ("100", "1e+2"),
            ("0.01", "1e-2"),
            ("-0", "0"),
            ("0.0", "0e5"),
            ("0.10", "0.1"),
            ("1500", "1.5e+3"),
            ("12.5", "125e-1"),
            ("001.500", "1.5"),
            ("1e99999999999999999999", "10e99999999999999999998"),
        ] {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} == {b}");
            assert_eq!(cmp(b, a), Ordering::Equal, "{b} == {a}");
        }
    }

    #[test]
    fn orders_exactly_where_floating_point_cannot() {
        for (a, b) in [
            ("18446744073709551617", "18446744073709551616"),
            ("1E-400", "0"),
            ("0", "-1E-400"),
            ("1e400", "1e399"),
            ("0.1000000000000000055511151231257827", "0.1"),
            ("1e99999999999999999999", "1e99999999999999999998"),
            ("1e-99999999999999999998", "1e-99999999999999999999"),
            (
                "1e1000000000000000000000000000000000001",
                "1e1000000000000000000000000000000000000",
            ),
            (
                "1e1000000000000000000000000000000000000",
                "1e-1000000000000000000000000000000000000",
            ),
            ("1e1000000000000000000000000000000000000", "9"),
            ("-1", "-2"),
            ("-0.5", "-1e99999999999999999999"),
            ("2", "1.999999999999999999999999"),
            ("10", "9.99"),
            ("1.25", "1.2"),
        ] {
            assert_eq!(cmp(a, b), Ordering::Greater, "{a} > {b}");
            assert_eq!(cmp(b, a), Ordering::Less, "{b} < {a}");
        }
    }

    #[test]
    fn not_a_number_is_not_compared() {
        for text in ["", "-", "1.", ".5", "1e", "1e+", "x", "1x"] {
            assert_eq!(compare(text, "1"), None, "{text:?}");
        }
    }

    #[test]
    fn an_f64_is_exact_only_for_its_shortest_decimal() {
        assert!(is_exact_f64("0.10", 0.1));
        assert!(is_exact_f64("1.5e+3", 1500.0));
        assert!(!is_exact_f64("0.1000000000000000055511151231257827", 0.1));
        assert!(!is_exact_f64("1E-400", 0.0));
        assert!(!is_exact_f64("1e400", f64::INFINITY));
    }

    #[test]
    fn a_number_keeps_its_spelling() {
        let value = Value::Number(as_written("1E2"));
        assert_eq!(serde_json::to_string(&value).unwrap(), "1E2");
    }

    #[test]
    fn exponents_get_their_input_spelling_back() {
        let text = r#"{"a":1E2,"b":[1e2,{"c\"":-1e-2}],"d":1e2,"d":1E+2,"e":"1E2"}"#;
        let mut value: Value = serde_json::from_str(text).unwrap();
        assert!(has_exponent(&value));
        restore_exponents(text, &mut value);
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"a":1E2,"b":[1e2,{"c\"":-1e-2}],"d":1E+2,"e":"1E2"}"#
        );
        let plain: Value = serde_json::from_str(r#"{"id":"5e3f-1E2","n":[1.5,{"m":-2}]}"#).unwrap();
        assert!(!has_exponent(&plain));
    }
}
