//! YAML written as `kubectl kustomize` writes it (go-yaml v3 through kyaml: two-space indentation,
//! sequences not indented under their key, plain scalars folded past 80 columns), so that Kubernetes'
//! tools — YAML 1.1 readers: kubectl, helm, everything on `sigs.k8s.io/yaml` — read back the values
//! meant. A string that a YAML reader would take for something else is double-quoted: booleans of YAML
//! 1.1 (`yes`, `on`, `n`, `Off`…) and 1.2, null (`~`, `null`, ``), numbers (`0755`, `1_000`, `1e3`,
//! `0x1F`, `.inf`), base-60 numbers (`1:20`), timestamps (`2024-01-01`). One that cannot be plain
//! (`- x`, `a: b`, ` x`, `*x`…) is single-quoted; one with line breaks is a literal block (`|`, `|-`,
//! `|2-`…), unless trailing spaces or control characters force double quotes with escapes.
//!
//! Our own emitter on `serde_yaml`'s data model: the parser stays `serde_yaml`'s; its emitter writes YAML
//! 1.2 and leaves `yes` or `2024-01-01` unquoted. Keys that are not scalars, and tagged values, fall back
//! to it.
#![warn(missing_docs)]

use serde_yaml::Value;

/// The column past which plain, single- and double-quoted scalars are folded at a space (go-yaml's).
const BEST_WIDTH: usize = 80;

/// A value that could not be written.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `value` as YAML (one document, no `---`), as `kubectl kustomize` writes it.
pub fn to_string<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let value = serde_yaml::to_value(value).map_err(|e| Error(e.to_string()))?;
    if !emittable(&value) {
        return serde_yaml::to_string(&value).map_err(|e| Error(e.to_string()));
    }
    let mut out = String::new();
    match &value {
        Value::Mapping(m) if !m.is_empty() => mapping(&mut out, m, 0, false),
        Value::Sequence(s) if !s.is_empty() => sequence(&mut out, s, 0, false),
        scalar => {
            node_inline(&mut out, scalar, 0);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Whether the emitter here writes `v`: scalar keys and no tags.
fn emittable(v: &Value) -> bool {
    match v {
        Value::Tagged(_) => false,
        Value::Sequence(s) => s.iter().all(emittable),
        Value::Mapping(m) => m.iter().all(|(k, v)| {
            matches!(
                k,
                Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null
            ) && emittable(v)
        }),
        _ => true,
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn column(out: &str) -> usize {
    out.len() - out.rfind('\n').map_or(0, |i| i + 1)
}

/// A block mapping whose keys are at column `at`; with `inline` its first key goes where the line is
/// (after a sequence's `- `).
fn mapping(out: &mut String, m: &serde_yaml::Mapping, at: usize, inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !inline {
            indent(out, at);
        }
        match k {
            Value::String(s) => key(out, s),
            other => scalar_plain(out, other),
        }
        out.push(':');
        value_after(out, v, at);
    }
}

/// A block sequence whose `- ` are at column `at`.
fn sequence(out: &mut String, s: &[Value], at: usize, inline: bool) {
    for (i, v) in s.iter().enumerate() {
        if i > 0 || !inline {
            indent(out, at);
        }
        out.push_str("- ");
        match v {
            Value::Mapping(m) if !m.is_empty() => mapping(out, m, at + 2, true),
            Value::Sequence(s) if !s.is_empty() => sequence(out, s, at + 2, true),
            scalar => {
                node_inline(out, scalar, at + 2);
                out.push('\n');
            }
        }
    }
}

/// What follows `key:` for a key at column `at`.
fn value_after(out: &mut String, v: &Value, at: usize) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, at + 2, false);
        }
        // NB: kyaml's compact sequences: `- ` under the key, not indented
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            sequence(out, s, at, false);
        }
        scalar => {
            out.push(' ');
            node_inline(out, scalar, at + 2);
            out.push('\n');
        }
    }
}

