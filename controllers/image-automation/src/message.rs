//! The commit message: `spec.git.commit.messageTemplate` (Flux's default when empty) rendered with
//! Flux's template data — `.AutomationObject` (`namespace/name`), `.Changed` (`.FileChanges`,
//! `.Changes`, `.Objects`) and `.Values` (`messageTemplateValues`). `.Changed.ImageResult`, which Flux's
//! v1 API dropped, is still given as v1beta2 gave it (`.Files`, `.Images`, `.Objects` of the full-image
//! changes), so templates written for it keep working; `.Updated`, gone since v1beta1, fails as in Flux.

use std::collections::BTreeMap;

use driftless_template::{Struct, Template, Value};

use crate::setters::{Change, ObjectId, Result as Changes};

/// Flux's default commit message.
pub const DEFAULT_TEMPLATE: &str = "Update from image update automation";

/// A template that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The template does not parse.
    #[error("unable to create commit message template from spec: {0}")]
    Parse(String),
    /// The template uses a field Flux removed.
    #[error(
        "template uses removed '{0}' field. Please use '.Changed' instead. See: https://fluxcd.io/flux/components/image/imageupdateautomations/#message-template"
    )]
    RemovedField(String),
    /// Running the template failed.
    #[error("failed to run template from spec: {0}")]
    Exec(String),
}

fn object(o: &ObjectId) -> Value {
    Value::Struct(Struct::new(
        "update.ObjectIdentifier",
        [
            ("APIVersion", Value::from(o.api_version.as_str())),
            ("Kind", Value::from(o.kind.as_str())),
            ("Name", Value::from(o.name.as_str())),
            ("Namespace", Value::from(o.namespace.as_str())),
        ],
    ))
}

fn change(c: &Change) -> Value {
    Value::Struct(Struct::new(
        "update.Change",
        [
            ("OldValue", Value::from(c.old_value.as_str())),
            ("NewValue", Value::from(c.new_value.as_str())),
            ("Setter", Value::from(c.setter.as_str())),
        ],
    ))
}

/// An image reference as v1beta2's `ImageRef` printed and described it.
fn image_ref(new_value: &str, setter: &str) -> Value {
    let (name, identifier) = match new_value.rsplit_once('@') {
        Some((n, d)) => (
            n.rsplit_once(':').map_or(n, |(n, _)| n).to_string(),
            d.to_string(),
        ),
        None => match new_value.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((n, t)) => (n.to_string(), t.to_string()),
            None => (new_value.to_string(), "latest".to_string()),
        },
    };
    let (registry, repository) = match name.split_once('/') {
        Some((r, rest)) if r.contains(['.', ':']) || r == "localhost" => (r.to_string(), rest.to_string()),
        _ => ("index.docker.io".to_string(), name.clone()),
    };
    let (pns, pname) = setter.split_once(':').unwrap_or(("", setter));
    Value::Struct(
        Struct::new(
            "update.imageRef",
            [
                ("Identifier", Value::from(identifier)),
                ("Name", Value::from(name)),
                ("Registry", Value::from(registry)),
                ("Repository", Value::from(repository)),
                (
                    "Policy",
                    Value::Struct(
                        Struct::new(
                            "types.NamespacedName",
                            [("Namespace", Value::from(pns)), ("Name", Value::from(pname))],
                        )
                        .with_display(format!("{pns}/{pname}")),
                    ),
                ),
            ],
        )
        .with_display(new_value),
    )
}

/// The template data of a run.
pub fn data(namespace: &str, name: &str, changes: &Changes, values: &BTreeMap<String, String>) -> Value {
    let mut all: Vec<Value> = Vec::new();
    let mut objects: BTreeMap<&ObjectId, Vec<Value>> = BTreeMap::new();
    let mut images: Vec<Value> = Vec::new();
    let mut image_objects: BTreeMap<&ObjectId, Vec<Value>> = BTreeMap::new();
    let mut image_files: Vec<(Value, Value)> = Vec::new();
    let mut seen: Vec<&Change> = Vec::new();
    let mut file_changes: Vec<(Value, Value)> = Vec::new();
    for (file, by_object) in &changes.files {
        let mut file_images: Vec<(Value, Value)> = Vec::new();
        for (obj, list) in by_object {
            for c in list {
                if !seen.contains(&c) {
                    seen.push(c);
                    all.push(change(c));
                }
                objects.entry(obj).or_default().push(change(c));
                // NB: only full-image setters made v1beta2's image results
                if c.setter.matches(':').count() == 1 {
                    let r = image_ref(&c.new_value, &c.setter);
                    images.push(r.clone());
                    image_objects.entry(obj).or_default().push(r.clone());
                }
            }
            let refs: Vec<Value> = list
                .iter()
                .filter(|c| c.setter.matches(':').count() == 1)
                .map(|c| image_ref(&c.new_value, &c.setter))
                .collect();
            if !refs.is_empty() {
                file_images.push((object(obj), Value::List(refs)));
            }
        }
        file_changes.push((
            Value::from(file.as_str()),
            Value::map(
                by_object
                    .iter()
                    .map(|(o, l)| (object(o), Value::List(l.iter().map(change).collect()))),
            ),
        ));
        if !file_images.is_empty() {
            image_files.push((
                Value::from(file.as_str()),
                Value::Struct(Struct::new(
                    "update.FileResult",
                    [("Objects", Value::map(file_images))],
                )),
            ));
        }
    }
    let image_result = Struct::new(
        "update.Result",
        [
            ("Files", Value::map(image_files)),
            ("Images", Value::List(images)),
            (
                "Objects",
                Value::map(
                    image_objects
                        .into_iter()
                        .map(|(o, l)| (object(o), Value::List(l))),
                ),
            ),
        ],
    );
    let changed = Struct::new(
        "update.Result",
        [
            ("FileChanges", Value::map(file_changes)),
            ("Changes", Value::List(all)),
            (
                "Objects",
                Value::map(objects.into_iter().map(|(o, l)| (object(o), Value::List(l)))),
            ),
            ("ImageResult", Value::Struct(image_result)),
        ],
    );
    Value::Struct(Struct::new(
        "source.TemplateData",
        [
            (
                "AutomationObject",
                Value::Struct(
                    Struct::new(
                        "types.NamespacedName",
                        [("Namespace", Value::from(namespace)), ("Name", Value::from(name))],
                    )
                    .with_display(format!("{namespace}/{name}")),
                ),
            ),
            ("Changed", Value::Struct(changed)),
            (
                "Values",
                Value::map(
                    values
                        .iter()
                        .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str()))),
                ),
            ),
        ],
    ))
}

