//! The file work of a chart build, blocking (run on the blocking pool): a downloaded chart checked,
//! values files merged, a chart re-packaged with its new version and values, a chart directory from a
//! Git or Bucket artifact packaged with its vendored and `file://` dependencies.

use std::path::{Path, PathBuf};

pub use crate::common::secure_rel;

use driftless_helm::chart::{
    self, Limits, Mapping, Metadata, Package, merge_values, parse_values, set_version, values_yaml,
};

use super::{BuildReason, Error};

/// `values.yaml`, the file values files are merged over.
pub const VALUES_FILE: &str = "values.yaml";

/// The values files that change the defaults: none when the list is just `values.yaml`, as Flux reads it.
pub fn effective_values_files(files: &[String]) -> &[String] {
    if files.len() == 1 && clean(&files[0]) == VALUES_FILE {
        &[]
    } else {
        files
    }
}

fn clean(p: &str) -> String {
    secure_rel(p)
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Merges `files` in order: `values.yaml` is the chart's own values (`read_chart_file`), any other
/// path read by `read` (`None`: missing, skipped when `ignore_missing`). Returns the merged values
/// and the files that were merged.
pub fn merge_files(
    files: &[String],
    ignore_missing: bool,
    mut read: impl FnMut(&str) -> Result<Option<Vec<u8>>, Error>,
    missing_message: impl Fn(&str) -> String,
) -> Result<(Mapping, Vec<String>), Error> {
    let mut merged = Mapping::new();
    let mut used = Vec::new();
    for p in files {
        let Some(bytes) = read(p)? else {
            if ignore_missing {
                continue;
            }
            return Err(Error::build(BuildReason::ValuesFiles, missing_message(p)));
        };
        let values = parse_values(&bytes, p).map_err(|e| Error::build(BuildReason::ValuesFiles, e))?;
        merge_values(&mut merged, values);
        used.push(p.clone());
    }
    Ok((merged, used))
}

/// Re-packages the chart archive at `archive` with `version` and, when `values` is given, those
/// default values, into `out`; `work` holds the unpacked files.
pub fn repackage(
    archive: &Path,
    work: &Path,
    version: &str,
    values_files: &[String],
    ignore_missing: bool,
    limits: Limits,
    out: &Path,
) -> Result<Vec<String>, Error> {
    let package_error = |e: chart::Error| {
        Error::build(
            BuildReason::Package,
            format!("failed to load downloaded chart: {e}"),
        )
    };
    let (top, mut package) = chart::unpack_archive(archive, work, limits).map_err(package_error)?;
    let mut used = Vec::new();
    if !values_files.is_empty() {
        let (merged, files) = merge_files(
            values_files,
            ignore_missing,
            |p| {
                package
                    .read(&clean(p))
                    .map_err(|e| Error::build(BuildReason::ValuesFiles, e))
            },
            |p| format!("failed to merge chart values: no values file found at path '{p}'"),
        )?;
        package.replaced.insert(VALUES_FILE.into(), to_yaml(&merged)?);
        used = files;
    }
    let chart_yaml = package
        .read("Chart.yaml")
        .map_err(package_error)?
        .ok_or_else(|| Error::build(BuildReason::Package, "Chart.yaml file is missing"))?;
    package.replaced.insert(
        "Chart.yaml".into(),
        set_version(&chart_yaml, version).map_err(|e| Error::build(BuildReason::Package, e))?,
    );
    package
        .write(&top, out)
        .map_err(|e| Error::build(BuildReason::Package, format!("failed to package chart: {e}")))?;
    Ok(used)
}

fn to_yaml(values: &Mapping) -> Result<Vec<u8>, Error> {
    values_yaml(values).map_err(|e| Error::build(BuildReason::ValuesFiles, e))
}

/// A chart directory to package: where it is, its metadata.
pub struct LocalChart {
    /// The directory.
    pub dir: PathBuf,
    /// Its `Chart.yaml`.
    pub metadata: Metadata,
}

/// Reads the chart directory `dir` (`Chart.yaml` required and valid).
pub fn local_chart(dir: &Path) -> Result<LocalChart, Error> {
    let reference = |m: String| Error::build(BuildReason::Reference, m);
    let bytes = std::fs::read(dir.join("Chart.yaml"))
        .map_err(|e| reference(format!("failed to load chart metadata: Chart.yaml: {e}")))?;
    let metadata = Metadata::parse(&bytes).map_err(|e| reference(e.to_string()))?;
    metadata.validate().map_err(|e| reference(e.to_string()))?;
    Ok(LocalChart {
        dir: dir.to_path_buf(),
        metadata,
    })
}

/// Packages `chart` at `version` into `out`, the defaults replaced by `values` when given, with the
/// `extra` files (dependencies: `charts/<name>-<version>.tgz` → bytes) added. Returns nothing but errors.
pub fn package_dir(
    chart: &LocalChart,
    version: &str,
    values: Option<&Mapping>,
    extra: Vec<(String, Vec<u8>)>,
    limits: Limits,
    out: &Path,
) -> Result<(), Error> {
    let mut package =
        Package::from_dir(&chart.dir, limits).map_err(|e| Error::build(BuildReason::Package, e))?;
    if let Some(values) = values {
        package.replaced.insert(VALUES_FILE.into(), to_yaml(values)?);
    }
    let chart_yaml = package
        .read("Chart.yaml")
        .map_err(|e| Error::build(BuildReason::Package, e))?
        .unwrap_or_default();
    package.replaced.insert(
        "Chart.yaml".into(),
        set_version(&chart_yaml, version).map_err(|e| Error::build(BuildReason::Package, e))?,
    );
    for (path, bytes) in extra {
        package.replaced.insert(path, bytes);
    }
    package
        .write(&chart.metadata.name, out)
        .map_err(|e| Error::build(BuildReason::Package, format!("failed to package chart: {e}")))
}

/// Whether `chart` vendors the dependency `name` (`charts/<name>/` or `charts/<name>-*.tgz`).
pub fn vendored(chart: &Path, name: &str) -> bool {
    let charts = chart.join("charts");
    if charts.join(name).join("Chart.yaml").is_file() {
        return true;
    }
    std::fs::read_dir(&charts).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let f = e.file_name().to_string_lossy().to_string();
            f.starts_with(&format!("{name}-")) && f.ends_with(".tgz")
        })
    })
}