/// A scalar (or an empty collection) where the line is; a block or folded line goes to column `at`.
fn node_inline(out: &mut String, v: &Value, at: usize) {
    match v {
        Value::Mapping(_) => out.push_str("{}"),
        Value::Sequence(_) => out.push_str("[]"),
        Value::String(s) => string(out, s, at),
        other => scalar_plain(out, other),
    }
}

fn scalar_plain(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        _ => {}
    }
}

/// The style go-yaml v3 picks for a string.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn style(s: &str, is_key: bool) -> Style {
    let a = analyze(s);
    if s.chars().any(is_break) && !s.contains('\n') {
        return Style::Double;
    }
    if s.contains('\n') {
        // a literal block, where one can be
        return if !is_key && a.block_allowed {
            Style::Literal
        } else {
            Style::Double
        };
    }
    if !reads_as_string(s) {
        return Style::Double;
    }
    if a.plain_allowed {
        Style::Plain
    } else if a.single_allowed {
        Style::Single
    } else {
        Style::Double
    }
}

fn key(out: &mut String, s: &str) {
    match style(s, true) {
        Style::Plain => out.push_str(s),
        Style::Single => single(out, s, None),
        _ => double(out, s, None),
    }
}

fn string(out: &mut String, s: &str, at: usize) {
    match style(s, false) {
        Style::Plain => plain(out, s, at),
        Style::Single => single(out, s, Some(at)),
        Style::Double => double(out, s, Some(at)),
        Style::Literal => literal(out, s, at),
    }
}

/// A plain scalar, folded at a space past the best width (a fold reads back as that space).
fn plain(out: &mut String, s: &str, at: usize) {
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if !spaces && column(out) > BEST_WIDTH && chars.get(i + 1).is_some_and(|n| *n != ' ') {
                out.push('\n');
                indent(out, at);
            } else {
                out.push(' ');
            }
            spaces = true;
        } else {
            out.push(c);
            spaces = false;
        }
    }
}

/// A single-quoted scalar (`'` doubled), folded as go-yaml folds it when `at` is given.
fn single(out: &mut String, s: &str, at: Option<usize>) {
    out.push('\'');
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if let Some(at) = at
                && !spaces
                && column(out) > BEST_WIDTH
                && i != 0
                && i != chars.len() - 1
                && chars.get(i + 1).is_some_and(|n| *n != ' ')
            {
                out.push('\n');
                indent(out, at);
            } else {
                out.push(' ');
            }
            spaces = true;
        } else {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
            spaces = false;
        }
    }
    out.push('\'');
}

/// A double-quoted scalar with YAML's escapes, folded as go-yaml folds it when `at` is given.
fn double(out: &mut String, s: &str, at: Option<usize>) {
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if !printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
            out.push('\\');
            match c {
                '\0' => out.push('0'),
                '\u{7}' => out.push('a'),
                '\u{8}' => out.push('b'),
                '\t' => out.push('t'),
                '\n' => out.push('n'),
                '\u{b}' => out.push('v'),
                '\u{c}' => out.push('f'),
                '\r' => out.push('r'),
                '\u{1b}' => out.push('e'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '\u{85}' => out.push('N'),
                '\u{a0}' => out.push('_'),
                '\u{2028}' => out.push('L'),
                '\u{2029}' => out.push('P'),
                c if (c as u32) <= 0xff => out.push_str(&format!("x{:02X}", c as u32)),
                c if (c as u32) <= 0xffff => out.push_str(&format!("u{:04X}", c as u32)),
                c => out.push_str(&format!("U{:08X}", c as u32)),
            }
            spaces = false;
        } else if c == ' ' {
            if let Some(at) = at
                && !spaces
                && column(out) > BEST_WIDTH
                && i != 0
                && i != chars.len() - 1
            {
                out.push('\n');
                indent(out, at);
                if chars.get(i + 1) == Some(&' ') {
                    out.push('\\');
                }
            } else {
                out.push(' ');
            }
            spaces = true;
        } else {
            out.push(c);
            spaces = false;
        }
    }
    out.push('"');
}

