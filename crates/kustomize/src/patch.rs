//! Patches: strategic merge (maps merged, lists of known kinds merged by their merge key, `$patch`
//! directives, `null` deletes) and JSON 6902 (add, remove, replace, move, copy, test), with kustomize's
//! target selection (group, version, kind, name and namespace as anchored regexes, label and annotation
//! selectors).

use serde_json::{Map, Value};

use crate::{Object, order::field};

/// List fields merged by a key, as Kubernetes' strategic merge patch does for the built-in types.
fn merge_key(list_field: &str) -> Option<&'static str> {
    Some(match list_field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "hostAliases"
        | "topologySpreadConstraints"
        | "readinessGates"
        | "resourceClaims" => {
            if list_field == "hostAliases" {
                "ip"
            } else if list_field == "topologySpreadConstraints" {
                "topologyKey"
            } else if list_field == "readinessGates" {
                "conditionType"
            } else {
                "name"
            }
        }
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        // container ports merge by containerPort; Service ports by port (resolved in merge_list)
        "ports" => "containerPort",
        "envFrom" => return None,
        _ => return None,
    })
}

/// The API groups of Kubernetes' own kinds, whose lists merge by the keys of their schema.
const BUILTIN_GROUPS: &[&str] = &[
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "extensions",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "apiregistration.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "internal.apiserver.k8s.io",
    "storagemigration.k8s.io",
];

/// A custom OpenAPI schema (a kustomization's `openapi.path`, kustomize's format: `definitions` whose
/// kinds carry `x-kubernetes-group-version-kind`): the merge keys of the kinds it defines.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    definitions: Map<String, Value>,
}

impl Schema {
    /// Reads a schema document (JSON or YAML already parsed).
    pub fn parse(doc: &Value) -> Result<Self, String> {
        let definitions = doc
            .get("definitions")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| "the OpenAPI schema has no 'definitions'".to_string())?;
        Ok(Self { definitions })
    }

    /// The definition of `o`'s group, version and kind.
    fn root(&self, o: &Value) -> Option<&Value> {
        let api = o.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
        self.definitions.values().find(|d| {
            d.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|g| {
                    let at = |k: &str| g.get(k).and_then(Value::as_str).unwrap_or_default();
                    at("group") == group && at("version") == version && at("kind") == kind
                })
        })
    }

    /// `node` with its `$ref` followed.
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        let mut node = node;
        for _ in 0..32 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => match self.definitions.get(r.trim_start_matches("#/definitions/")) {
                    Some(target) => node = target,
                    None => break,
                },
                None => break,
            }
        }
        node
    }
}

/// How lists merge where a patch is: by Kubernetes' keys for its own kinds, by a custom schema's, or
/// replaced (a kind kustomize has no schema for).
#[derive(Clone, Copy)]
enum Lists<'a> {
    Builtin,
    Schema(&'a Schema, Option<&'a Value>),
    Replace,
}

impl<'a> Lists<'a> {
    /// Where `key` of a map here is.
    fn field(self, key: &str) -> Self {
        match self {
            Lists::Schema(schema, Some(node)) => {
                let child = schema
                    .resolve(node)
                    .get("properties")
                    .and_then(|p| p.get(key))
                    .map(|c| schema.resolve(c));
                Lists::Schema(schema, child)
            }
            other => other,
        }
    }

    /// Where the items of a list here are.
    fn items(self) -> Self {
        match self {
            Lists::Schema(schema, Some(node)) => {
                Lists::Schema(schema, node.get("items").map(|i| schema.resolve(i)))
            }
            other => other,
        }
    }
}

/// Applies a strategic merge patch to `target`.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    strategic_merge_with(target, patch, None);
}

/// Applies a strategic merge patch to `target`, its lists merged as kustomize merges them: by
/// Kubernetes' merge keys for its own kinds, by `schema`'s for the kinds it defines, replaced otherwise.
pub fn strategic_merge_with(target: &mut Value, patch: &Value, schema: Option<&Schema>) {
    let api = target
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
    let builtin = target.get("kind").is_none()
        || if group.is_empty() {
            version == "v1"
        } else {
            BUILTIN_GROUPS.contains(&group)
        };
    let lists = match schema.and_then(|s| s.root(target).map(|r| (s, r))) {
        Some((schema, root)) => Lists::Schema(schema, Some(root)),
        None if builtin => Lists::Builtin,
        None => Lists::Replace,
    };
    merge_value(target, patch, None, lists);
}

