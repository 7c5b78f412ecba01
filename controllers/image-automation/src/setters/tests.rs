use super::*;

fn setters() -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    policy_setters(&mut s, "apps", "web", "ghcr.io/org/web", "1.0.1", None);
    policy_setters(
        &mut s,
        "apps",
        "api",
        "ghcr.io/org/api",
        "2.1",
        Some("sha256:abc"),
    );
    s
}

const DEPLOYMENT: &str = r#"# a comment that stays
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # odd spacing stays
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: web
          image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "apps:web"}
          args: ["--flag",   'x']
        - name: api
          image: "ghcr.io/org/api:2.0"  #   {"$imagepolicy": "apps:api:name"}
          env:
            - {name: TAG, value: "2.0"}
            - name: VERSION
              value: '2.0' # {"$imagepolicy": "apps:api:tag"}
            - name: DIGEST
              value: none # {"$imagepolicy": "apps:api:digest"}
            - name: PLAIN_TAG
              value: 2.0 # {"$imagepolicy": "apps:api:tag"}
"#;

#[test]
fn only_the_marked_scalars_change_and_every_other_byte_stays() {
    let mut result = Result::default();
    let out = update_text("deploy.yaml", DEPLOYMENT, &setters(), &mut result)
        .unwrap()
        .expect("changed");
    let want = DEPLOYMENT
        .replace("image: ghcr.io/org/web:1.0.0 #", "image: ghcr.io/org/web:1.0.1 #")
        .replace(
            r#"image: "ghcr.io/org/api:2.0"  #"#,
            r#"image: "ghcr.io/org/api"  #"#,
        )
        .replace("value: '2.0' #", "value: '2.1' #")
        .replace("value: none #", "value: sha256:abc #")
        // a plain 2.1 would read as a number: quoted, as kyaml quotes it
        .replace("value: 2.0 #", "value: \"2.1\" #");
    assert_eq!(out, want);
    let object = ObjectId {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: "web".into(),
        namespace: "apps".into(),
    };
    let changes = &result.files["deploy.yaml"][&object];
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.old_value.as_str(), c.new_value.as_str(), c.setter.as_str()))
            .collect::<Vec<_>>(),
        [
            ("ghcr.io/org/web:1.0.0", "ghcr.io/org/web:1.0.1", "apps:web"),
            ("ghcr.io/org/api:2.0", "ghcr.io/org/api", "apps:api:name"),
            ("2.0", "2.1", "apps:api:tag"),
            ("none", "sha256:abc", "apps:api:digest"),
            ("2.0", "2.1", "apps:api:tag"),
        ]
    );
    assert!(result.unknown.is_empty());
}

#[test]
fn the_image_setter_with_a_digest_pins_it() {
    let text = "image: ghcr.io/org/api:2.0 # {\"$imagepolicy\": \"apps:api\"}\n";
    let mut result = Result::default();
    let out = update_text("f.yaml", text, &setters(), &mut result)
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        "image: ghcr.io/org/api:2.1@sha256:abc # {\"$imagepolicy\": \"apps:api\"}\n"
    );
}

#[test]
fn an_up_to_date_file_is_not_rewritten() {
    let text = "image: ghcr.io/org/web:1.0.1 # {\"$imagepolicy\": \"apps:web\"}\n";
    let mut result = Result::default();
    assert_eq!(
        update_text("f.yaml", text, &setters(), &mut result).unwrap(),
        None
    );
    assert!(result.files.is_empty());
}

#[test]
fn markers_that_are_not_line_comments_of_values_do_nothing() {
    let text = r#"# {"$imagepolicy": "apps:web"}
key: # {"$imagepolicy": "apps:web"}
  nested: 1
script: |
  image: old # {"$imagepolicy": "apps:web"}
list: [a, b] # {"$imagepolicy": "apps:web"}
notjson: x # {"$imagepolicy": apps:web}
wrongkey: x # {"$otherpolicy": "apps:web"}
nospace: x#{"$imagepolicy":"apps:web"}
"#;
    let mut result = Result::default();
    assert_eq!(
        update_text("f.yaml", text, &setters(), &mut result).unwrap(),
        None
    );
    assert!(result.unknown.is_empty());
}

