//! Flux's post-build variable substitution (`spec.postBuild`): bash-style `${var}` expressions in the
//! built objects are replaced from a set of variables, after the build, object by object.
//!
//! The expression language is Flux's (a fork of drone/envsubst): `${var}`, `${var:=default}` (and `=`,
//! `:-`, `:+`, `:?`, which all fall back to their argument when the value is empty), `${#var}`,
//! `${var:offset}`, `${var:offset:length}`, `${var/from/to}` (`//`, `/#`, `/%`), `${var#glob}` (`##`,
//! `%`, `%%`), `${var^}` (`^^`, `,`, `,,`); `$$` writes a `$`, so `$${var}` is left as `${var}`. Like
//! Flux, a missing variable becomes the empty string, unless `strict`, where it is an error (defaults
//! still apply). An object labelled or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` is
//! left alone.
//!
//! A plain YAML scalar is re-read after substitution, as Flux's text substitution does: `replicas:
//! ${REPLICAS}` becomes a number, `enabled: ${ON}` a boolean, while a quoted `"${VERSION}"` stays a
//! string (see [`crate::yaml::PLAIN`]).

use std::collections::BTreeMap;

use crate::{
    Object,
    yaml::{PLAIN, strip_marks},
};

/// The label or annotation that opts an object out, and its value.
pub const OPT_OUT: (&str, &str) = ("kustomize.toolkit.fluxcd.io/substitute", "disabled");

/// Why an expression could not be evaluated; the texts are Flux's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A malformed expression.
    #[error("bad substitution")]
    BadSubstitution,
    /// `${` without its `}`.
    #[error("missing closing brace")]
    MissingClosingBrace,
    /// `${}` or a name that is not one.
    #[error("unable to parse variable name")]
    VariableName,
    /// A function argument that is not one.
    #[error("unable to parse substitution within function")]
    FuncSubstitution,
    /// A malformed default.
    #[error("unable to parse default function")]
    DefaultFunction,
    /// Strict mode: the variable has no value and the expression no default.
    #[error("variable not set (strict mode): {0:?}")]
    NotSet(String),
}

/// Checks the variable names as Flux does.
pub fn check_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    for name in names {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "'{name}' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
            ));
        }
    }
    Ok(())
}

/// Substitutes `vars` in every object that does not opt out, and removes the plain-scalar marks of
/// [`crate::build_marked`] from all of them. With no variables nothing is substituted, as in Flux. The
/// error is Flux's message: `post build failed for '<Kind.version.group>/<name>': envsubst error: …`.
pub fn substitute_all(
    objects: &mut [Object],
    vars: &BTreeMap<String, String>,
    strict: bool,
) -> Result<(), String> {
    let mut names_checked = false;
    for obj in objects.iter_mut() {
        if vars.is_empty() || opted_out(obj) {
            strip_marks(obj);
            continue;
        }
        let id = res_id(obj);
        let failed = |message: String| format!("post build failed for '{id}': envsubst error: {message}");
        if !names_checked {
            check_names(vars.keys()).map_err(failed)?;
            names_checked = true;
        }
        let lookup = |name: &str| vars.get(name).map(String::as_str);
        if let Err(e) = substitute(obj, &lookup, strict) {
            return Err(failed(format!("variable substitution failed: {e}")));
        }
    }
    Ok(())
}

fn opted_out(obj: &Object) -> bool {
    ["labels", "annotations"].iter().any(|m| {
        obj.pointer(&format!("/metadata/{m}/{}", OPT_OUT.0.replace('/', "~1")))
            .and_then(Object::as_str)
            == Some(OPT_OUT.1)
    })
}

/// kustomize's resource id as Flux prints it: `Deployment.v1.apps/web`, `ConfigMap.v1.[noGrp]/cfg`.
fn res_id(obj: &Object) -> String {
    let s = |p: &str| obj.pointer(p).and_then(Object::as_str).unwrap_or_default();
    let (group, version) = match s("/apiVersion").split_once('/') {
        Some((g, v)) => (g, v),
        None => ("[noGrp]", s("/apiVersion")),
    };
    format!("{}.{version}.{group}/{}", s("/kind"), s("/metadata/name"))
}