fn merge_value(target: &mut Value, patch: &Value, list_field: Option<&str>, lists: Lists) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_map(t, p, lists),
        (t @ Value::Array(_), Value::Array(p)) => merge_list(t, p, list_field, lists),
        (t, p) => *t = p.clone(),
    }
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>, lists: Lists) {
    if patch.get("$patch").and_then(|v| v.as_str()) == Some("replace") {
        let mut replaced = patch.clone();
        replaced.remove("$patch");
        *target = replaced;
        return;
    }
    for (key, value) in patch {
        if key == "$patch" || key.starts_with("$setElementOrder") || key.starts_with("$retainKeys") {
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match target.get_mut(key) {
            Some(existing) if !existing.is_null() => {
                merge_value(existing, value, Some(key), lists.field(key))
            }
            _ => {
                let mut fresh = strip_directives(value);
                if let Value::Object(m) = &mut fresh {
                    m.remove("$patch");
                }
                target.insert(key.clone(), fresh);
            }
        }
    }
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").and_then(|p| p.as_str()) != Some("delete"))
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_list(target: &mut Value, patch: &[Value], list_field: Option<&str>, lists: Lists) {
    let mut key = match lists {
        Lists::Builtin => list_field.and_then(merge_key),
        Lists::Replace => None,
        Lists::Schema(schema, node) => node.map(|n| schema.resolve(n)).and_then(|n| {
            let strategy = n
                .get("x-kubernetes-patch-strategy")
                .and_then(Value::as_str)
                .unwrap_or_default();
            strategy
                .split(',')
                .any(|s| s == "merge")
                .then(|| n.get("x-kubernetes-patch-merge-key").and_then(Value::as_str))
                .flatten()
        }),
    };
    if matches!(lists, Lists::Builtin)
        && list_field == Some("ports")
        && !patch
            .iter()
            .chain(target.as_array().into_iter().flatten())
            .any(|p| p.get("containerPort").is_some())
    {
        key = Some("port");
    }
    let (Some(key), Some(items)) = (key, target.as_array_mut()) else {
        // lists without a merge key are replaced
        *target = Value::Array(patch.iter().map(strip_directives).collect());
        return;
    };
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(|v| v.as_str()) == Some("replace"))
    {
        *target = Value::Array(
            patch
                .iter()
                .filter(|p| p.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        );
        return;
    }
    // kustomize merges with kyaml's ListIncreaseDirection "prepend": the patch's elements come first, in
    // its order (merged into the element of the same key where there is one), then the target's others
    let mut merged = Vec::with_capacity(items.len() + patch.len());
    let mut taken = vec![false; items.len()];
    for p in patch {
        let Some(id) = p.get(key) else {
            merged.push(strip_directives(p));
            continue;
        };
        let position = items.iter().position(|i| i.get(key) == Some(id));
        let delete = p.get("$patch").and_then(|v| v.as_str()) == Some("delete");
        if let Some(i) = position {
            taken[i] = true;
        }
        match (position, delete) {
            (_, true) => {}
            (Some(i), false) => {
                let mut item = items[i].clone();
                merge_value(&mut item, p, None, lists.items());
                merged.push(item);
            }
            (None, false) => merged.push(strip_directives(p)),
        }
    }
    merged.extend(
        items
            .drain(..)
            .zip(taken)
            .filter(|(_, taken)| !taken)
            .map(|(item, _)| item),
    );
    *items = merged;
}

/// A JSON 6902 patch that cannot be applied.
#[derive(Debug)]
pub struct PatchError(pub String);

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn parent_and_key<'a>(root: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), PatchError> {
    let tokens: Vec<String> = path.split('/').skip(1).map(unescape).collect();
    let (last, parents) = tokens
        .split_last()
        .ok_or_else(|| PatchError(format!("invalid path '{path}'")))?;
    let mut cur = root;
    for t in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError(format!("path '{path}' does not exist")))?;
    }
    Ok((cur, last.clone()))
}

