//! Go's `fmt` formatting, as far as templates use it: `%v` of floats, and `printf`'s verbs, flags,
//! width and precision.

use crate::Value;

/// `%v` of a float64 as Go prints it: the shortest digits that read back the same, in exponent form
/// when the exponent is below -4 or at least 6 (`1e+06`, `123456`).
pub fn float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("an exponent");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    // NB: Rust's Display is the shortest round-trip form without an exponent
    format!("{f}")
}

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = digits(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(digits(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let body = one(verb, arg, &spec);
        out.push_str(&pad(body, &spec, verb, arg));
    }
    let extra: Vec<String> = args
        .map(|a| format!("{}={}", a.type_name(), a.to_go_string()))
        .collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn digits(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

fn bad(verb: char, arg: &Value) -> String {
    format!("%!{verb}({}={})", arg.type_name(), arg.to_go_string())
}

fn one(verb: char, arg: &Value, spec: &Spec) -> String {
    match (verb, arg) {
        ('v', _) => arg.to_go_string(),
        ('s', Value::Str(s)) => match spec.precision {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('s', Value::Int(_) | Value::Float(_) | Value::Bool(_)) => bad(verb, arg),
        ('s', _) => arg.to_go_string(),
        ('q', Value::Str(s)) => quote(s),
        ('q', Value::Int(i)) => {
            char::from_u32(*i as u32).map_or_else(|| bad(verb, arg), |c| format!("'{c}'"))
        }
        ('t', Value::Bool(b)) => b.to_string(),
        ('d', Value::Int(i)) => signed(*i, spec),
        ('c', Value::Int(i)) => char::from_u32(*i as u32).map_or_else(|| bad(verb, arg), String::from),
        ('x', Value::Int(i)) => prefixed(*i, spec, "0x", |u| format!("{u:x}")),
        ('X', Value::Int(i)) => prefixed(*i, spec, "0X", |u| format!("{u:X}")),
        ('o', Value::Int(i)) => prefixed(*i, spec, "0", |u| format!("{u:o}")),
        ('b', Value::Int(i)) => prefixed(*i, spec, "", |u| format!("{u:b}")),
        ('x', Value::Str(s)) => hex::encode(s.as_bytes()),
        ('X', Value::Str(s)) => hex::encode_upper(s.as_bytes()),
        ('f' | 'F', Value::Float(f)) => sign(format!("{:.*}", spec.precision.unwrap_or(6), f), spec),
        ('e' | 'E', Value::Float(f)) => {
            let s = go_exp(*f, spec.precision.unwrap_or(6));
            sign(if verb == 'E' { s.to_uppercase() } else { s }, spec)
        }
        ('g' | 'G', Value::Float(f)) => sign(float_v(*f), spec),
        _ => bad(verb, arg),
    }
}

fn go_exp(f: f64, precision: usize) -> String {
    let e = format!("{f:.precision$e}");
    let (m, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("an exponent");
    let s = if exp < 0 { '-' } else { '+' };
    format!("{m}e{s}{:02}", exp.abs())
}

fn sign(s: String, spec: &Spec) -> String {
    if s.starts_with('-') {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn signed(i: i64, spec: &Spec) -> String {
    sign(i.to_string(), spec)
}

fn prefixed(i: i64, spec: &Spec, prefix: &str, f: impl Fn(u64) -> String) -> String {
    let body = f(i.unsigned_abs());
    let body = if spec.sharp {
        format!("{prefix}{body}")
    } else {
        body
    };
    if i < 0 {
        format!("-{body}")
    } else {
        sign(body, spec)
    }
}

fn pad(body: String, spec: &Spec, verb: char, arg: &Value) -> String {
    let Some(width) = spec.width else {
        return body;
    };
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if spec.minus {
        return format!("{body}{}", " ".repeat(fill));
    }
    let numeric = matches!(arg, Value::Int(_) | Value::Float(_)) && !matches!(verb, 'c' | 'q' | 'v' | 's');
    if spec.zero && numeric {
        let (sign, digits) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), body[1..].to_string()),
            _ => (String::new(), body),
        };
        return format!("{sign}{}{digits}", "0".repeat(fill));
    }
    format!("{}{body}", " ".repeat(fill))
}
