//! Functions: Go's builtins (`len`, `index`, `printf`, `eq`…) and Sprig's hermetic text functions
//! (`sprig.HermeticTxtFuncMap()`, the set Flux gives commit message templates) that work on the values
//! a template sees. Sprig's argument order is kept: the piped value comes last (`"a-b" | replace "-"
//! "_"`).

use std::{cmp::Ordering, path::Path};

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::Digest;

use crate::{Value, compare, format};

type Result<T> = std::result::Result<T, String>;

/// Every function name a template may call.
const NAMES: &[&str] = &[
    // Go's builtins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    // Sprig: strings
    "upper",
    "lower",
    "title",
    "untitle",
    "substr",
    "repeat",
    "trim",
    "trimAll",
    "trimall",
    "trimSuffix",
    "trimPrefix",
    "nospace",
    "initials",
    "abbrev",
    "abbrevboth",
    "trunc",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "snakecase",
    "camelcase",
    "kebabcase",
    "swapcase",
    "wrap",
    "wrapWith",
    "toString",
    "toStrings",
    "split",
    "splitList",
    "splitn",
    "join",
    "sortAlpha",
    "regexMatch",
    "mustRegexMatch",
    "regexFind",
    "mustRegexFind",
    "regexFindAll",
    "mustRegexFindAll",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    // Sprig: defaults, JSON
    "default",
    "empty",
    "coalesce",
    "all",
    "any",
    "ternary",
    "toJson",
    "mustToJson",
    "toPrettyJson",
    "mustToPrettyJson",
    "toRawJson",
    "mustToRawJson",
    "fromJson",
    "mustFromJson",
    // Sprig: lists
    "list",
    "tuple",
    "first",
    "mustFirst",
    "last",
    "mustLast",
    "rest",
    "mustRest",
    "initial",
    "mustInitial",
    "append",
    "mustAppend",
    "push",
    "mustPush",
    "prepend",
    "mustPrepend",
    "concat",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "compact",
    "mustCompact",
    "until",
    "untilStep",
    "seq",
    // Sprig: dicts
    "dict",
    "get",
    "set",
    "unset",
    "keys",
    "hasKey",
    "values",
    "pick",
    "omit",
    "pluck",
    // Sprig: math, conversions
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "biggest",
    "floor",
    "ceil",
    "round",
    "int",
    "int64",
    "float64",
    "atoi",
    "addf",
    "subf",
    "mulf",
    "divf",
    // Sprig: encodings, paths
    "b64enc",
    "b64dec",
    "b32enc",
    "sha1sum",
    "sha256sum",
    "adler32sum",
    "base",
    "dir",
    "ext",
    "clean",
    "isAbs",
    "kindOf",
    "typeOf",
    "kindIs",
    "typeIs",
    "deepEqual",
];

/// Whether `name` is a function templates may call.
pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

/// Sprig's `toString`: a string as it is, anything else as `%v` prints it.
fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Nil => String::new(),
        v => v.to_go_string(),
    }
}

/// Sprig's `toInt64` (spf13/cast): numbers, numeric strings and booleans; anything else is 0.
fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => s.trim().parse::<i64>().unwrap_or(0),
        _ => 0,
    }
}

fn float(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.trim().parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn list(v: &Value) -> Result<Vec<Value>> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("cannot find first on type {}", other.type_name())),
    }
}

fn dict(v: &Value) -> Result<Vec<(Value, Value)>> {
    match v {
        Value::Map(m) => Ok(m.clone()),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("expected a dict, got {}", other.type_name())),
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<()> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

fn regex(pattern: &Value) -> Result<regex::Regex> {
    regex::Regex::new(&text(pattern)).map_err(|e| format!("error parsing regexp: {e}"))
}

fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        Value::Str(s) => s.clone().into(),
        Value::List(l) => l.iter().map(json).collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (text(k), json(v))).collect(),
        Value::Struct(s) => s.fields.iter().map(|(k, v)| (k.clone(), json(v))).collect(),
    }
}

fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::Str(s),
        serde_json::Value::Array(a) => Value::List(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::map(o.into_iter().map(|(k, v)| (Value::Str(k), from_json(v)))),
    }
}