fn add(root: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    if path.is_empty() {
        *root = value;
        return Ok(());
    }
    let (parent, key) = parent_and_key(root, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(key, value);
        }
        Value::Array(a) if key == "-" => a.push(value),
        Value::Array(a) => {
            let i: usize = key
                .parse()
                .map_err(|_| PatchError(format!("invalid index in '{path}'")))?;
            if i > a.len() {
                return Err(PatchError(format!("index out of range in '{path}'")));
            }
            a.insert(i, value);
        }
        _ => return Err(PatchError(format!("cannot add at '{path}'"))),
    }
    Ok(())
}

fn remove(root: &mut Value, path: &str) -> Result<Value, PatchError> {
    let (parent, key) = parent_and_key(root, path)?;
    match parent {
        Value::Object(m) => m.remove(&key),
        Value::Array(a) => key
            .parse::<usize>()
            .ok()
            .filter(|i| *i < a.len())
            .map(|i| a.remove(i)),
        _ => None,
    }
    .ok_or_else(|| PatchError(format!("path '{path}' does not exist")))
}

/// Applies JSON 6902 operations to `target`.
pub fn json6902(target: &mut Value, ops: &[Value]) -> Result<(), PatchError> {
    for op in ops {
        let kind = op
            .get("op")
            .and_then(|v| v.as_str())
            .ok_or_else(|| PatchError("an operation has no 'op'".into()))?;
        let path = op
            .get("path")
            .and_then(|v| v.as_str())
            .ok_or_else(|| PatchError(format!("'{kind}' has no 'path'")))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError(format!("'{kind}' at '{path}' has no 'value'")))
        };
        let from = || {
            op.get("from")
                .and_then(|v| v.as_str())
                .ok_or_else(|| PatchError(format!("'{kind}' at '{path}' has no 'from'")))
        };
        match kind {
            "add" => add(target, path, value()?)?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, value()?)?;
            }
            "move" => {
                let v = remove(target, from()?)?;
                add(target, path, v)?;
            }
            "copy" => {
                let v = target.pointer(from()?).cloned().ok_or_else(|| {
                    PatchError(format!("path '{}' does not exist", from().unwrap_or_default()))
                })?;
                add(target, path, v)?;
            }
            "test" => {
                if target.pointer(path) != Some(&value()?) {
                    return Err(PatchError(format!("test failed at '{path}'")));
                }
            }
            other => return Err(PatchError(format!("unknown operation '{other}'"))),
        }
    }
    Ok(())
}

/// Whether a label-style selector (`a=b,c!=d,e`) matches `labels`.
fn selector_matches(selector: &str, labels: Option<&Map<String, Value>>) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(|v| v.as_str());
            if let Some((k, v)) = term.split_once("!=") {
                get(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                get(k.trim()) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                get(k.trim()).is_none()
            } else {
                get(term).is_some()
            }
        })
}

fn regex_matches(pattern: &str, value: &str) -> bool {
    // kustomize anchors target regexes; plain names (the common case) compare directly
    if !pattern.contains(['*', '.', '[', '(', '|', '+', '?', '^', '$']) {
        return pattern == value;
    }
    simple_regex(
        &format!("^{}$", pattern.trim_start_matches('^').trim_end_matches('$')),
        value,
    )
}

/// A small anchored regex matcher for target names: literals, `.`, `*`, `.*`, `+`, `?`, `|` alternation.
fn simple_regex(pattern: &str, value: &str) -> bool {
    let body = &pattern[1..pattern.len() - 1];
    body.split('|').any(|alt| glob(alt.as_bytes(), value.as_bytes()))
}