#[test]
fn markers_naming_unknown_setters_are_reported_with_their_line() {
    let text = "a: 1\nimage: x:1 # {\"$imagepolicy\": \"apps:gone\"}\ntag: y # {\"$imagepolicy\": \"apps:web:digest\"}\n";
    let mut result = Result::default();
    assert_eq!(
        update_text("f.yaml", text, &setters(), &mut result).unwrap(),
        None
    );
    // a digest marker of a policy that reflects no digest is left alone, not unknown
    assert_eq!(
        result.unknown,
        [Unknown {
            path: "f.yaml".into(),
            line: 2,
            setter: "apps:gone".into()
        }]
    );
}

#[test]
fn several_documents_each_name_their_object() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata:\n  image: a:1 # {\"$imagepolicy\": \"apps:web\"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\ndata:\n  image: b:1 # {\"$imagepolicy\": \"apps:web\"}\n";
    let mut result = Result::default();
    let out = update_text("f.yaml", text, &setters(), &mut result)
        .unwrap()
        .unwrap();
    assert_eq!(out.matches("ghcr.io/org/web:1.0.1").count(), 2);
    let names: Vec<&str> = result.files["f.yaml"].keys().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
}

#[test]
fn a_file_with_markers_that_is_not_yaml_is_refused() {
    let text = "image: [unclosed # {\"$imagepolicy\": \"apps:web\"}\n  - : :\n";
    let mut result = Result::default();
    let err = update_text("bad.yaml", text, &setters(), &mut result).unwrap_err();
    assert!(matches!(err, Error::NotYaml { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("bad.yaml holds an image policy marker but is not valid YAML")
    );
}

#[test]
fn plain_values_are_quoted_only_when_they_would_read_as_something_else() {
    for v in ["1.0.1", "ghcr.io/x/y:1.2", "v1.2", "latest", "-rc1", "main-abc"] {
        assert!(plain_safe(v), "{v}");
    }
    for v in [
        "1.2", "12", "0x1f", "1e3", "yes", "on", "null", "~", "", "a: b", "- x", "*x", "1:30", "a #b", "0755",
    ] {
        assert!(!plain_safe(v), "{v}");
    }
    assert_eq!(render("it's", TScalarStyle::SingleQuoted), "'it''s'");
    assert_eq!(render("a\"b", TScalarStyle::DoubleQuoted), "\"a\\\"b\"");
}

#[test]
fn the_tree_is_walked_within_the_update_path_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("apps/web")).unwrap();
    std::fs::create_dir_all(root.join("other")).unwrap();
    let marked = "image: ghcr.io/org/web:1.0.0 # {\"$imagepolicy\": \"apps:web\"}\n";
    std::fs::write(root.join("apps/web/deploy.yaml"), marked).unwrap();
    std::fs::write(root.join("apps/web/notes.txt"), marked).unwrap();
    std::fs::write(root.join("other/deploy.yml"), marked).unwrap();
    std::os::unix::fs::symlink(root.join("other/deploy.yml"), root.join("apps/link.yaml")).unwrap();
    let result = update_tree(root, "./apps", &setters()).unwrap();
    assert_eq!(result.files.keys().collect::<Vec<_>>(), ["web/deploy.yaml"]);
    assert!(
        std::fs::read_to_string(root.join("apps/web/deploy.yaml"))
            .unwrap()
            .contains("1.0.1")
    );
    assert!(
        std::fs::read_to_string(root.join("apps/web/notes.txt"))
            .unwrap()
            .contains("1.0.0")
    );
    assert!(
        std::fs::read_to_string(root.join("other/deploy.yml"))
            .unwrap()
            .contains("1.0.0")
    );
    assert_eq!(
        update_tree(root, "../x", &setters()).unwrap_err(),
        Error::OutsidePath("../x".into())
    );
    // the whole repository
    let result = update_tree(root, "", &setters()).unwrap();
    assert_eq!(result.files.keys().collect::<Vec<_>>(), ["other/deploy.yml"]);
}