/// Substitutes in every string and key of `obj`, then removes its marks.
pub fn substitute<'v>(
    obj: &mut Object,
    lookup: &impl Fn(&str) -> Option<&'v str>,
    strict: bool,
) -> Result<(), EvalError> {
    match obj {
        Object::String(s) => {
            let plain = s.starts_with(PLAIN);
            let text: String = s.chars().filter(|c| *c != PLAIN).collect();
            let out = eval(&text, lookup, strict)?;
            *obj = if plain {
                resolve_plain(&out)
            } else {
                Object::String(out)
            };
        }
        Object::Array(items) => {
            for item in items {
                substitute(item, lookup, strict)?;
            }
        }
        Object::Object(map) => {
            for value in map.values_mut() {
                substitute(value, lookup, strict)?;
            }
            let keys: Vec<String> = map.keys().filter(|k| k.contains('$')).cloned().collect();
            for key in keys {
                let new = eval(&key, lookup, strict)?;
                if new != key
                    && let Some(value) = map.remove(&key)
                {
                    map.insert(new, value);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads a plain scalar's text as YAML would: `3` a number, `true`/`yes`/`on` booleans (YAML 1.1, as
/// Flux's YAML library reads them), `~` or nothing null, `[a, b]` and `{a: b}` flow collections;
/// anything else a string.
pub fn resolve_plain(text: &str) -> Object {
    const TRUE: [&str; 11] = [
        "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE",
    ];
    const FALSE: [&str; 11] = [
        "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE",
    ];
    if TRUE.contains(&text) {
        return Object::Bool(true);
    }
    if FALSE.contains(&text) {
        return Object::Bool(false);
    }
    use serde_yaml::Value;
    let flow = text.trim_start().starts_with(['[', '{']);
    match serde_yaml::from_str::<Value>(text) {
        Ok(v @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))) => {
            serde_json::to_value(v).unwrap_or_else(|_| Object::String(text.to_string()))
        }
        Ok(v @ (Value::Sequence(_) | Value::Mapping(_))) if flow => {
            serde_json::to_value(v).unwrap_or_else(|_| Object::String(text.to_string()))
        }
        _ => Object::String(text.to_string()),
    }
}

/// Evaluates the expressions in `text`. `lookup` gives a variable's value; a missing one is empty,
/// or an error when `strict` and the expression has no default.
pub fn eval<'v>(
    text: &str,
    lookup: &impl Fn(&str) -> Option<&'v str>,
    strict: bool,
) -> Result<String, EvalError> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let nodes = Parser::new(text).parse()?;
    let mut out = String::with_capacity(text.len());
    for node in &nodes {
        node.eval(lookup, strict, &mut out)?;
    }
    Ok(out)
}

#[derive(Debug)]
enum Node {
    Text(String),
    Func {
        /// The variable.
        param: String,
        /// The operator: empty for `${var}`, `:=`, `/`, `#`, `^^`…
        op: String,
        args: Vec<Node>,
    },
}

impl Node {
    fn eval<'v>(
        &self,
        lookup: &impl Fn(&str) -> Option<&'v str>,
        strict: bool,
        out: &mut String,
    ) -> Result<(), EvalError> {
        let (param, op, args) = match self {
            Node::Text(t) => {
                out.push_str(t);
                return Ok(());
            }
            Node::Func { param, op, args } => (param, op.as_str(), args),
        };
        let mut values = Vec::with_capacity(args.len());
        for a in args {
            let mut s = String::new();
            a.eval(lookup, strict, &mut s)?;
            values.push(s);
        }
        let is_default = matches!(op, "-" | "+" | "=" | "?" | ":-" | ":+" | ":=" | ":?");
        let value = match lookup(param) {
            Some(v) => v,
            None if strict && !is_default => return Err(EvalError::NotSet(param.clone())),
            None => "",
        };
        out.push_str(&apply(op, value, &values));
        Ok(())
    }
}

