use crate::{Error, Struct, Template, Value, funcs::adler32};

fn render(src: &str, data: &Value) -> String {
    Template::parse(src)
        .unwrap_or_else(|e| panic!("{src:?}: {e}"))
        .render(data)
        .unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

fn change(old: &str, new: &str, setter: &str) -> Value {
    Value::Struct(Struct::new(
        "update.Change",
        [
            ("OldValue", Value::from(old)),
            ("NewValue", Value::from(new)),
            ("Setter", Value::from(setter)),
        ],
    ))
}

fn object(kind: &str, name: &str) -> Value {
    Value::Struct(Struct::new(
        "update.ObjectIdentifier",
        [
            ("APIVersion", Value::from("apps/v1")),
            ("Kind", Value::from(kind)),
            ("Name", Value::from(name)),
            ("Namespace", Value::from("default")),
        ],
    ))
}

/// The data Flux gives a commit message template, with two files changed.
fn flux_data() -> Value {
    let c1 = change("ghcr.io/x/app:1.0.0", "ghcr.io/x/app:1.0.1", "flux-system:app");
    let c2 = change("5.0.2", "5.0.3", "flux-system:web:tag");
    let objects = Value::map([
        (object("Deployment", "web"), Value::List(vec![c2.clone()])),
        (object("Deployment", "app"), Value::List(vec![c1.clone()])),
    ]);
    let file_changes = Value::map([
        (
            Value::from("deploy/web.yaml"),
            Value::map([(object("Deployment", "web"), Value::List(vec![c2.clone()]))]),
        ),
        (
            Value::from("deploy/app.yaml"),
            Value::map([(object("Deployment", "app"), Value::List(vec![c1.clone()]))]),
        ),
    ]);
    let changed = Struct::new(
        "update.Result",
        [
            ("FileChanges", file_changes),
            ("Changes", Value::List(vec![c1, c2])),
            ("Objects", objects),
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
                        [
                            ("Namespace", Value::from("flux-system")),
                            ("Name", Value::from("auto")),
                        ],
                    )
                    .with_display("flux-system/auto"),
                ),
            ),
            ("Changed", Value::Struct(changed)),
            (
                "Values",
                Value::map([(Value::from("cluster"), Value::from("prod"))]),
            ),
        ],
    ))
}

#[test]
fn fluxs_documented_template_renders_as_go_renders_it() {
    let src = "Automated image update\n\nAutomation name: {{ .AutomationObject }}\n\nFiles:\n{{ range $filename, $_ := .Changed.FileChanges -}}\n- {{ $filename }}\n{{ end -}}\n\nObjects:\n{{ range $resource, $changes := .Changed.Objects -}}\n- {{ $resource.Kind }} {{ $resource.Name }}\n  Changes:\n{{- range $_, $change := $changes }}\n    - {{ $change.OldValue }} -> {{ $change.NewValue }}\n{{ end -}}\n{{ end -}}\n";
    let want = "Automated image update\n\nAutomation name: flux-system/auto\n\nFiles:\n- deploy/app.yaml\n- deploy/web.yaml\nObjects:\n- Deployment app\n  Changes:\n    - ghcr.io/x/app:1.0.0 -> ghcr.io/x/app:1.0.1\n- Deployment web\n  Changes:\n    - 5.0.2 -> 5.0.3\n";
    assert_eq!(render(src, &flux_data()), want);
}

#[test]
fn fluxs_template_with_functions_renders() {
    let src = "{{ range $resource, $changes := .Changed.Objects -}}\n- {{ $resource.Kind | lower }} {{ $resource.Name | lower }}\n{{- range $_, $change := $changes }}\n  {{ if contains \"5.0.3\" $change.NewValue -}}\n    - {{ $change.OldValue }} -> {{ $change.NewValue }}\n  {{ else -}}\n    [skip ci] wrong image\n  {{ end -}}\n{{ end -}}\n{{ end -}}";
    let want = "- deployment app\n  [skip ci] wrong image\n  - deployment web\n  - 5.0.2 -> 5.0.3\n  ";
    assert_eq!(render(src, &flux_data()), want);
}

#[test]
fn print_println_and_values() {
    let d = flux_data();
    assert_eq!(
        render(
            "{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}",
            &d
        ),
        "ghcr.io/x/app:1.0.0 -> ghcr.io/x/app:1.0.1\n5.0.2 -> 5.0.3\n"
    );
    assert_eq!(render("for {{ .Values.cluster }}.", &d), "for prod.");
    assert_eq!(render("[{{ .Values.missing }}]", &d), "[<no value>]");
    assert_eq!(render("{{ len .Changed.Changes }} {{ len .Values }}", &d), "2 1");
}