fn glob(p: &[u8], v: &[u8]) -> bool {
    match p {
        [] => v.is_empty(),
        [c, b'*', rest @ ..] => {
            (glob(rest, v)) || (!v.is_empty() && (*c == b'.' || v[0] == *c) && glob(p, &v[1..]))
        }
        [c, b'+', rest @ ..] => {
            !v.is_empty() && (*c == b'.' || v[0] == *c) && glob(&[&[*c, b'*'][..], rest].concat(), &v[1..])
        }
        [c, b'?', rest @ ..] => {
            glob(rest, v) || (!v.is_empty() && (*c == b'.' || v[0] == *c) && glob(rest, &v[1..]))
        }
        [b'\\', c, rest @ ..] => !v.is_empty() && v[0] == *c && glob(rest, &v[1..]),
        [b'.', rest @ ..] => !v.is_empty() && glob(rest, &v[1..]),
        [c, rest @ ..] => !v.is_empty() && v[0] == *c && glob(rest, &v[1..]),
    }
}

/// A patch target (kustomize's selector).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// API group.
    pub group: Option<String>,
    /// API version.
    pub version: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Name (anchored regex).
    pub name: Option<String>,
    /// Namespace (anchored regex).
    pub namespace: Option<String>,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Annotation selector.
    pub annotation_selector: Option<String>,
}

impl Target {
    /// Whether `o` is selected.
    pub fn matches(&self, o: &Object) -> bool {
        self.matches_named(o, field(o, &["metadata", "name"]))
    }

    /// Whether `o`, known by `names` as well (as written, at earlier levels), is selected: the name
    /// selector matches any of its names, as kustomize's ResMap.Select matches any of its ids.
    pub fn selects<'a>(&self, o: &Object, mut names: impl Iterator<Item = &'a str>) -> bool {
        self.matches(o) || names.any(|n| self.matches_named(o, n))
    }

    fn matches_named(&self, o: &Object, name: &str) -> bool {
        let api_version = field(o, &["apiVersion"]);
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| regex_matches(w, have));
        ok(&self.group, group)
            && ok(&self.version, version)
            && ok(&self.kind, field(o, &["kind"]))
            && ok(&self.name, name)
            && ok(&self.namespace, field(o, &["metadata", "namespace"]))
            && self.label_selector.as_deref().is_none_or(|s| {
                selector_matches(s, o.pointer("/metadata/labels").and_then(|l| l.as_object()))
            })
            && self.annotation_selector.as_deref().is_none_or(|s| {
                selector_matches(s, o.pointer("/metadata/annotations").and_then(|l| l.as_object()))
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn containers_merge_by_name_and_directives_apply() {
        let mut d = json!({"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}, {"name": "b", "image": "y"}]}});
        strategic_merge(
            &mut d,
            &json!({"spec": {"containers": [
                {"name": "a", "env": [{"name": "B", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "z"}
            ]}}),
        );
        // kubectl kustomize's order (kyaml's "prepend"): the patch's elements first, in its order, then
        // the target's others
        assert_eq!(
            d,
            json!({"spec": {"containers": [
                {"name": "a", "image": "x", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
                {"name": "c", "image": "z"}
            ]}})
        );
    }

    #[test]
    fn json6902_operations() {
        let mut d = json!({"a": {"b": [1, 2]}, "c": 1});
        json6902(
            &mut d,
            &[
                json!({"op": "add", "path": "/a/b/-", "value": 3}),
                json!({"op": "replace", "path": "/c", "value": 2}),
                json!({"op": "copy", "from": "/c", "path": "/d"}),
                json!({"op": "move", "from": "/d", "path": "/e"}),
                json!({"op": "remove", "path": "/a/b/0"}),
                json!({"op": "test", "path": "/e", "value": 2}),
            ],
        )
        .unwrap();
        assert_eq!(d, json!({"a": {"b": [2, 3]}, "c": 2, "e": 2}));
        assert!(json6902(&mut d, &[json!({"op": "remove", "path": "/nope"})]).is_err());
    }

    #[test]
    fn targets_match_regexes_and_selectors() {
        let o = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-1", "labels": {"app": "web", "tier": "fe"}}});
        let t = |v: serde_json::Value| serde_json::from_value::<Target>(v).unwrap().matches(&o);
        assert!(t(json!({"kind": "Deployment", "name": "web-.*"})));
        assert!(!t(json!({"kind": "Deployment", "name": "web"})));
        assert!(t(json!({"group": "apps", "labelSelector": "app=web,tier!=be"})));
        assert!(!t(json!({"labelSelector": "app=api"})));
    }
}
