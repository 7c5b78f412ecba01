//! Go's `text/template` language, as Flux's image-automation-controller renders commit messages with it
//! (`template.New(..).Funcs(sprig.HermeticTxtFuncMap()).Parse(..)`): text and `{{ }}` actions with
//! `{{-`/`-}}` trimming and comments, pipelines, variables (`$x :=`, `$x =`, `$k, $v :=`), field chains
//! on structs and string-keyed maps, `if`/`else if`/`else`, `range` (lists, maps in key order, integers,
//! `else`, `break`, `continue`), `with`, parenthesised pipelines, Go's builtin functions and the Sprig
//! functions commit messages use (strings, lists, dicts, regular expressions, math, encodings, paths).
//!
//! Data is given as a [`Value`]; a struct names its Go type so errors read as Go's do ("can't evaluate
//! field Updated in type source.TemplateData").
//!
//! ```
//! use driftless_template::{Template, Value};
//! let data = Value::Struct(driftless_template::Struct::new("main.Data", [("Name", Value::from("web"))]));
//! let t = Template::parse("hello {{ .Name | upper }}").unwrap();
//! assert_eq!(t.render(&data).unwrap(), "hello WEB");
//! ```

mod exec;
mod format;
mod funcs;
mod lex;
mod parse;

use std::cmp::Ordering;

pub use parse::Template;

/// A template that could not be parsed or run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The template text is not a valid template.
    #[error("template: {0}")]
    Parse(String),
    /// Running the template failed.
    #[error("template: {0}")]
    Exec(String),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value a template reads: Go's values as templates see them.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// nil, and what a missing map key gives.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A slice.
    List(Vec<Value>),
    /// A map; its entries are kept in Go's printing and `range` order (sorted by key).
    Map(Vec<(Value, Value)>),
    /// A struct, with its fields (and zero-argument methods) by name.
    Struct(Struct),
}

/// A Go struct value.
#[derive(Clone, Debug, PartialEq)]
pub struct Struct {
    /// Its Go type, for error messages (`update.Result`).
    pub type_name: String,
    /// Fields and zero-argument methods, by name, in declaration order.
    pub fields: Vec<(String, Value)>,
    /// What `String()` returns, when the type has that method (`types.NamespacedName` prints
    /// `namespace/name`).
    pub display: Option<String>,
}

impl Struct {
    /// A struct of type `type_name` with `fields`.
    pub fn new<K: Into<String>>(type_name: &str, fields: impl IntoIterator<Item = (K, Value)>) -> Self {
        Self {
            type_name: type_name.to_string(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            display: None,
        }
    }

    /// The same struct, printed as `display` (its `String()` method).
    pub fn with_display(mut self, display: impl Into<String>) -> Self {
        self.display = Some(display.into());
        self
    }

    fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl Value {
    /// A map from its entries, sorted into Go's order.
    pub fn map(entries: impl IntoIterator<Item = (Value, Value)>) -> Value {
        let mut entries: Vec<(Value, Value)> = entries.into_iter().collect();
        entries.sort_by(|a, b| compare(&a.0, &b.0));
        entries.dedup_by(|b, a| compare(&a.0, &b.0) == Ordering::Equal);
        Value::Map(entries)
    }

    /// Go's truth: false, 0, nil and empty strings, slices and maps are false; structs are true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// Go's type name, for messages.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "nil".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Struct(s) => s.type_name.clone(),
        }
    }

    /// The value as `fmt.Sprint` prints it (`%v`).
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out, true);
        out
    }

    fn write_go(&self, out: &mut String, top: bool) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&format::float_v(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out, false);
                }
                out.push(']');
            }
            Value::Map(entries) => {
                out.push_str("map[");
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    k.write_go(out, false);
                    out.push(':');
                    v.write_go(out, false);
                }
                out.push(']');
            }
            Value::Struct(s) => match &s.display {
                Some(d) => out.push_str(d),
                None => {
                    let _ = top;
                    out.push('{');
                    for (i, (_, v)) in s.fields.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        v.write_go(out, false);
                    }
                    out.push('}');
                }
            },
        }
    }
}

/// Go's order of map keys (`internal/fmtsort`): numbers by value, strings by bytes, booleans false
/// first, structs field by field.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::Int(x), Value::Float(y)) => (*x as f64).partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::Float(x), Value::Int(y)) => x.partial_cmp(&(*y as f64)).unwrap_or(Ordering::Equal),
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Struct(x), Value::Struct(y)) => {
            for ((_, xv), (_, yv)) in x.fields.iter().zip(&y.fields) {
                match compare(xv, yv) {
                    Ordering::Equal => continue,
                    o => return o,
                }
            }
            x.fields.len().cmp(&y.fields.len())
        }
        (Value::List(x), Value::List(y)) => {
            for (xv, yv) in x.iter().zip(y) {
                match compare(xv, yv) {
                    Ordering::Equal => continue,
                    o => return o,
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Nil => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::Str(_) => 3,
        Value::List(_) => 4,
        Value::Map(_) => 5,
        Value::Struct(_) => 6,
    }
}

#[cfg(test)]
mod tests;
