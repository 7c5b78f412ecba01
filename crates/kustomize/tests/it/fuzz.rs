//! Property tests (proptest) over YAML parsing, kustomization parsing, patches and variable substitution:
//! any input gives a result or an error, never a panic; YAML written by us reads back the same.
//! `PROPTEST_CASES` sets the number of cases (256 by default; more for a longer fuzzing run).

use std::collections::BTreeMap;

use driftless_kustomize::{Kustomization, patch, substitute, yaml};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// YAML-ish text: the characters that matter to YAML and to `${…}` expressions.
fn yamlish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "([a-z0-9]{0,6}|[:\\-\\[\\]{}\"'#&*!|>%@`,?]|\\$\\{|\\}|\\n {0,4}| ){0,80}",
    )
    .unwrap()
}

/// A JSON value of the shapes Kubernetes objects have.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|i| Value::from(i64::from(i))),
        "[a-z${}:. \\-0-9]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z$]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,6}", value(), 0..6).prop_map(|m| {
        let mut o: Map<String, Value> = m.into_iter().collect();
        o.insert("kind".into(), Value::String("Thing".into()));
        o.insert("apiVersion".into(), Value::String("x/v1".into()));
        Value::Object(o)
    })
}

proptest! {
    #[test]
    fn yaml_text_never_panics(text in yamlish()) {
        let _ = yaml::parse_stream(&text, "fuzz");
        let _ = Kustomization::parse(&text, "fuzz");
    }

    #[test]
    fn yaml_we_write_reads_back_the_same(obj in object()) {
        let text = yaml::write_stream(std::slice::from_ref(&obj));
        let mut back = yaml::parse_stream(&text, "fuzz").unwrap();
        back.iter_mut().for_each(yaml::strip_marks);
        prop_assert_eq!(back, vec![obj]);
    }

    #[test]
    fn strategic_merge_never_panics(mut target in object(), patch_value in object()) {
        patch::strategic_merge(&mut target, &patch_value);
    }

    #[test]
    fn json_patches_never_panic(
        mut target in object(),
        ops in prop::collection::vec(
            ("add|remove|replace|move|copy|test|bogus", "(/[a-z0-9\\-~]{0,4}){0,4}", "(/[a-z0-9\\-~]{0,4}){0,3}", value()),
            0..4,
        ),
    ) {
        let ops: Vec<Value> = ops
            .into_iter()
            .map(|(op, path, from, value)| serde_json::json!({"op": op, "path": path, "from": from, "value": value}))
            .collect();
        let _ = patch::json6902(&mut target, &ops);
    }

    #[test]
    fn substitution_never_panics(
        text in proptest::string::string_regex("([a-zA-Z_0-9]{0,4}|\\$|\\{|\\}|:|=|-|\\+|\\?|#|%|/|\\^|,|\\\\| ){0,40}").unwrap(),
        strict in any::<bool>(),
    ) {
        let vars: BTreeMap<&str, &str> = [("A", "value/with:stuff"), ("B", ""), ("C_1", "3")].into();
        let _ = substitute::eval(&text, &|n| vars.get(n).copied(), strict);
    }

    #[test]
    fn substituting_objects_never_panics(mut obj in object(), strict in any::<bool>()) {
        let vars: BTreeMap<String, String> = [("A".to_string(), "[1, 2]".to_string()), ("B".into(), "yes".into())].into();
        let _ = substitute::substitute_all(std::slice::from_mut(&mut obj), &vars, strict);
    }
}