/// Go's `eq`/`lt` comparison of two basic values.
fn basic_cmp(a: &Value, b: &Value) -> Result<Ordering> {
    match (a, b) {
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_))
        | (Value::Str(_), Value::Str(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(compare(a, b)),
        (Value::Nil, Value::Nil) => Ok(Ordering::Equal),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let boundary = c.is_uppercase()
            && !cur.is_empty()
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if boundary {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

fn indent(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

fn wrap(width: usize, s: &str, newline: &str) -> String {
    let mut out = String::new();
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut len = 0;
        for (j, word) in line.split(' ').enumerate() {
            if j > 0 {
                if len + 1 + word.chars().count() > width && len > 0 {
                    out.push_str(newline);
                    len = 0;
                } else {
                    out.push(' ');
                    len += 1;
                }
            }
            out.push_str(word);
            len += word.chars().count();
        }
    }
    out
}

fn substr(start: i64, end: i64, s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let start = start.max(0).min(len);
    let end = if end < 0 || end > len { len } else { end };
    if start >= end {
        return String::new();
    }
    chars[start as usize..end as usize].iter().collect()
}

/// Calls `name` with `args` (the piped value last).
pub fn call(name: &str, args: Vec<Value>) -> Result<Value> {
    let a = &args;
    let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Nil);
    let s = |i: usize| text(&arg(i));
    let last = || a.last().cloned().unwrap_or(Value::Nil);
    Ok(match name {
        // Go's builtins
        "not" => {
            want(name, a, 1)?;
            Value::Bool(!arg(0).truth())
        }
        "len" => {
            want(name, a, 1)?;
            Value::Int(match &arg(0) {
                Value::Str(s) => s.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Map(m) => m.len() as i64,
                other => return Err(format!("len of type {}", other.type_name())),
            })
        }
        "index" => {
            let mut v = arg(0);
            for key in &a[1.min(a.len())..] {
                v = match (&v, key) {
                    (Value::List(l), k) => {
                        let i = int(k);
                        l.get(usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?)
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (Value::Str(s), k) => {
                        let i = int(k);
                        Value::Int(i64::from(
                            *s.as_bytes()
                                .get(usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?)
                                .ok_or_else(|| format!("index out of range: {i}"))?,
                        ))
                    }
                    (Value::Map(m), k) => m
                        .iter()
                        .find(|(mk, _)| compare(mk, k) == Ordering::Equal)
                        .map_or(Value::Nil, |(_, v)| v.clone()),
                    (Value::Nil, _) => return Err("index of untyped nil".into()),
                    (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
                };
            }
            v
        }
        "slice" => match arg(0) {
            Value::List(l) => {
                let from = a.get(1).map_or(0, int).max(0) as usize;
                let to = a.get(2).map_or(l.len() as i64, int).max(0) as usize;
                if from > to || to > l.len() {
                    return Err(format!("index out of range: {to}"));
                }
                Value::List(l[from..to].to_vec())
            }
            Value::Str(st) => {
                let from = a.get(1).map_or(0, int).max(0) as usize;
                let to = a.get(2).map_or(st.len() as i64, int).max(0) as usize;
                Value::Str(
                    st.get(from..to)
                        .ok_or_else(|| format!("index out of range: {to}"))?
                        .to_string(),
                )
            }
            other => return Err(format!("can't slice item of type {}", other.type_name())),
        },
        "print" => {
            // NB: fmt.Sprint puts spaces between operands when neither is a string
            let mut out = String::new();
            for (i, v) in a.iter().enumerate() {
                if i > 0 && !matches!(v, Value::Str(_)) && !matches!(a[i - 1], Value::Str(_)) {
                    out.push(' ');
                }
                out.push_str(&v.to_go_string());
            }
            Value::Str(out)
        }
        "println" => Value::Str(format!(
            "{}\n",
            a.iter().map(Value::to_go_string).collect::<Vec<_>>().join(" ")
        )),
        "printf" => {
            if a.is_empty() {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            }
            Value::Str(format::sprintf(&s(0), &a[1..]))
        }
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for b in &a[1..] {
                if basic_cmp(&a[0], b)? == Ordering::Equal {
                    any = true;
                }
            }
            Value::Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(name, a, 2)?;
            let o = basic_cmp(&a[0], &a[1])?;
            Value::Bool(match name {
                "ne" => o != Ordering::Equal,
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        "html" => Value::Str(
            a.iter()
                .map(text)
                .collect::<String>()
                .replace('&', "&amp;")
                .replace('\'', "&#39;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;"),
        ),
        "js" => Value::Str(
            a.iter()
                .map(text)
                .collect::<String>()
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('"', "\\\"")
                .replace('<', "\\u003C")
                .replace('>', "\\u003E"),
        ),
        "urlquery" => Value::Str(
            a.iter()
                .map(text)
                .collect::<String>()
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".into(),
                    b => format!("%{b:02X}"),
                })
                .collect(),
        ),
        // Sprig: strings
        "upper" => Value::Str(s(0).to_uppercase()),
        "lower" => Value::Str(s(0).to_lowercase()),
        "title" => Value::Str(title(&s(0))),
        "untitle" => Value::Str(
            s(0).split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map_or(String::new(), |f| f.to_lowercase().chain(c).collect())
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "substr" => Value::Str(substr(int(&arg(0)), int(&arg(1)), &s(2))),
        "repeat" => Value::Str(s(1).repeat(int(&arg(0)).max(0) as usize)),
        "trim" => Value::Str(s(0).trim().to_string()),
        "trimAll" | "trimall" => {
            let cut: Vec<char> = s(0).chars().collect();
            Value::Str(s(1).trim_matches(|c| cut.contains(&c)).to_string())
        }
        "trimSuffix" => Value::Str(s(1).strip_suffix(&s(0)).map_or_else(|| s(1), str::to_string)),
        "trimPrefix" => Value::Str(s(1).strip_prefix(&s(0)).map_or_else(|| s(1), str::to_string)),
        "nospace" => Value::Str(s(0).chars().filter(|c| !c.is_whitespace()).collect()),
        "initials" => Value::Str(s(0).split_whitespace().filter_map(|w| w.chars().next()).collect()),
        "abbrev" => {
            let width = int(&arg(0)).max(0) as usize;
            let st = s(1);
            if width < 4 || st.chars().count() <= width {
                Value::Str(st)
            } else {
                Value::Str(format!("{}...", st.chars().take(width - 3).collect::<String>()))
            }
        }
        "abbrevboth" => {
            let (left, width) = (int(&arg(0)).max(0) as usize, int(&arg(1)).max(0) as usize);
            let st: Vec<char> = s(2).chars().collect();
            if width < 4 || st.len() <= width {
                Value::Str(st.iter().collect())
            } else {
                let left = left.min(st.len());
                let inner: String = st[left..].iter().collect();
                let cut: String = inner.chars().take(width.saturating_sub(6)).collect();
                Value::Str(if left > 0 {
                    format!("...{cut}...")
                } else {
                    format!("{cut}...")
                })
            }
        }
        "trunc" => {
            let n = int(&arg(0));
            let st: Vec<char> = s(1).chars().collect();
            let len = st.len() as i64;
            Value::Str(if n >= 0 {
                st[..n.min(len) as usize].iter().collect()
            } else {
                st[(len + n).max(0) as usize..].iter().collect()
            })
        }
        "contains" => Value::Bool(s(1).contains(&s(0))),
        "hasPrefix" => Value::Bool(s(1).starts_with(&s(0))),
        "hasSuffix" => Value::Bool(s(1).ends_with(&s(0))),
        "quote" => Value::Str(
            a.iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(|v| format::quote(&text(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => Value::Str(
            a.iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(|v| format!("'{}'", text(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "cat" => Value::Str(
            a.iter()
                .filter(|v| !matches!(v, Value::Nil))
                .map(text)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "indent" => Value::Str(indent(int(&arg(0)), &s(1))),
        "nindent" => Value::Str(format!("\n{}", indent(int(&arg(0)), &s(1)))),
        "replace" => Value::Str(s(2).replace(&s(0), &s(1))),
        "plural" => Value::Str(if int(&arg(2)) == 1 { s(0) } else { s(1) }),
        "snakecase" => Value::Str(
            words(&s(0))
                .iter()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
                .join("_"),
        ),
        "kebabcase" => Value::Str(
            words(&s(0))
                .iter()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
                .join("-"),
        ),
        "camelcase" => Value::Str(
            s(0).split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
                })
                .collect(),
        ),
        "swapcase" => Value::Str(
            s(0).chars()
                .flat_map(|c| -> Vec<char> {
                    if c.is_uppercase() {
                        c.to_lowercase().collect()
                    } else {
                        c.to_uppercase().collect()
                    }
                })
                .collect(),
        ),
        "wrap" => Value::Str(wrap(int(&arg(0)).max(1) as usize, &s(1), "\n")),
        "wrapWith" => Value::Str(wrap(int(&arg(0)).max(1) as usize, &s(2), &s(1))),
        "toString" => Value::Str(s(0)),
        "toStrings" => Value::List(list(&arg(0))?.iter().map(|v| Value::Str(text(v))).collect()),
        "split" => Value::map(
            s(1).split(s(0).as_str())
                .enumerate()
                .map(|(i, p)| (Value::Str(format!("_{i}")), Value::Str(p.to_string()))),
        ),
        "splitList" => Value::List(s(1).split(s(0).as_str()).map(Value::from).collect()),
        "splitn" => {
            let n = int(&arg(1));
            let st = s(2);
            let parts: Vec<&str> = if n < 0 {
                st.split(s(0).as_str()).collect()
            } else {
                st.splitn(n as usize, s(0).as_str()).collect()
            };
            Value::map(
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (Value::Str(format!("_{i}")), Value::from(p))),
            )
        }
        "join" => Value::Str(match arg(1) {
            Value::List(l) => l.iter().map(text).collect::<Vec<_>>().join(&s(0)),
            other => text(&other),
        }),
        "sortAlpha" => {
            let mut l: Vec<String> = list(&arg(0))?.iter().map(text).collect();
            l.sort();
            Value::List(l.into_iter().map(Value::Str).collect())
        }
        "regexMatch" | "mustRegexMatch" => Value::Bool(regex(&arg(0))?.is_match(&s(1))),
        "regexFind" | "mustRegexFind" => {
            Value::Str(regex(&arg(0))?.find(&s(1)).map_or("", |m| m.as_str()).to_string())
        }
        "regexFindAll" | "mustRegexFindAll" => {
            let n = int(&arg(2));
            let st = s(1);
            let re = regex(&arg(0))?;
            let found = re.find_iter(&st).map(|m| Value::from(m.as_str()));
            Value::List(if n < 0 {
                found.collect()
            } else {
                found.take(n as usize).collect()
            })
        }
        "regexReplaceAll" | "mustRegexReplaceAll" => {
            Value::Str(regex(&arg(0))?.replace_all(&s(1), s(2).as_str()).into_owned())
        }
        "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral" => Value::Str(
            regex(&arg(0))?
                .replace_all(&s(1), regex::NoExpand(&s(2)))
                .into_owned(),
        ),
        "regexSplit" | "mustRegexSplit" => {
            let n = int(&arg(2));
            let st = s(1);
            let re = regex(&arg(0))?;
            Value::List(if n < 0 {
                re.split(&st).map(Value::from).collect()
            } else {
                re.splitn(&st, n as usize).map(Value::from).collect()
            })
        }
        "regexQuoteMeta" => Value::Str(regex::escape(&s(0))),
        // Sprig: defaults, JSON
        "default" => {
            if a.len() < 2 || !a[1].truth() {
                arg(0)
            } else {
                a[1].clone()
            }
        }
        "empty" => Value::Bool(!arg(0).truth()),
        "coalesce" => a.iter().find(|v| v.truth()).cloned().unwrap_or(Value::Nil),
        "all" => Value::Bool(a.iter().all(Value::truth)),
        "any" => Value::Bool(a.iter().any(Value::truth)),
        "ternary" => {
            want(name, a, 3)?;
            if a[2].truth() { arg(0) } else { arg(1) }
        }
        "toJson" | "mustToJson" | "toRawJson" | "mustToRawJson" => Value::Str(json(&arg(0)).to_string()),
        "toPrettyJson" | "mustToPrettyJson" => {
            Value::Str(serde_json::to_string_pretty(&json(&arg(0))).unwrap_or_default())
        }
        "fromJson" | "mustFromJson" => match serde_json::from_str(&s(0)) {
            Ok(v) => from_json(v),
            Err(e) if name == "mustFromJson" => return Err(e.to_string()),
            Err(_) => Value::map([]),
        },
        // Sprig: lists
        "list" | "tuple" => Value::List(a.clone()),
        "first" | "mustFirst" => list(&arg(0))?.first().cloned().unwrap_or(Value::Nil),
        "last" | "mustLast" => list(&arg(0))?.last().cloned().unwrap_or(Value::Nil),
        "rest" | "mustRest" => Value::List(list(&arg(0))?.into_iter().skip(1).collect()),
        "initial" | "mustInitial" => {
            let mut l = list(&arg(0))?;
            l.pop();
            Value::List(l)
        }
        "append" | "mustAppend" | "push" | "mustPush" => {
            let mut l = list(&arg(0))?;
            l.push(arg(1));
            Value::List(l)
        }
        "prepend" | "mustPrepend" => {
            let mut l = list(&arg(0))?;
            l.insert(0, arg(1));
            Value::List(l)
        }
        "concat" => {
            let mut out = Vec::new();
            for v in a {
                out.extend(list(v)?);
            }
            Value::List(out)
        }
        "reverse" | "mustReverse" => {
            let mut l = list(&arg(0))?;
            l.reverse();
            Value::List(l)
        }
        "uniq" | "mustUniq" => {
            let mut out: Vec<Value> = Vec::new();
            for v in list(&arg(0))? {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Value::List(out)
        }
        "without" | "mustWithout" => {
            let drop = &a[1.min(a.len())..];
            Value::List(list(&arg(0))?.into_iter().filter(|v| !drop.contains(v)).collect())
        }
        "has" | "mustHas" => Value::Bool(list(&arg(1))?.contains(&arg(0))),
        "compact" | "mustCompact" => Value::List(list(&arg(0))?.into_iter().filter(Value::truth).collect()),
        "until" => {
            let n = int(&arg(0));
            let range: Vec<Value> = if n >= 0 {
                (0..n.min(1_000_000)).map(Value::Int).collect()
            } else {
                (n.max(-1_000_000) + 1..=0).rev().map(Value::Int).collect()
            };
            Value::List(range)
        }
        "untilStep" | "seq" => {
            let (start, stop, step) = if name == "seq" {
                match a.len() {
                    1 => (1, int(&a[0]), 1),
                    2 => (int(&a[0]), int(&a[1]), 1),
                    _ => (int(&arg(0)), int(&arg(2)), int(&arg(1))),
                }
            } else {
                (int(&arg(0)), int(&arg(1)), int(&arg(2)))
            };
            let mut out = Vec::new();
            let mut i = start;
            while step != 0
                && out.len() < 1_000_000
                && ((step > 0 && i < stop + i64::from(name == "seq"))
                    || (step < 0 && i > stop - i64::from(name == "seq")))
            {
                out.push(Value::Int(i));
                i += step;
            }
            if name == "seq" {
                Value::Str(out.iter().map(Value::to_go_string).collect::<Vec<_>>().join(" "))
            } else {
                Value::List(out)
            }
        }
        // Sprig: dicts
        "dict" => Value::map(a.chunks(2).map(|kv| {
            (
                Value::Str(text(&kv[0])),
                kv.get(1).cloned().unwrap_or(Value::from("")),
            )
        })),
        "get" => dict(&arg(0))?
            .into_iter()
            .find(|(k, _)| text(k) == s(1))
            .map_or(Value::from(""), |(_, v)| v),
        "set" => {
            let mut d = dict(&arg(0))?;
            d.retain(|(k, _)| text(k) != s(1));
            d.push((Value::Str(s(1)), arg(2)));
            Value::map(d)
        }
        "unset" => {
            let mut d = dict(&arg(0))?;
            d.retain(|(k, _)| text(k) != s(1));
            Value::map(d)
        }
        "keys" => {
            let mut out = Vec::new();
            for d in a {
                out.extend(dict(d)?.into_iter().map(|(k, _)| k));
            }
            Value::List(out)
        }
        "hasKey" => Value::Bool(dict(&arg(0))?.iter().any(|(k, _)| text(k) == s(1))),
        "values" => Value::List(dict(&arg(0))?.into_iter().map(|(_, v)| v).collect()),
        "pick" | "omit" => {
            let names: Vec<String> = a[1.min(a.len())..].iter().map(text).collect();
            let keep = name == "pick";
            Value::map(
                dict(&arg(0))?
                    .into_iter()
                    .filter(|(k, _)| names.contains(&text(k)) == keep),
            )
        }
        "pluck" => {
            let key = s(0);
            let mut out = Vec::new();
            for d in &a[1.min(a.len())..] {
                if let Some((_, v)) = dict(d)?.into_iter().find(|(k, _)| text(k) == key) {
                    out.push(v);
                }
            }
            Value::List(out)
        }
        // Sprig: math
        "add" => Value::Int(a.iter().map(int).fold(0i64, i64::wrapping_add)),
        "add1" => Value::Int(int(&arg(0)).wrapping_add(1)),
        "sub" => Value::Int(int(&arg(0)).wrapping_sub(int(&arg(1)))),
        "mul" => Value::Int(a.iter().map(int).fold(1i64, i64::wrapping_mul)),
        "div" => {
            let d = int(&arg(1));
            if d == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            Value::Int(int(&arg(0)) / d)
        }
        "mod" => {
            let d = int(&arg(1));
            if d == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            Value::Int(int(&arg(0)) % d)
        }
        "max" | "biggest" => Value::Int(a.iter().map(int).max().unwrap_or(0)),
        "min" => Value::Int(a.iter().map(int).min().unwrap_or(0)),
        "floor" => Value::Float(float(&arg(0)).floor()),
        "ceil" => Value::Float(float(&arg(0)).ceil()),
        "round" => {
            let p = 10f64.powi(int(&arg(1)) as i32);
            Value::Float((float(&arg(0)) * p).round() / p)
        }
        "addf" => Value::Float(a.iter().map(float).sum()),
        "subf" => Value::Float(a.iter().skip(1).map(float).fold(float(&arg(0)), |x, y| x - y)),
        "mulf" => Value::Float(a.iter().map(float).product()),
        "divf" => Value::Float(a.iter().skip(1).map(float).fold(float(&arg(0)), |x, y| x / y)),
        "int" | "int64" => Value::Int(int(&arg(0))),
        "float64" => Value::Float(float(&arg(0))),
        "atoi" => Value::Int(s(0).parse().unwrap_or(0)),
        // Sprig: encodings, paths
        "b64enc" => Value::Str(STANDARD.encode(s(0))),
        "b64dec" => Value::Str(match STANDARD.decode(s(0)) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => e.to_string(),
        }),
        "b32enc" => Value::Str(base32(s(0).as_bytes())),
        "sha1sum" => Value::Str(hex::encode(sha1::Sha1::digest(s(0).as_bytes()))),
        "sha256sum" => Value::Str(hex::encode(sha2::Sha256::digest(s(0).as_bytes()))),
        "adler32sum" => Value::Str(adler32(s(0).as_bytes()).to_string()),
        "base" => Value::Str(go_base(&s(0))),
        "dir" => Value::Str(go_dir(&s(0))),
        "ext" => Value::Str(
            Path::new(&s(0))
                .extension()
                .map_or(String::new(), |e| format!(".{}", e.to_string_lossy())),
        ),
        "clean" => Value::Str(go_clean(&s(0))),
        "isAbs" => Value::Bool(s(0).starts_with('/')),
        "kindOf" | "typeOf" => Value::Str(match (name, &arg(0)) {
            ("kindOf", Value::List(_)) => "slice".into(),
            ("kindOf", Value::Map(_)) => "map".into(),
            ("kindOf", Value::Struct(_)) => "struct".into(),
            ("kindOf", Value::Nil) => "invalid".into(),
            (_, v) => v.type_name(),
        }),
        "kindIs" | "typeIs" => {
            let kind = call(if name == "kindIs" { "kindOf" } else { "typeOf" }, vec![arg(1)])?;
            Value::Bool(text(&kind) == s(0))
        }
        "deepEqual" => Value::Bool(arg(0) == arg(1)),
        _ => {
            let _ = last;
            return Err(format!("function {name:?} not defined"));
        }
    })
}

/// Adler-32 (`hash/adler32`).
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(ALPHABET[((bits >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `path.Clean`.
fn go_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            x => parts.push(x),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`.
fn go_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `path.Dir`.
fn go_dir(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    go_clean(dir)
}