/// Packages the `file://` dependency at `path` (relative to `chart`, inside `root`) as
/// `charts/<name>-<version>.tgz`.
pub fn file_dependency(
    root: &Path,
    chart: &Path,
    path: &str,
    limits: Limits,
) -> Result<(String, Vec<u8>), Error> {
    let dependency = |m: String| Error::build(BuildReason::Dependency, m);
    let rel_chart = chart.strip_prefix(root).unwrap_or(chart);
    let joined = rel_chart.join(path);
    let rel = secure_rel(&joined.to_string_lossy())
        .ok_or_else(|| dependency(format!("dependency path '{path}' leaves the source")))?;
    let dep = local_chart(&root.join(rel)).map_err(|e| dependency(format!("file://{path}: {e}")))?;
    let tmp = tempfile::NamedTempFile::new().map_err(|e| dependency(e.to_string()))?;
    package_dir(
        &dep,
        &dep.metadata.version.clone(),
        None,
        Vec::new(),
        limits,
        tmp.path(),
    )?;
    let bytes = std::fs::read(tmp.path()).map_err(|e| dependency(e.to_string()))?;
    Ok((
        format!("charts/{}-{}.tgz", dep.metadata.name, dep.metadata.version),
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_yaml_alone_changes_nothing_and_paths_stay_inside() {
        assert!(effective_values_files(&["values.yaml".into()]).is_empty());
        assert!(effective_values_files(&["./values.yaml".into()]).is_empty());
        assert_eq!(
            effective_values_files(&["values.yaml".into(), "prod.yaml".into()]).len(),
            2
        );
        assert_eq!(secure_rel("a/../b.yaml"), Some(PathBuf::from("b.yaml")));
        assert_eq!(secure_rel("../b.yaml"), None);
        assert_eq!(secure_rel("/abs/b.yaml"), Some(PathBuf::from("abs/b.yaml")));
    }
}