#[test]
fn removed_fields_fail_with_gos_message() {
    let err = Template::parse("{{ .Updated.Images }}")
        .unwrap()
        .render(&flux_data())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("can't evaluate field Updated in type source.TemplateData"),
        "{err}"
    );
    let err = Template::parse("{{ .Changed.ImageResult }}")
        .unwrap()
        .render(&flux_data())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("can't evaluate field ImageResult in type update.Result"),
        "{err}"
    );
}

#[test]
fn trim_markers_and_comments() {
    let v = Value::Nil;
    assert_eq!(render("a  {{- \"b\" -}}  c", &v), "abc");
    assert_eq!(render("a {{/* gone */}} c", &v), "a  c");
    assert_eq!(render("a {{- /* gone */ -}} c", &v), "ac");
    // NB: "-3" is a number, not a trim marker
    assert_eq!(render("a {{-3}} b", &v), "a -3 b");
}

#[test]
fn conditionals_variables_and_with() {
    let d = Value::map([
        (Value::from("n"), Value::Int(3)),
        (Value::from("s"), Value::from("")),
        (
            Value::from("l"),
            Value::List(vec![Value::from("x"), Value::from("y")]),
        ),
    ]);
    assert_eq!(
        render("{{ if .s }}a{{ else if .n }}b{{ else }}c{{ end }}", &d),
        "b"
    );
    assert_eq!(
        render("{{ with .s }}a{{ else with .n }}{{ . }}{{ end }}", &d),
        "3"
    );
    assert_eq!(
        render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", &d),
        "2"
    );
    assert_eq!(
        render("{{ range $i, $e := .l }}{{ $i }}={{ $e }};{{ end }}", &d),
        "0=x;1=y;"
    );
    assert_eq!(render("{{ range $e := .l }}{{ $e }}{{ end }}", &d), "xy");
    assert_eq!(render("{{ range .missing }}x{{ else }}none{{ end }}", &d), "none");
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}", &d), "012");
    assert_eq!(
        render(
            "{{ range .l }}{{ if eq . \"y\" }}{{ break }}{{ end }}{{ . }}{{ end }}",
            &d
        ),
        "x"
    );
    assert_eq!(
        render(
            "{{ range .l }}{{ if eq . \"x\" }}{{ continue }}{{ end }}{{ . }}{{ end }}",
            &d
        ),
        "y"
    );
    assert_eq!(
        render("{{ and 1 0 2 }} {{ or 0 \"\" 5 }} {{ not .s }}", &d),
        "0 5 true"
    );
    assert_eq!(render("{{ index .l 1 }} {{ (index .l 0) | upper }}", &d), "y X");
    assert_eq!(
        render("{{ if and (gt .n 2) (lt .n 4) (ne .n 5) }}in{{ end }}", &d),
        "in"
    );
}

