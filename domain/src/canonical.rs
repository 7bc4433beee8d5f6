//! JSON in one spelling only: the JSON Canonicalization Scheme (RFC 8785), so that the
//! audit log hashes what is stored the same way whoever serializes it — this code, or an
//! auditor's verifier in another language (docs/audit-log.md).
//!
//! Object members sorted by their names' UTF-16 code units, no whitespace, strings
//! escaped as ECMAScript's `JSON.stringify` does, numbers as ECMAScript prints a double.

use serde_json::{Number, Value};

/// `value` in canonical form.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Appends `value` in canonical form to `out`.
pub fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(name, out);
                out.push(':');
                write(member, out);
            }
            out.push('}');
        }
    }
}

/// A string as `JSON.stringify` writes it. Runs of characters that need no escape are
/// copied whole: most of what the audit log hashes is such runs.
pub fn string(s: &str, out: &mut String) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        match escaped {
            "" => out.push_str(&format!("\\u{b:04x}")),
            e => out.push_str(e),
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// A number as ECMAScript's `Number.prototype.toString` prints the double it denotes.
fn number(n: &Number) -> String {
    let x = match (n.as_i64(), n.as_f64()) {
        // Integers a double holds exactly print as themselves.
        (Some(i), _) if i.unsigned_abs() <= 1 << 53 => return i.to_string(),
        (_, Some(x)) => x,
        (_, None) => return n.to_string(),
    };
    if x == 0.0 {
        return "0".to_string();
    }
    // Rust's `{:e}` gives the shortest digits that read back as the same double: the
    // digits ECMAScript prints too; only where the point goes differs.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (k, n) = (digits.len() as i32, exponent + 1);
    let sign = if x < 0.0 { "-" } else { "" };
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let exp_sign = if n - 1 < 0 { "-" } else { "+" };
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{fraction}e{exp_sign}{}", (n - 1).abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn canonical(text: &str) -> String {
        to_string(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn numbers_print_as_ecmascript_prints_them() {
        // RFC 8785 §3.2.2.3 and appendix B.
        for (input, expected) in [
            ("333333333.33333329", "333333333.3333333"),
            ("1E30", "1e+30"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("0.000000000000000000000000001", "1e-27"),
            ("-0.0", "0"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("1e-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("-1.5e-9", "-1.5e-9"),
            ("0.8999999761581421", "0.8999999761581421"),
            ("9007199254740992", "9007199254740992"),
            ("295147905179352830000", "295147905179352830000"),
            ("42", "42"),
            ("-17", "-17"),
        ] {
            assert_eq!(canonical(input), expected, "{input}");
        }
    }

    #[test]
    fn members_sort_by_utf16_and_strings_escape_as_json_stringify() {
        // RFC 8785 §3.2.3: "\u20ac" (€) sorts after "\ud83d\ude00" (😀) in UTF-16,
        // though not in UTF-8 or by code point.
        let value = json!({"\u{20ac}": "Euro Sign", "\r": "Carriage Return",
            "\u{fb33}": "Hebrew Letter Dalet With Dagesh", "1": "One",
            "\u{1f600}": "Emoji: Grinning Face", "\u{80}": "Control", "\u{f6}": "Latin Small Letter O With Diaeresis"});
        assert_eq!(
            to_string(&value),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
             \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(
            to_string(&json!([
                "\u{1}\u{1f}/\"\\\u{7f}é",
                null,
                true,
                false,
                [],
                {}
            ])),
            "[\"\\u0001\\u001f/\\\"\\\\\u{7f}é\",null,true,false,[],{}]"
        );
    }

    #[test]
    fn the_spelling_of_the_input_does_not_matter() {
        assert_eq!(
            canonical("{ \"b\" : [ 1.0 , 2E0 ], \"a\" : { \"z\" : null , \"y\" : \"x\" } }"),
            "{\"a\":{\"y\":\"x\",\"z\":null},\"b\":[1,2]}"
        );
    }
}
