//! Embeds the install manifests: each base of `config/` (the namespace, the CRDs, every controller) built
//! with driftless's own kustomize engine at compile time, so `driftless install` needs nothing beside the
//! binary.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for dir in ["config", "crds"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    for base in [
        "crds",
        "source-controller",
        "kustomize-controller",
        "helm-controller",
        "notification-controller",
        "image-reflector-controller",
        "image-automation-controller",
        "policies",
    ] {
        let objects = driftless_kustomize::build_standalone(
            &root.join("config").join(base),
            driftless_kustomize::LoadRestrictor::None,
        )
        .unwrap_or_else(|e| panic!("building config/{base}: {e}"));
        std::fs::write(
            out.join(format!("{base}.yaml")),
            driftless_kustomize::yaml::write_stream(&objects),
        )
        .expect("writing into OUT_DIR");
    }
    std::fs::copy(
        root.join("config/default/namespace.yaml"),
        out.join("namespace.yaml"),
    )
    .expect("config/default/namespace.yaml");
}