#[test]
fn printf_follows_go() {
    let v = Value::Nil;
    assert_eq!(
        render(r#"{{ printf "%s-%d-%5s|%-4d|%05d" "a" 7 "b" 3 42 }}"#, &v),
        "a-7-    b|3   |00042"
    );
    assert_eq!(
        render(r#"{{ printf "%q %v %x %.2f %t" "hi" 1.5 255 3.14159 true }}"#, &v),
        "\"hi\" 1.5 ff 3.14 true"
    );
    assert_eq!(render(r#"{{ printf "%d %s" 1 }}"#, &v), "1 %!s(MISSING)");
    assert_eq!(render(r#"{{ printf "%d" "x" }}"#, &v), "%!d(string=x)");
    assert_eq!(
        render(r#"{{ 1000000.0 }} {{ 123456.0 }} {{ 0.5 }}"#, &v),
        "1e+06 123456 0.5"
    );
}

#[test]
fn sprig_functions_take_the_piped_value_last() {
    let v = Value::Nil;
    assert_eq!(render(r#"{{ "a-b-c" | replace "-" "_" }}"#, &v), "a_b_c");
    assert_eq!(
        render(r#"{{ "hello world" | title }} {{ "Hello" | trunc 3 }}"#, &v),
        "Hello World Hel"
    );
    assert_eq!(
        render(
            r#"{{ "  x " | trim }}|{{ "xxaxx" | trimAll "x" }}|{{ "v1.2" | trimPrefix "v" }}"#,
            &v
        ),
        "x|a|1.2"
    );
    assert_eq!(
        render(r#"{{ list "b" "a" "b" | uniq | sortAlpha | join "," }}"#, &v),
        "a,b"
    );
    assert_eq!(render(r#"{{ "a,b" | splitList "," | last }}"#, &v), "b");
    assert_eq!(
        render(r#"{{ default "none" "" }} {{ default "none" "set" }}"#, &v),
        "none set"
    );
    assert_eq!(
        render(r#"{{ regexReplaceAll "[0-9]+" "v12x3" "N" }}"#, &v),
        "vNxN"
    );
    assert_eq!(render(r#"{{ regexFind "[0-9.]+" "app:1.2.3" }}"#, &v), "1.2.3");
    assert_eq!(render(r#"{{ "app:1.2.3" | splitList ":" | first }}"#, &v), "app");
    assert_eq!(
        render(r#"{{ add 1 2 3 }} {{ sub 5 2 }} {{ max 3 9 2 }}"#, &v),
        "6 3 9"
    );
    assert_eq!(
        render(
            r#"{{ $d := dict "a" 1 "b" 2 }}{{ keys $d | join "," }} {{ get $d "b" }} {{ hasKey $d "c" }}"#,
            &v
        ),
        "a,b 2 false"
    );
    assert_eq!(
        render(r#"{{ "abc" | b64enc }} {{ "YWJj" | b64dec }}"#, &v),
        "YWJj abc"
    );
    assert_eq!(render(r#"{{ "x" | sha256sum | trunc 8 }}"#, &v), "2d711642");
    assert_eq!(
        render(
            r#"{{ "deploy/app.yaml" | base }} {{ "deploy/app.yaml" | dir }} {{ "a/b.yaml" | ext }}"#,
            &v
        ),
        "app.yaml deploy .yaml"
    );
    assert_eq!(
        render(r#"{{ "line1\nline2" | indent 2 }}"#, &v),
        "  line1\n  line2"
    );
    assert_eq!(
        render(
            r#"{{ "HelloWorld" | snakecase }} {{ "hello_world" | camelcase }}"#,
            &v
        ),
        "hello_world HelloWorld"
    );
    assert_eq!(
        render(r#"{{ list 1 2 | toJson }} {{ ternary "y" "n" true }}"#, &v),
        "[1,2] y"
    );
    assert_eq!(
        render(r#"{{ quote "a" }} {{ squote "b" }} {{ cat "a" "b" }}"#, &v),
        "\"a\" 'b' a b"
    );
    assert_eq!(
        render(r#"{{ contains "5.0" "5.0.3" }} {{ hasPrefix "v" "v1" }}"#, &v),
        "true true"
    );
}

#[test]
fn maps_range_in_key_order_and_print_as_go() {
    let d = Value::map([
        (Value::from("b"), Value::Int(2)),
        (Value::from("a"), Value::Int(1)),
    ]);
    assert_eq!(
        render("{{ range $k, $v := . }}{{ $k }}{{ $v }}{{ end }}", &d),
        "a1b2"
    );
    assert_eq!(render("{{ . }}", &d), "map[a:1 b:2]");
    assert_eq!(render("{{ list 1 \"a\" }}", &Value::Nil), "[1 a]");
}

#[test]
fn bad_templates_are_refused_with_where() {
    for (src, want) in [
        ("{{ if .x }}", "without {{end}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ .x", "unclosed action"),
        ("{{ nosuch 1 }}", "function \"nosuch\" not defined"),
        ("{{ break }}", "outside {{range}}"),
        ("{{ template \"x\" }}", "not supported"),
        ("{{ \"a }}", "unterminated quoted string"),
    ] {
        match Template::parse(src) {
            Err(Error::Parse(m)) => assert!(m.contains(want), "{src:?}: {m}"),
            other => panic!("{src:?}: {other:?}"),
        }
    }
    let err = Template::parse("{{ $y }}")
        .unwrap()
        .render(&Value::Nil)
        .unwrap_err();
    assert!(err.to_string().contains("undefined variable: $y"), "{err}");
    let err = Template::parse("{{ .a.b }}")
        .unwrap()
        .render(&Value::Nil)
        .unwrap_err();
    assert!(err.to_string().contains("nil pointer"), "{err}");
    let err = Template::parse("{{ range 10000000 }}{{ end }}")
        .unwrap()
        .render(&Value::Nil)
        .unwrap_err();
    assert!(err.to_string().contains("iterations"), "{err}");
}

#[test]
fn adler32_matches_zlib() {
    assert_eq!(adler32(b""), 1);
    assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
}
