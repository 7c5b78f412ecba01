//! `vars` (deprecated by kustomize, still in use): `$(NAME)` in kustomize's var-reference fields (container
//! args, command, env values and mount paths, NFS servers, Ingress hosts and TLS secrets, Service ports,
//! labels and annotations) is replaced by a field of a named object, once the whole build is done.

use serde::Deserialize;
use serde_json::Value;

use crate::transform::Res;

/// One var.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Var {
    /// The name used as `$(NAME)`.
    pub name: String,
    /// The object the value comes from.
    pub objref: ObjRef,
    /// The field (default `metadata.name`).
    #[serde(default)]
    pub fieldref: Option<FieldRef>,
}

/// The object of a var.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjRef {
    /// Kind.
    pub kind: String,
    /// Name, as written (before prefixes and hashes).
    pub name: String,
    /// apiVersion.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// The field of a var.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldRef {
    /// `metadata.name`, `spec.ports[0].port`, …
    #[serde(default)]
    pub fieldpath: Option<String>,
}

/// Where a kind's vars may be used (kustomize's varReference defaults), as JSON-pointer-like paths with
/// `*` for every list item.
fn fields(kind: &str) -> Vec<String> {
    let pod = |base: &str| {
        let mut out = Vec::new();
        for c in ["containers", "initContainers"] {
            for f in ["args/*", "command/*", "env/*/value", "volumeMounts/*/mountPath"] {
                out.push(format!("{base}/{c}/*/{f}"));
            }
        }
        out.push(format!("{base}/volumes/*/nfs/server"));
        out
    };
    let mut out = match kind {
        "Pod" => pod("spec"),
        "Deployment" | "DaemonSet" | "Job" | "ReplicaSet" | "StatefulSet" => pod("spec/template/spec"),
        "CronJob" => pod("spec/jobTemplate/spec/template/spec"),
        "Ingress" => vec![
            "spec/rules/*/host".into(),
            "spec/tls/*/hosts/*".into(),
            "spec/tls/*/secretName".into(),
        ],
        "Service" => vec!["spec/ports/*/port".into(), "spec/ports/*/targetPort".into()],
        "PersistentVolume" => vec!["spec/nfs/server".into()],
        _ => Vec::new(),
    };
    if kind == "StatefulSet" {
        out.push("spec/volumeClaimTemplates/*/spec/nfs/server".into());
    }
    out.push("metadata/labels/**".into());
    out.push("metadata/annotations/**".into());
    out
}

/// Visits the strings at `path` (`*` every item, `**` every value of a map).
fn visit(v: &mut Value, path: &[&str], f: &mut dyn FnMut(&mut Value)) {
    let Some((first, rest)) = path.split_first() else {
        f(v);
        return;
    };
    match *first {
        "*" => {
            if let Some(items) = v.as_array_mut() {
                for item in items {
                    visit(item, rest, f);
                }
            }
        }
        "**" => {
            if let Some(map) = v.as_object_mut() {
                for item in map.values_mut() {
                    visit(item, rest, f);
                }
            }
        }
        key => {
            if let Some(next) = v.get_mut(key) {
                visit(next, rest, f);
            }
        }
    }
}

/// Whether `r` is the object `var` names: its kind, a name it is known by, its apiVersion and
/// namespace when the var gives them.
fn names(var: &Var, r: &Res) -> bool {
    let o = &var.objref;
    r.obj.get("kind").and_then(Value::as_str) == Some(o.kind.as_str())
        && r.known_as(&o.name)
        && o.api_version
            .as_deref()
            .is_none_or(|a| r.obj.get("apiVersion").and_then(Value::as_str) == Some(a))
        && o.namespace.as_deref().is_none_or(|ns| {
            r.obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                == ns
        })
}

/// Binds the vars a level declares to the one object of that level each names (kustomize's MergeVars), so
/// two levels may declare vars naming objects of the same original name; more than one is an error.
pub fn bind(vars: &[Var], resources: &mut [Res]) -> Result<(), String> {
    for var in vars {
        let found: Vec<usize> = (0..resources.len())
            .filter(|&i| names(var, &resources[i]))
            .collect();
        match found.as_slice() {
            [one] => resources[*one].vars.push(var.name.clone()),
            [] => {}
            _ => return Err(format!("var '{}' matches more than one object", var.name)),
        }
    }
    Ok(())
}

/// The value of a var from the objects: the one it was bound to, else the one it names.
fn resolve(var: &Var, resources: &[Res]) -> Result<Value, String> {
    let o = &var.objref;
    if let Some(bound) = resources.iter().find(|r| r.vars.contains(&var.name)) {
        return field_of(var, bound);
    }
    let found: Vec<&Res> = resources
        .iter()
        .filter(|r| r.original_name == o.name && names(var, r))
        .collect();
    let res = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "var '{}' cannot be mapped to a field in the set of known resources",
                var.name
            ));
        }
        _ => return Err(format!("var '{}' matches more than one object", var.name)),
    };
    field_of(var, res)
}

/// The var's field of `res`.
fn field_of(var: &Var, res: &Res) -> Result<Value, String> {
    let path = var
        .fieldref
        .as_ref()
        .and_then(|f| f.fieldpath.clone())
        .unwrap_or_else(|| "metadata.name".into());
    let pointer = format!("/{}", path.replace(['[', '.'], "/").replace(']', ""));
    res.obj
        .pointer(&pointer.replace("//", "/"))
        .cloned()
        .ok_or_else(|| format!("var '{}': field '{path}' not found", var.name))
}

/// Replaces `$(NAME)` in the var-reference fields of every object: kustomize's, and `custom` (a
/// `configurations` file's `varReference`).
pub fn apply(
    vars: &[Var],
    resources: &mut [Res],
    custom: &[crate::plugins::FieldSpec],
) -> Result<(), String> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values = Vec::new();
    for v in vars {
        if values.iter().any(|(n, _): &(String, Value)| *n == v.name) {
            return Err(format!("var '{}' already encountered", v.name));
        }
        values.push((v.name.clone(), resolve(v, resources)?));
    }
    for r in resources.iter_mut() {
        let kind = r
            .obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let replace = |v: &mut Value| replace_vars(v, &values);
        let specs: Vec<_> = custom.iter().filter(|s| s.matches(&r.obj)).collect();
        for spec in specs {
            crate::plugins::visit_path(&mut r.obj, &spec.path, false, &mut |v| match v {
                Value::Object(map) => map.values_mut().for_each(replace),
                other => replace(other),
            });
        }
        for path in fields(&kind) {
            let segs: Vec<&str> = path.split('/').collect();
            visit(&mut r.obj, &segs, &mut |v| replace_vars(v, &values));
        }
    }
    Ok(())
}

/// `$(NAME)` in the string `v` replaced by the values of the vars; a string that is exactly one var
/// takes its value as it is (a number stays a number).
fn replace_vars(v: &mut Value, values: &[(String, Value)]) {
    let Some(s) = v.as_str() else { return };
    if !s.contains("$(") {
        return;
    }
    if let Some((_, value)) = values.iter().find(|(n, _)| s == format!("$({n})")) {
        *v = value.clone();
        return;
    }
    let mut out = s.to_string();
    for (n, value) in values {
        let text = match value {
            Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        out = out.replace(&format!("$({n})"), &text);
    }
    *v = Value::String(out);
}
