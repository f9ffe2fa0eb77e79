//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! The canonical form of a JSON value is the one its hash is computed over: object members
//! sorted by their names compared as UTF-16 code units, no whitespace, strings escaped as
//! ECMAScript's `JSON.stringify` escapes them (only `"`, `\` and the control characters below
//! U+0020; `\b \f \n \r \t` in their short forms, the others as `\u00xx` with lowercase hex),
//! and numbers as ECMAScript's `Number.prototype.toString` writes them.
//!
//! Numbers: floating-point values are written with `ryu-js`, which implements the ECMAScript
//! algorithm, so the RFC's number examples come out right. Integers that `serde_json` holds as
//! `u64` or `i64` are written as plain decimal: this is what JCS produces for every integer of
//! magnitude up to 2^53, and ledger entries only carry integers in that range. A larger integer
//! is written exactly instead of being rounded through an IEEE double first, which is where
//! this implementation departs from the RFC (the RFC advises against such numbers anyway).

use std::cmp::Ordering;
use std::io::Write as _;

use serde_json::{Map, Number, Value};

/// The RFC 8785 canonical bytes of `value`.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value);
    out
}

/// Appends the canonical form of `value` to `out`.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(out, number),
        Value::String(string) => write_string(out, string),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => write_object(out, members),
    }
}

fn write_object(out: &mut Vec<u8>, members: &Map<String, Value>) {
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    // Names are unique within a `Map`, so an unstable sort gives one order.
    sorted.sort_unstable_by(|(a, _), (b, _)| utf16_cmp(a, b));
    out.push(b'{');
    for (index, (name, value)) in sorted.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

fn write_number(out: &mut Vec<u8>, number: &Number) {
    if let Some(unsigned) = number.as_u64() {
        write_u64(out, unsigned);
    } else if let Some(signed) = number.as_i64() {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{signed}");
    } else if let Some(float) = number.as_f64() {
        if float == 0.0 {
            // ECMAScript writes negative zero as "0".
            out.push(b'0');
        } else {
            let mut buffer = ryu_js::Buffer::new();
            out.extend_from_slice(buffer.format(float).as_bytes());
        }
    }
}

/// Appends `value` in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends `string` as a JSON string literal, escaped as JCS requires.
pub(crate) fn write_string(out: &mut Vec<u8>, string: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = string.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut index = 0;
    loop {
        index = next_escape(bytes, index);
        let Some(&byte) = bytes.get(index) else {
            break;
        };
        out.extend_from_slice(&bytes[start..index]);
        index += 1;
        start = index;
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The index of the first byte at or after `from` that JSON escapes (`"`, `\` or a control
/// character), or the length.
fn next_escape(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let needs_escape = |byte: u8| byte < 0x20 || byte == b'"' || byte == b'\\';
    let mut index = from;
    // Eight bytes at a time: a word has a byte to escape if one of its bytes is below 0x20
    // or equal to '"' or '\\' (the classic "has a zero byte" bit trick, three times). The
    // test can report a false positive only after a true one in the same word, so the
    // byte-wise scan below finds the real position.
    while let Some(chunk) = bytes.get(index..index + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let below_space = word.wrapping_sub(ONES * 0x20) & !word;
        let quote = word ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        if (below_space | quote | backslash) & HIGHS != 0 {
            break;
        }
        index += 8;
    }
    while let Some(&byte) = bytes.get(index) {
        if needs_escape(byte) {
            return index;
        }
        index += 1;
    }
    index
}

/// Compares two member names as JCS orders them: by UTF-16 code units.
///
/// UTF-8 byte order is the same as code point order, which differs from UTF-16 order only
/// when one string has a character above U+FFFF where the other has one in U+E000..=U+FFFF;
/// so ASCII names (the common case) are compared as bytes.
pub(crate) fn utf16_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() || b.is_ascii() {
        // At the first difference one side is ASCII, below every surrogate: orders agree.
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(input: &str, expected: &str) {
        let value: Value = serde_json::from_str(input).expect("test input is JSON");
        let actual = canonical_json(&value);
        assert_eq!(
            String::from_utf8(actual).expect("canonical JSON is UTF-8"),
            expected
        );
    }

    /// RFC 8785 section 3.2.3 (sorting of properties).
    #[test]
    fn rfc8785_sorting() {
        check(
            r#"{
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }"#,
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
             \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}",
        );
    }

    /// RFC 8785 section 3.2.2 (the main example: literals, numbers, string escapes).
    #[test]
    fn rfc8785_example() {
        check(
            r#"{
              "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }"#,
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
             \"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}",
        );
    }

    /// RFC 8785 appendix B: ECMAScript number serialization samples.
    #[test]
    fn numbers() {
        for (input, expected) in [
            ("0", "0"),
            ("-0.0", "0"),
            ("-1", "-1"),
            ("9007199254740992", "9007199254740992"),
            ("-9007199254740992", "-9007199254740992"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("295147905179352830000", "295147905179352830000"),
            ("4.940656458412465e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("2.0", "2"),
        ] {
            check(input, expected);
        }
    }

    #[test]
    fn escapes() {
        let value = json!("\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} \u{7f}\u{2028}é\"\\/");
        assert_eq!(
            String::from_utf8(canonical_json(&value)).expect("UTF-8"),
            "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \u{7f}\u{2028}é\\\"\\\\/\""
        );
    }

    #[test]
    fn escapes_at_every_position() {
        // Each escaped byte, and a harmless one, at each position of words of 1 to 20 bytes.
        for length in 1..20 {
            for position in 0..length {
                for byte in (0u8..0x80).chain([0xc3]) {
                    let mut text = vec![b'a'; length];
                    text[position] = byte;
                    if byte == 0xc3 {
                        text.insert(position + 1, 0xa9); // é
                    }
                    let text = String::from_utf8(text).expect("UTF-8");
                    let mut out = Vec::new();
                    write_string(&mut out, &text);
                    let expected = serde_json::to_string(&text).expect("JSON");
                    // serde_json escapes strings exactly as JCS does.
                    assert_eq!(String::from_utf8(out).expect("UTF-8"), expected, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn nesting_and_whitespace() {
        check(
            r#" { "b" : [ 1 , { "z" : null , "a" : [ ] } ] , "a" : { } , "" : "" } "#,
            r#"{"":"","a":{},"b":[1,{"a":[],"z":null}]}"#,
        );
    }

    #[test]
    fn utf16_order_differs_from_code_point_order() {
        // U+1F600 is above U+FB33 as a code point but below it in UTF-16 (D83D < FB33).
        assert_eq!(utf16_cmp("\u{1f600}", "\u{fb33}"), Ordering::Less);
        assert_eq!(utf16_cmp("a\u{1f600}", "a\u{fb33}"), Ordering::Less);
        assert_eq!(utf16_cmp("a", "a\u{fb33}"), Ordering::Less);
        assert_eq!(utf16_cmp("b", "a\u{fb33}"), Ordering::Greater);
    }
}
