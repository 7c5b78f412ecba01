//! YAML that Kubernetes' tools read back as it was meant. `serde_yaml` writes YAML 1.2, where `yes`,
//! `on`, `n` or `Off` are plain strings, so it leaves them unquoted; kubectl, helm and everything built
//! on `sigs.k8s.io/yaml` read YAML 1.1, where they are booleans — an annotation `"yes"` would come back
//! as `true` and be refused, a chart value `"on"` would flip type. [`to_string`] writes what `serde_yaml`
//! writes with those scalars double-quoted, as `kubectl kustomize` (go-yaml v3) prints them.
#![warn(missing_docs)]

/// The plain scalars YAML 1.1 reads as booleans that YAML 1.2 reads as strings.
const OLD_BOOLS: [&str; 16] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
];

/// `value` as YAML (one document, no `---`), with YAML 1.1's booleans quoted.
pub fn to_string<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(value).map(|text| quote_old_scalars(&text))
}

/// Whether a plain scalar would be read differently by a YAML 1.1 reader: its booleans, and integers
/// with `_` separators.
fn ambiguous(scalar: &str) -> bool {
    OLD_BOOLS.contains(&scalar)
        || (scalar.contains('_')
            && scalar
                .trim_start_matches(['-', '+'])
                .starts_with(|c: char| c.is_ascii_digit())
            && scalar
                .trim_start_matches(['-', '+'])
                .chars()
                .all(|c| c.is_ascii_digit() || c == '_'))
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Quotes ambiguous plain scalars in `serde_yaml`'s output: a line's value after `: ` or `- `, and a
/// mapping key; the content of block scalars (`|`, `|-`, `|+`) is left as it is.
fn quote_old_scalars(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    // the indentation of the line that opened the block scalar being read
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        if let Some(indent) = block {
            if body.trim().is_empty() || indentation(body) > indent {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        if body.ends_with(" |")
            || body.ends_with(" |-")
            || body.ends_with(" |+")
            || body == "|-"
            || body == "|"
        {
            block = Some(indentation(body));
            out.push_str(line);
            continue;
        }
        out.push_str(&quote_line(body));
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn quote_line(body: &str) -> String {
    let indent = indentation(body);
    let (lead, mut rest) = body.split_at(indent);
    let mut result = lead.to_string();
    // sequence entries: `- - value`
    while let Some(r) = rest.strip_prefix("- ") {
        result.push_str("- ");
        rest = r;
    }
    if ambiguous(rest) {
        return format!("{result}\"{rest}\"");
    }
    // a plain key (serde_yaml quotes any key holding `: `)
    if let Some((key, value)) = rest.split_once(':')
        && (value.is_empty() || value.starts_with(' '))
        && ambiguous(key)
    {
        result.push_str(&format!("\"{key}\""));
        rest = &rest[key.len()..];
    }
    match rest.rsplit_once(": ") {
        Some((head, value)) if ambiguous(value) => format!("{result}{head}: \"{value}\""),
        _ => format!("{result}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn yaml_1_1_booleans_are_quoted_wherever_they_are_plain() {
        let v = json!({
            "a": "yes", "b": "on", "c": "Off", "d": "n", "e": "true", "f": true, "g": "yesterday",
            "list": ["y", "no", "ok", ["ON"]],
            "items": [{"name": "No", "v": 1}],
            "yes": "key", "n": {"x": "N"},
            "text": "line: yes\nno\n", "n_1": "1_000", "id": "a_b", "neg": "-2_0",
            "quoted key: yes": "on",
        });
        let out = to_string(&v).unwrap();
        let expected = r#"a: "yes"
b: "on"
c: "Off"
d: "n"
e: 'true'
f: true
g: yesterday
id: a_b
items:
- name: "No"
  v: 1
list:
- "y"
- "no"
- ok
- - "ON"
"n":
  x: "N"
n_1: "1_000"
neg: "-2_0"
'quoted key: yes': "on"
text: |
  line: yes
  no
"yes": key
"#;
        assert_eq!(out, expected);
        // and any YAML reader reads back the same strings
        let back: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(back, v);
    }
}
