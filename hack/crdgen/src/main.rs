//! Writes one YAML file per CRD into `crds/` (or the directory given as the first argument) from
//! `crates/api`, and removes generated files of kinds that no longer exist.
//! `crates/api/tests` fails when `crds/` is stale: run `cargo run -p driftless-crdgen` after changing a type.

use std::{fs, path::PathBuf};

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds"));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let crds = driftless_api::crds::crds();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".yaml")
            && name != "kustomization.yaml"
            && !crds.iter().any(|c| c.file_name == name)
        {
            fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
        }
    }
    for crd in &crds {
        let path = dir.join(&crd.file_name);
        fs::write(&path, driftless_api::crds::to_yaml(&crd.crd))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    fs::write(
        dir.join("kustomization.yaml"),
        driftless_api::crds::kustomization(&crds),
    )
    .with_context(|| format!("writing {}", dir.join("kustomization.yaml").display()))?;
    println!("wrote {} CRDs to {}", crds.len(), dir.display());
    Ok(())
}