/// Parses `template` (the default when empty), so a bad one is refused before anything is cloned.
pub fn parse(template: Option<&str>) -> Result<Template, Error> {
    let src = template.filter(|t| !t.is_empty()).unwrap_or(DEFAULT_TEMPLATE);
    Template::parse(src).map_err(|e| Error::Parse(e.to_string()))
}

/// The commit message of `data`.
pub fn render(template: &Template, data: &Value) -> Result<String, Error> {
    template.render(data).map_err(|e| {
        let text = e.to_string();
        if text.contains("can't evaluate field Updated in type source.TemplateData") {
            Error::RemovedField(".Updated".into())
        } else {
            Error::Exec(text)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setters::policy_setters;

    fn changes() -> Changes {
        let mut setters = BTreeMap::new();
        policy_setters(&mut setters, "apps", "web", "ghcr.io/org/web", "1.0.1", None);
        let mut result = Changes::default();
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  image: ghcr.io/org/web:1.0.0 # {\"$imagepolicy\": \"apps:web\"}\n  tag: 1.0.0 # {\"$imagepolicy\": \"apps:web:tag\"}\n";
        crate::setters::update_text("deploy/web.yaml", text, &setters, &mut result).unwrap();
        result
    }

    fn message(template: &str) -> Result<String, Error> {
        let values = BTreeMap::from([("cluster".to_string(), "prod".to_string())]);
        render(
            &parse(Some(template))?,
            &data("flux-system", "auto", &changes(), &values),
        )
    }

    #[test]
    fn the_default_and_fluxs_documented_templates_render() {
        assert_eq!(message("").unwrap(), DEFAULT_TEMPLATE);
        let t = "Automation: {{ .AutomationObject }} for {{ .Values.cluster }}\n{{ range $f, $_ := .Changed.FileChanges -}}\n- {{ $f }}\n{{ end -}}\n{{ range $o, $cs := .Changed.Objects -}}\n{{ $o.Kind }} {{ $o.Name }}:\n{{- range $_, $c := $cs }} {{ $c.OldValue }} -> {{ $c.NewValue }};{{ end }}\n{{ end -}}";
        assert_eq!(
            message(t).unwrap(),
            "Automation: flux-system/auto for prod\n- deploy/web.yaml\nDeployment web: ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.0.1; 1.0.0 -> 1.0.1;\n"
        );
        assert_eq!(
            message("{{ range .Changed.Changes }}{{ .Setter }} {{ end }}").unwrap(),
            "apps:web apps:web:tag "
        );
    }

    #[test]
    fn v1beta2_image_results_still_render() {
        assert_eq!(
            message("{{ range .Changed.ImageResult.Images }}{{ . }} ({{ .Identifier }} of {{ .Repository }} at {{ .Registry }}, {{ .Policy.Name }}){{ end }}").unwrap(),
            "ghcr.io/org/web:1.0.1 (1.0.1 of org/web at ghcr.io, web)"
        );
        assert_eq!(
            message("{{ range $f, $r := .Changed.ImageResult.Files }}{{ $f }}: {{ range $o, $i := $r.Objects }}{{ $o.Name }}={{ index $i 0 }}{{ end }}{{ end }}").unwrap(),
            "deploy/web.yaml: web=ghcr.io/org/web:1.0.1"
        );
    }

    #[test]
    fn bad_templates_fail_with_fluxs_words() {
        assert!(matches!(message("{{ if }"), Err(Error::Parse(_))));
        assert_eq!(
            message("{{ .Updated.Images }}"),
            Err(Error::RemovedField(".Updated".into()))
        );
        let err = message("{{ .Changed.Nope }}").unwrap_err();
        assert!(
            err.to_string().starts_with("failed to run template from spec:"),
            "{err}"
        );
    }
}