/// A literal block scalar: `|` with an indentation indicator when the text starts with a space or a
/// break, and `-` (no final break) or `+` (more than one) chomping; its lines at column `at`.
fn literal(out: &mut String, s: &str, at: usize) {
    out.push('|');
    if s.starts_with([' ', '\n']) {
        out.push('2');
    }
    if !s.ends_with('\n') {
        out.push('-');
    } else if s == "\n" || s.ends_with("\n\n") {
        out.push('+');
    }
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            indent(out, at);
            out.push_str(line);
        }
    }
}

fn printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// What a string's characters allow (libyaml's scalar analysis, in block context).
struct Analysis {
    plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            plain_allowed: false,
            single_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let blank = |c: Option<&char>| c.is_none_or(|c| *c == ' ' || *c == '\t' || is_break(*c));
    let mut block_indicators =
        s.starts_with("---") && blank(chars.get(3)) || s.starts_with("...") && blank(chars.get(3));
    let (mut special, mut tabs, mut line_breaks) = (false, false, false);
    let (mut space_break, mut break_space) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1);
        let followed_by_blank = blank(next);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@'
                | '`' => block_indicators = true,
                '?' | ':' if followed_by_blank => block_indicators = true,
                '-' if followed_by_blank => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_blank => block_indicators = true,
                '#' if matches!(chars[i - 1], ' ' | '\t') || is_break(chars[i - 1]) => {
                    block_indicators = true
                }
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !printable(c) || c == '\u{feff}' {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == chars.len() - 1 {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == chars.len() - 1 {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
    }
    let mut plain = !(leading_space || leading_break || trailing_space || trailing_break);
    let mut single_ok = true;
    let mut block = !trailing_space;
    if break_space {
        plain = false;
        single_ok = false;
    }
    if space_break || tabs || special {
        plain = false;
        single_ok = false;
    }
    if space_break || special {
        block = false;
    }
    if line_breaks || block_indicators {
        plain = false;
    }
    Analysis {
        plain_allowed: plain,
        single_allowed: single_ok,
        block_allowed: block,
    }
}

/// Whether a plain `s` reads back as the string `s` (go-yaml v3's resolution, with YAML 1.1's booleans
/// and base-60 numbers, which it also quotes).
fn reads_as_string(s: &str) -> bool {
    const OLD_BOOLS: [&str; 16] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];
    const SPECIAL: [&str; 20] = [
        "true", "True", "TRUE", "false", "False", "FALSE", "", "~", "null", "Null", "NULL", ".nan", ".NaN",
        ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
    ];
    if OLD_BOOLS.contains(&s) || SPECIAL.contains(&s) || matches!(s, "-.inf" | "-.Inf" | "-.INF") {
        return false;
    }
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return true;
    }
    let plain = s.replace('_', "");
    !(int(&plain) || float(&plain) || base60(s) || timestamp(s))
}

/// Go's `strconv.ParseInt(s, 0, 64)` syntax (a sign, then decimal, `0x`, `0o`, `0b`, or a leading-`0`
/// octal).
fn int(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (body, radix) = if let Some(h) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(o) = digits.strip_prefix("0o").or_else(|| digits.strip_prefix("0O")) {
        (o, 8)
    } else if let Some(b) = digits.strip_prefix("0b").or_else(|| digits.strip_prefix("0B")) {
        (b, 2)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (&digits[1..], 8)
    } else {
        (digits, 10)
    };
    !body.is_empty() && body.chars().all(|c| c.is_digit(radix))
}