/// The function `op` of the value, as Flux's envsubst computes it.
fn apply(op: &str, v: &str, args: &[String]) -> String {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match op {
        "," => first_char(v, |c| c.to_lowercase().collect()),
        ",," => v.to_lowercase(),
        "^" => first_char(v, |c| c.to_uppercase().collect()),
        "^^" => v.to_uppercase(),
        "#" if args.is_empty() => v.len().to_string(),
        "#" => arg(0).map_or(v.to_string(), |p| trim_prefix(v, p, false)),
        "##" => arg(0).map_or(v.to_string(), |p| trim_prefix(v, p, true)),
        "%" => arg(0).map_or(v.to_string(), |p| trim_suffix(v, p, false)),
        "%%" => arg(0).map_or(v.to_string(), |p| trim_suffix(v, p, true)),
        ":" => substring(v, args),
        "/#" => match args {
            [from, to] if v.starts_with(from.as_str()) => v.replacen(from.as_str(), to, 1),
            _ => v.to_string(),
        },
        "/%" => match args {
            [from, to] if v.ends_with(from.as_str()) => format!("{}{to}", &v[..v.len() - from.len()]),
            _ => v.to_string(),
        },
        "/" => match args {
            [] => v.to_string(),
            [from] => v.replacen(from.as_str(), "", 1),
            [from, to, ..] => v.replacen(from.as_str(), to, 1),
        },
        "//" => match args {
            [] => v.to_string(),
            [from] => v.replace(from.as_str(), ""),
            [from, to, ..] => v.replace(from.as_str(), to),
        },
        // the default operators and a bare ${var}: the value, else the arguments joined
        _ if v.is_empty() && !args.is_empty() => args.concat(),
        _ => v.to_string(),
    }
}

fn first_char(v: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = v.chars();
    match chars.next() {
        Some(c) => f(c) + chars.as_str(),
        None => String::new(),
    }
}

/// `${v:pos}` and `${v:pos:len}` over bytes, as Go slices strings; unparsable numbers leave `v`.
fn substring(v: &str, args: &[String]) -> String {
    let n = v.len() as i64;
    let Some(Ok(mut pos)) = args.first().map(|a| a.parse::<i64>()) else {
        return v.to_string();
    };
    if pos < 0 {
        pos = (n + pos).max(0);
    }
    let bytes =
        |from: i64, to: i64| String::from_utf8_lossy(&v.as_bytes()[from as usize..to as usize]).into_owned();
    let Some(len) = args.get(1) else {
        return if pos < n { bytes(pos, n) } else { String::new() };
    };
    let Ok(len) = len.parse::<i64>() else {
        return v.to_string();
    };
    if len < 0 {
        let end = n + len;
        return if end < pos { String::new() } else { bytes(pos, end) };
    }
    if pos + len >= n {
        return if pos < n { bytes(pos, n) } else { String::new() };
    }
    bytes(pos, pos + len)
}

/// Removes the shortest (or longest) prefix matching the glob `pattern`.
fn trim_prefix(v: &str, pattern: &str, longest: bool) -> String {
    // candidate prefixes from the longest down, never the empty one, as Flux tries them
    let mut ends: Vec<usize> = v.char_indices().map(|(i, _)| i).skip(1).collect();
    ends.push(v.len());
    ends.retain(|e| *e > 0);
    ends.reverse();
    let mut found = None;
    for end in ends {
        match glob(pattern, &v[..end]) {
            Err(()) => return v.to_string(),
            Ok(true) if longest => return v[end..].to_string(),
            Ok(true) => found = Some(end),
            Ok(false) => {}
        }
    }
    found.map_or(v.to_string(), |end| v[end..].to_string())
}

/// Removes the shortest (or longest) suffix matching the glob `pattern`, by matching the reversed
/// pattern against the reversed value, as Flux does.
fn trim_suffix(v: &str, pattern: &str, longest: bool) -> String {
    let rev = |s: &str| s.chars().rev().collect::<String>();
    rev(&trim_prefix(&rev(v), &rev(pattern), longest))
}