/// go-yaml's float syntax: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && frac.chars().all(|c| c.is_ascii_digit()),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// YAML 1.1's base-60 numbers: `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`.
fn base60(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| !f.chars().all(|c| c.is_ascii_digit() || c == '_')) {
        return false;
    }
    let mut parts = whole.split(':');
    let head = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    head.starts_with(|c: char| c.is_ascii_digit())
        && head.chars().all(|c| c.is_ascii_digit() || c == '_')
        && !rest.is_empty()
        && rest.iter().all(|p| {
            (1..=2).contains(&p.len())
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || p.as_bytes()[0] <= b'5')
        })
}

/// go-yaml's timestamps: `2006-1-2`, optionally followed by `T`/`t`/` ` and `15:4:5` (fraction, zone).
fn timestamp(s: &str) -> bool {
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let fields: Vec<&str> = date.split('-').collect();
    let date_ok = fields.len() == 3
        && fields[0].len() == 4
        && fields
            .iter()
            .all(|f| !f.is_empty() && f.len() <= 4 && f.chars().all(|c| c.is_ascii_digit()))
        && fields[1].len() <= 2
        && fields[2].len() <= 2;
    if !date_ok {
        return false;
    }
    let Some(time) = time else {
        return true;
    };
    // 15:4:5, then an optional fraction and zone (Z, ±07:00)
    let end = time.find(['Z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(end);
    let (clock, fraction) = match clock.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (clock, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| (1..=2).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()))
        && fraction.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
        && (zone.is_empty() || zone == "Z" || {
            let z = &zone[1..];
            let (h, m) = z.split_once(':').unwrap_or((z, "00"));
            (1..=2).contains(&h.len())
                && m.len() == 2
                && h.chars().chain(m.chars()).all(|c| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_are_quoted_as_go_yaml_quotes_them() {
        let v = json!({
            "a": "yes", "b": "on", "c": "Off", "d": "n", "e": "true", "f": true, "g": "yesterday",
            "list": ["y", "no", "ok", ["ON"]],
            "items": [{"name": "No", "v": 1}],
            "yes": "key", "n": {"x": "N"},
            "text": "line: yes\nno\n", "n_1": "1_000", "id": "a_b", "neg": "-2_0",
            "quoted key: yes": "on",
            "date": "2024-01-01", "b60": "1:20", "oct": "0755", "e3": "1e3", "empty": "", "tilde": "~",
            "dash": "- x", "star": "*x", "colon": "a: b", "hash": "a #b", "lead": " x", "q": "it's",
            "tab": "a\tb", "ctl": "a\u{1}b", "trailsp": "a \nb", "indented": "  lead\nx", "keep": "a\n\n",
            "merge": "<<", "cl": ":x", "dots": "...", "empties": {}, "nothing": [],
        });
        let out = to_string(&v).unwrap();
        let expected = r#"a: "yes"
b: "on"
b60: "1:20"
c: "Off"
cl: :x
colon: 'a: b'
ctl: "a\x01b"
d: "n"
dash: '- x'
date: "2024-01-01"
dots: '...'
e: "true"
e3: "1e3"
empties: {}
empty: ""
f: true
g: yesterday
hash: 'a #b'
id: a_b
indented: |2-
    lead
  x
items:
- name: "No"
  v: 1
keep: |+
  a

lead: ' x'
list:
- "y"
- "no"
- ok
- - "ON"
merge: <<
"n":
  x: "N"
n_1: "1_000"
neg: "-2_0"
nothing: []
oct: "0755"
q: it's
'quoted key: yes': "on"
star: '*x'
tab: "a\tb"
text: |
  line: yes
  no
tilde: "~"
trailsp: "a \nb"
"yes": key
"#;
        assert_eq!(out, expected);
        // and any YAML reader reads back the same strings
        let back: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn long_plain_strings_fold_past_80_columns() {
        let long = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq";
        let out = to_string(&json!({"metadata": {"annotations": {"long": long}}})).unwrap();
        assert_eq!(
            out,
            "metadata:\n  annotations:\n    long: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo\n      pppp qqqq\n"
        );
        let back: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(back["metadata"]["annotations"]["long"], long);
    }
}