/// Go's `path.Match`: `*` any run of characters but `/`, `?` one, `[...]` a class (`^` negates,
/// `a-z` ranges), `\` escapes. A malformed pattern is an error.
fn glob(pattern: &str, name: &str) -> Result<bool, ()> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> Result<bool, ()> {
    let Some((&c, rest)) = p.split_first() else {
        return Ok(n.is_empty());
    };
    match c {
        '*' => {
            for skip in 0..=n.len() {
                if glob_at(rest, &n[skip..])? {
                    return Ok(true);
                }
                if n.get(skip) == Some(&'/') {
                    break;
                }
            }
            Ok(false)
        }
        '?' => match n.split_first() {
            Some((&x, tail)) if x != '/' => glob_at(rest, tail),
            _ => Ok(false),
        },
        '[' => {
            let (matched, after) = class(rest, n.first().copied())?;
            match (matched, n.split_first()) {
                (true, Some((_, tail))) => glob_at(after, tail),
                _ => Ok(false),
            }
        }
        '\\' => match (rest.split_first(), n.split_first()) {
            (None, _) => Err(()),
            (Some((&e, prest)), Some((&x, tail))) if e == x => glob_at(prest, tail),
            _ => Ok(false),
        },
        _ => match n.split_first() {
            Some((&x, tail)) if x == c => glob_at(rest, tail),
            _ => Ok(false),
        },
    }
}

/// A `[...]` class after its `[`: whether `c` is in it, and the pattern after its `]`.
fn class(p: &[char], c: Option<char>) -> Result<(bool, &[char]), ()> {
    let (negate, mut p) = match p.split_first() {
        Some(('^', rest)) => (true, rest),
        _ => (false, p),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&lo, rest) = p.split_first().ok_or(())?;
        if lo == ']' && !first {
            p = rest;
            break;
        }
        first = false;
        let (lo, rest) = if lo == '\\' {
            let (&e, r) = rest.split_first().ok_or(())?;
            (e, r)
        } else {
            (lo, rest)
        };
        let (hi, rest) = match rest {
            ['-', hi, r @ ..] if *hi != ']' => (*hi, r),
            _ => (lo, rest),
        };
        if c.is_some_and(|c| lo <= c && c <= hi) {
            matched = true;
        }
        p = rest;
    }
    Ok((c.is_some_and(|c| c != '/') && matched != negate, p))
}

/// The expression parser: text, `${…}` functions, escapes.
struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        Self {
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    fn parse(mut self) -> Result<Vec<Node>, EvalError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if self.at("${") {
                if !text.is_empty() {
                    nodes.push(Node::Text(std::mem::take(&mut text)));
                }
                self.pos += 2;
                nodes.push(self.func()?);
            } else if self.at("$$") {
                text.push('$');
                self.pos += 2;
            } else {
                text.push(c);
                self.pos += 1;
            }
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        Ok(nodes)
    }

    /// Reads a run of characters `accept`ed (given the index in the run), at least one.
    fn run(&mut self, accept: impl Fn(char, usize) -> bool) -> Option<String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !accept(c, self.pos - start) {
                break;
            }
            self.pos += 1;
        }
        (self.pos > start).then(|| self.chars[start..self.pos].iter().collect())
    }

    fn ident(&mut self) -> Option<String> {
        self.run(|c, _| c.is_alphanumeric() || c == '_')
    }

    fn close(&mut self) -> Result<(), EvalError> {
        if self.peek() == Some('}') {
            self.pos += 1;
            Ok(())
        } else {
            Err(EvalError::BadSubstitution)
        }
    }

    /// A function argument: a nested `${…}` or text of `accept`ed characters up to the next `${`
    /// (`escapes`: `$$`, `\/` and `\\` stand for their second character).
    fn param(&mut self, accept: impl Fn(char) -> bool, escapes: bool) -> Result<Node, EvalError> {
        if self.at("${") {
            self.pos += 2;
            return self.func();
        }
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if self.at("${") {
                break;
            }
            let escaped = escapes && (self.at("$$") || self.at("\\/") || self.at("\\\\"));
            if escaped {
                self.pos += 1;
                text.push(self.peek().expect("escaped character"));
                self.pos += 1;
                continue;
            }
            if !accept(c) {
                break;
            }
            text.push(c);
            self.pos += 1;
        }
        if text.is_empty() {
            return Err(EvalError::FuncSubstitution);
        }
        Ok(Node::Text(text))
    }

    /// After `${`.
    fn func(&mut self) -> Result<Node, EvalError> {
        if self.peek() == Some('#') {
            self.pos += 1;
            let param = self.ident().ok_or(EvalError::BadSubstitution)?;
            self.close()?;
            return Ok(Node::Func {
                param,
                op: "#".into(),
                args: vec![],
            });
        }
        let param = self.ident().ok_or(EvalError::VariableName)?;
        let func = |op: &str, args| Node::Func {
            param: param.clone(),
            op: op.into(),
            args,
        };
        match self.peek() {
            Some(':') if matches!(self.chars.get(self.pos + 1), Some(&('=' | '-' | '?' | '+'))) => {
                let op: String = self.chars[self.pos..self.pos + 2].iter().collect();
                self.pos += 2;
                Ok(func(&op, self.defaults()?))
            }
            Some('=') => {
                self.pos += 1;
                Ok(func("=", self.defaults()?))
            }
            Some(':') => {
                self.pos += 1;
                let mut args = vec![self.param(|c| c != ':' && c != '}', false)?];
                match self.peek() {
                    Some('}') => {
                        self.pos += 1;
                        return Ok(func(":", args));
                    }
                    Some(':') => {
                        self.run(|c, _| c == ':');
                    }
                    _ => return Err(EvalError::BadSubstitution),
                }
                args.push(self.param(|c| c != '}', false)?);
                self.close()?;
                Ok(func(":", args))
            }
            Some(',' | '^') => {
                let op = self
                    .run(|c, i| (c == ',' || c == '^') && i < 2)
                    .unwrap_or_default();
                self.close()?;
                Ok(func(&op, vec![]))
            }
            Some('/') => {
                let op = self
                    .run(|c, i| i == 0 && c == '/' || i == 1 && matches!(c, '/' | '#' | '%'))
                    .unwrap_or_default();
                let mut args = vec![if self.peek() == Some('/') {
                    Node::Text(String::new())
                } else {
                    self.param(|c| c != '/', true)?
                }];
                if self.run(|c, _| c == '/').is_none() {
                    return Err(EvalError::BadSubstitution);
                }
                if self.peek() != Some('}') {
                    args.push(self.param(|c| c != '}', true)?);
                }
                self.close()?;
                Ok(func(&op, args))
            }
            Some(c @ ('#' | '%')) => {
                let op = self.run(|x, i| x == c && i < 2).unwrap_or_default();
                let arg = self.param(|c| c != '}', false)?;
                self.close()?;
                Ok(func(&op, vec![arg]))
            }
            Some('}') => {
                self.pos += 1;
                Ok(func("", vec![]))
            }
            _ => Err(EvalError::MissingClosingBrace),
        }
    }

    /// The arguments of a default operator, up to `}`.
    fn defaults(&mut self) -> Result<Vec<Node>, EvalError> {
        let mut args = Vec::new();
        loop {
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(args);
            }
            args.push(self.param(|c| c != '}', false)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [
            ("NAME", "web"),
            ("EMPTY", ""),
            ("PATH_", "a/b/c.tar.gz"),
            ("FILE", "c.tar.gz"),
            ("N", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn ev(text: &str) -> Result<String, EvalError> {
        let vars = vars();
        eval(text, &|n| vars.get(n).map(String::as_str), false)
    }

    fn strict(text: &str) -> Result<String, EvalError> {
        let vars = vars();
        eval(text, &|n| vars.get(n).map(String::as_str), true)
    }

    #[test]
    fn expressions_evaluate_as_flux_envsubst() {
        for (text, want) in [
            ("${NAME}", "web"),
            ("app-${NAME}-x", "app-web-x"),
            ("${MISSING}", ""),
            ("${MISSING:=fallback}", "fallback"),
            ("${EMPTY:=fallback}", "fallback"),
            ("${EMPTY:-a}${NAME:+b}", "aweb"),
            ("${MISSING=x}", "x"),
            ("${MISSING:=${NAME}-1}", "web-1"),
            ("$${NAME}", "${NAME}"),
            ("pa$$word", "pa$word"),
            ("$NAME and $", "$NAME and $"),
            ("${#NAME}", "3"),
            ("${NAME^}", "Web"),
            ("${NAME^^}", "WEB"),
            ("${NAME,,}", "web"),
            ("${NAME:1}", "eb"),
            ("${NAME:1:1}", "e"),
            ("${NAME:-2}", "web"),
            ("${NAME:1:-1}", "e"),
            ("${NAME:0:-1}", "we"),
            ("${PATH_/\\//-}", "a-b/c.tar.gz"),
            ("${PATH_//\\//-}", "a-b-c.tar.gz"),
            ("${PATH_/#a/z}", "z/b/c.tar.gz"),
            ("${PATH_/%gz/bz}", "a/b/c.tar.bz"),
            ("${FILE#*.}", "tar.gz"),
            ("${FILE##*.}", "gz"),
            ("${PATH_##*.}", "a/b/c.tar.gz"),
            ("${PATH_%.*}", "a/b/c.tar"),
            ("${PATH_%%.*}", "a/b/c"),
            ("${PATH_#*/}", "b/c.tar.gz"),
        ] {
            assert_eq!(ev(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn malformed_expressions_are_errors() {
        assert_eq!(ev("${NAME"), Err(EvalError::MissingClosingBrace));
        assert_eq!(ev("${}"), Err(EvalError::VariableName));
        assert_eq!(ev("${NAME:=x"), Err(EvalError::FuncSubstitution));
        assert_eq!(ev("${NAME-x}"), Err(EvalError::MissingClosingBrace));
    }

    #[test]
    fn strict_mode_refuses_missing_variables_unless_defaulted() {
        assert_eq!(strict("${MISSING}"), Err(EvalError::NotSet("MISSING".into())));
        assert_eq!(strict("${MISSING^^}"), Err(EvalError::NotSet("MISSING".into())));
        assert_eq!(strict("${MISSING:=d}").as_deref(), Ok("d"));
        assert_eq!(strict("${EMPTY}").as_deref(), Ok(""));
        assert_eq!(
            EvalError::NotSet("X".into()).to_string(),
            "variable not set (strict mode): \"X\""
        );
    }

    #[test]
    fn plain_scalars_are_retyped_quoted_ones_stay_strings() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${NAME}\n  labels:\n    v: ${N}\n\
                    spec:\n  replicas: ${N}\n  paused: ${OFF:=off}\n  version: \"${N}\"\n  list: ${L:=[1, b]}\n  \
                    text: ${NAME} ${N}\n  none: ${EMPTY}\n  ${NAME}-key: x\n";
        let mut objects = crate::yaml::parse_stream(text, "t").unwrap();
        substitute_all(&mut objects, &vars(), false).unwrap();
        assert_eq!(
            objects[0],
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "labels": {"v": "3"}},
                   "spec": {"replicas": 3, "paused": false, "version": "3", "list": [1, "b"],
                            "text": "web 3", "none": null, "web-key": "x"}})
        );
    }

    #[test]
    fn opted_out_objects_and_empty_variables_change_nothing_but_lose_their_marks() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    \
                    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  x: ${N}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  x: ${N}\n";
        let mut objects = crate::yaml::parse_stream(text, "t").unwrap();
        let mut again = objects.clone();
        substitute_all(&mut objects, &vars(), false).unwrap();
        assert_eq!(objects[0]["data"]["x"], json!("${N}"));
        assert_eq!(objects[1]["data"]["x"], json!(3));
        substitute_all(&mut again, &BTreeMap::new(), true).unwrap();
        assert_eq!(again[1]["data"]["x"], json!("${N}"));
    }

    #[test]
    fn failures_name_the_object_and_the_problem_as_flux_does() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  x: ${MISSING}\n";
        let mut objects = crate::yaml::parse_stream(text, "t").unwrap();
        assert_eq!(
            substitute_all(&mut objects, &vars(), true).unwrap_err(),
            "post build failed for 'ConfigMap.v1.[noGrp]/cfg': envsubst error: variable substitution \
             failed: variable not set (strict mode): \"MISSING\""
        );
        let bad: BTreeMap<String, String> = [("1X".to_string(), "v".to_string())].into();
        assert_eq!(
            substitute_all(&mut objects, &bad, false).unwrap_err(),
            "post build failed for 'ConfigMap.v1.[noGrp]/cfg': envsubst error: '1X' var name is invalid, \
             must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
        );
    }

    #[test]
    fn globs_match_as_go_path_match() {
        assert_eq!(glob("a*c", "abc"), Ok(true));
        assert_eq!(glob("a*c", "a/c"), Ok(false));
        assert_eq!(glob("[a-c]x", "bx"), Ok(true));
        assert_eq!(glob("[^a-c]x", "bx"), Ok(false));
        assert_eq!(glob("\\*", "*"), Ok(true));
        assert_eq!(glob("[a", "a"), Err(()));
    }
}
