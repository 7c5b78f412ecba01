//! HelmChart from a real HTTP chart repository (charts by `helm create`/`helm package`, index by
//! `helm repo index`) and from a Git repository; the stored charts are checked with the real `helm`.

use std::process::Command;

use driftless_api::source::{
    GitRepository, HelmChart, HelmChartSpec, HelmRepository, HelmRepositorySpec,
    LocalHelmChartSourceReference, ReconcileStrategy,
};
use driftless_testkit::{
    git::{GitHttp, RepoRoot},
    helm::{ChartRepo, create_chart, helm},
    tool,
};

use super::{
    Harness, apply, failed_with, fetch_artifact, gitrepository, ready_at, ready_of, start, start_with,
    wait_for,
};

fn chart_spec(kind: &str, source: &str, chart: &str, version: Option<&str>) -> HelmChartSpec {
    HelmChartSpec {
        chart: chart.into(),
        version: version.map(String::from),
        source_ref: LocalHelmChartSourceReference {
            kind: kind.into(),
            name: source.into(),
            ..Default::default()
        },
        interval: "1h".into(),
        ..Default::default()
    }
}

async fn create(h: &Harness, name: &str, spec: HelmChartSpec) {
    apply(h, &HelmChart::new(name, spec)).await;
}

async fn repository(h: &Harness, repo: &ChartRepo) {
    let obj = HelmRepository::new(
        "charts",
        HelmRepositorySpec {
            url: repo.url(),
            interval: Some("1h".into()),
            ..Default::default()
        },
    );
    apply(h, &obj).await;
}

/// Writes the stored chart of `obj` to a file and runs `helm <args> <file>` on it.
async fn helm_on(h: &Harness, obj: &HelmChart, args: &[&str]) -> String {
    let bytes = fetch_artifact(h, obj).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.tgz");
    std::fs::write(&file, bytes).unwrap();
    helm(Command::new(tool("helm")).args(args).arg(&file))
}

#[tokio::test]
async fn a_repository_chart_is_pulled_as_it_is_or_packaged_with_merged_values() {
    let h = start("helm-chart").await;
    let repo = ChartRepo::start(None);
    let old = repo.add_chart("podinfo", "6.5.0", &[]);
    repo.add_chart(
        "podinfo",
        "6.6.0",
        &[("values-prod.yaml", "replicaCount: 3\nextra: {tier: prod}\n")],
    );
    repository(&h, &repo).await;

    create(
        &h,
        "pinned",
        chart_spec("HelmRepository", "charts", "podinfo", Some("6.5.x")),
    )
    .await;
    let obj: HelmChart = ready_at(&h, "pinned", "6.5.0").await;
    assert_eq!(
        ready_of(&obj).unwrap(),
        (
            "True".into(),
            "ChartPullSucceeded".into(),
            "pulled 'podinfo' chart with version '6.5.0'".into()
        )
    );
    let status = obj.status.clone().unwrap();
    assert_eq!(
        status.artifact.as_ref().unwrap().path,
        format!("helmchart/{}/pinned/podinfo-6.5.0.tgz", h.ns.name())
    );
    assert_eq!(status.observed_chart_name.as_deref(), Some("podinfo"));
    assert!(
        status
            .observed_source_artifact_revision
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        fetch_artifact(&h, &obj).await,
        std::fs::read(&old).unwrap(),
        "pulled byte for byte"
    );

    // the latest, packaged with values files merged in order
    let mut spec = chart_spec("HelmRepository", "charts", "podinfo", None);
    spec.values_files = Some(vec!["values.yaml".into(), "values-prod.yaml".into()]);
    create(&h, "prod", spec).await;
    let obj: HelmChart = ready_at(&h, "prod", "6.6.0+1").await;
    assert_eq!(
        ready_of(&obj).unwrap(),
        (
            "True".into(),
            "ChartPackageSucceeded".into(),
            "packaged 'podinfo' chart with version '6.6.0+1' and merged values files [values.yaml values-prod.yaml]".into()
        )
    );
    let values = helm_on(&h, &obj, &["show", "values"]).await;
    assert!(values.contains("replicaCount: 3"), "{values}");
    assert!(values.contains("tier: prod"), "{values}");
    assert!(
        values.contains("repository: nginx"),
        "the chart's own values stay: {values}"
    );
    let manifest = helm_on(&h, &obj, &["template", "release"]).await;
    assert!(
        manifest.contains("replicas: 3"),
        "helm renders the packaged chart: {manifest}"
    );
}

#[tokio::test]
async fn bad_versions_names_values_and_archives_fail_with_fluxs_reasons() {
    let h = start_with("helm-chart-bad", &["--helm-chart-max-size=20000"]).await;
    let repo = ChartRepo::start(None);
    repo.add_chart("podinfo", "6.5.0", &[]);
    repository(&h, &repo).await;
    create(
        &h,
        "chart",
        chart_spec("HelmRepository", "charts", "podinfo", Some("6.5.0")),
    )
    .await;
    let good: HelmChart = ready_at(&h, "chart", "6.5.0").await;
    let artifact = good.status.unwrap().artifact.unwrap();

    create(
        &h,
        "chart",
        chart_spec("HelmRepository", "charts", "podinfo", Some(">=9.0.0")),
    )
    .await;
    let obj: HelmChart = failed_with(&h, "chart", "InvalidChartReference").await;
    assert_eq!(
        ready_of(&obj).unwrap().2,
        "invalid chart reference: failed to get chart version for remote reference: no 'podinfo' chart with version matching '>=9.0.0' found"
    );
    let status = obj.status.unwrap();
    assert_eq!(status.artifact, Some(artifact.clone()), "the last chart stays");
    assert!(
        driftless_runtime::conditions::get(&status.conditions, "Stalled").is_some_and(|c| c.status == "True"),
        "only a spec change helps"
    );

    create(&h, "chart", chart_spec("HelmRepository", "charts", "nginx", None)).await;
    let obj: HelmChart = wait_for(&h, "chart", "a missing chart refused", |o: &HelmChart| {
        ready_of(o).is_some_and(|r| r.2.ends_with("no chart name found"))
    })
    .await;
    assert_eq!(ready_of(&obj).unwrap().1, "InvalidChartReference");

    let mut missing = chart_spec("HelmRepository", "charts", "podinfo", None);
    missing.values_files = Some(vec!["values-nope.yaml".into()]);
    create(&h, "chart", missing).await;
    let obj: HelmChart = failed_with(&h, "chart", "ValuesFilesError").await;
    let message = ready_of(&obj).unwrap().2;
    assert!(
        message.contains("no values file found at path 'values-nope.yaml'"),
        "{message}"
    );
    let conditions = obj.status.unwrap().conditions;
    assert!(
        driftless_runtime::conditions::get(&conditions, "BuildFailed").is_some_and(|c| c.status == "True")
    );

    // a chart over --helm-chart-max-size
    let big = "x".repeat(64 << 10);
    repo.add_chart("big", "1.0.0", &[("files/big.txt", &random_text(big.len()))]);
    create(&h, "big", chart_spec("HelmRepository", "charts", "big", None)).await;
    wait_for(&h, "charts", "the index with 'big'", |r: &HelmRepository| {
        r.status.as_ref().and_then(|s| s.artifact.as_ref()).is_some()
    })
    .await;
    super::request::<HelmRepository>(&h, "charts", "big").await;
    let obj: HelmChart = failed_with(&h, "big", "ChartPullError").await;
    assert!(
        ready_of(&obj).unwrap().2.contains("exceeds the maximum"),
        "{:?}",
        ready_of(&obj)
    );

    // an archive with an entry escaping the chart, listed in the index by hand
    let evil = repo.root().join("evil-1.0.0.tgz");
    write_tgz(
        &evil,
        &[
            ("evil/Chart.yaml", "apiVersion: v2\nname: evil\nversion: 1.0.0\n"),
            ("evil/../../escape", "x"),
        ],
    );
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(&evil).unwrap(),
    ));
    let index = std::fs::read_to_string(repo.root().join("index.yaml")).unwrap().replacen(
        "entries:\n",
        &format!("entries:\n  evil:\n  - apiVersion: v2\n    name: evil\n    version: 1.0.0\n    digest: {digest}\n    urls:\n    - evil-1.0.0.tgz\n"),
        1,
    );
    std::fs::write(repo.root().join("index.yaml"), index).unwrap();
    super::request::<HelmRepository>(&h, "charts", "evil").await;
    create(&h, "evil", chart_spec("HelmRepository", "charts", "evil", None)).await;
    let obj: HelmChart = failed_with(&h, "evil", "ChartPullError").await;
    assert!(
        ready_of(&obj).unwrap().2.contains("escapes"),
        "{:?}",
        ready_of(&obj)
    );
}

fn random_text(n: usize) -> String {
    // incompressible enough that the archive stays over the limit
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

fn write_tgz(path: &std::path::Path, entries: &[(&str, &str)]) {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    ));
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        builder.append(&h, data.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

/// The files of a chart made by `helm create`, under `prefix`.
fn chart_files(name: &str, version: &str, prefix: &str) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let chart = create_chart(dir.path(), name, version, &[]);
    let mut files = Vec::new();
    let mut stack = vec![chart.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&chart).unwrap().display().to_string();
                files.push((format!("{prefix}/{rel}"), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    files
}

#[tokio::test]
async fn a_chart_in_git_is_packaged_with_its_dependencies_values_and_revision() {
    let h = start("helm-chart-git").await;
    let charts = ChartRepo::start(None);
    charts.add_chart("redis", "1.0.0", &[]);
    charts.add_chart("redis", "1.1.0", &[]);
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let mut files = chart_files("app", "0.1.0", "charts/app");
    files.extend(chart_files("lib", "0.2.0", "charts/lib"));
    // app depends on lib by path
    let app_chart = files
        .iter_mut()
        .find(|(p, _)| p == "charts/app/Chart.yaml")
        .unwrap();
    app_chart
        .1
        .push_str("dependencies:\n- name: lib\n  version: 0.2.0\n  repository: file://../lib\n");
    files.push(("env/prod.yaml".into(), "replicaCount: 5\n".into()));
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let head = repo.commit(&refs, "charts");
    let server = GitHttp::start(&root, "flux", "s3cret");
    gitrepository::secret(
        &h,
        "auth",
        serde_json::json!({"username": "flux", "password": "s3cret"}),
    )
    .await;
    apply(
        &h,
        &GitRepository::new(
            "fleet",
            gitrepository::spec(&server.url("fleet"), "main", Some("auth"), "1h"),
        ),
    )
    .await;

    let mut spec = chart_spec("GitRepository", "fleet", "./charts/app", None);
    spec.reconcile_strategy = Some(ReconcileStrategy::Revision);
    spec.values_files = Some(vec!["charts/app/values.yaml".into(), "env/prod.yaml".into()]);
    create(&h, "app", spec).await;
    let version = format!("0.1.0+{}.1", &head[..12]);
    let obj: HelmChart = ready_at(&h, "app", &version).await;
    assert_eq!(
        ready_of(&obj).unwrap(),
        (
            "True".into(),
            "ChartPackageSucceeded".into(),
            format!(
                "packaged 'app' chart with version '{version}' and merged values files [charts/app/values.yaml env/prod.yaml]"
            )
        )
    );
    let manifest = helm_on(&h, &obj, &["template", "release"]).await;
    assert!(manifest.contains("replicas: 5"), "{manifest}");
    let listed = helm_on(&h, &obj, &["show", "chart"]).await;
    assert!(listed.contains(&format!("version: {version}")), "{listed}");
    // the dependency is packaged inside
    let bytes = fetch_artifact(&h, &obj).await;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.contains(&"app/charts/lib-0.2.0.tgz".to_string()),
        "{names:?}"
    );

    // a path with no chart
    create(
        &h,
        "none",
        chart_spec("GitRepository", "fleet", "./charts/nope", None),
    )
    .await;
    let obj: HelmChart = failed_with(&h, "none", "InvalidChartReference").await;
    assert!(
        ready_of(&obj)
            .unwrap()
            .2
            .contains("no chart directory or archive at path './charts/nope'")
    );
}

#[tokio::test]
async fn a_chart_pushed_with_helm_to_an_oci_registry_is_pulled() {
    let h = start("helm-chart-oci").await;
    let registry = driftless_testkit::registry::Registry::start();
    let work = tempfile::tempdir().unwrap();
    let mut packaged = Vec::new();
    for version in ["6.5.0", "6.6.0-rc.1"] {
        let chart = create_chart(work.path(), "podinfo", version, &[]);
        helm(
            Command::new(tool("helm"))
                .arg("package")
                .arg(&chart)
                .arg("-d")
                .arg(work.path()),
        );
        let tgz = work.path().join(format!("podinfo-{version}.tgz"));
        helm(
            Command::new(tool("helm"))
                .arg("push")
                .arg(&tgz)
                .arg(format!("oci://{}/charts", registry.host()))
                .arg("--plain-http"),
        );
        std::fs::remove_dir_all(&chart).unwrap();
        packaged.push(tgz);
    }
    let mut repo = HelmRepositorySpec {
        url: format!("oci://{}/charts", registry.host()),
        interval: Some("1h".into()),
        ..Default::default()
    };
    repo.type_ = Some(driftless_api::source::HelmRepositoryType::Oci);
    apply(&h, &HelmRepository::new("oci", repo)).await;
    create(
        &h,
        "podinfo",
        chart_spec("HelmRepository", "oci", "podinfo", Some("6.x")),
    )
    .await;
    let obj: HelmChart = ready_at(&h, "podinfo", "6.5.0").await;
    assert_eq!(ready_of(&obj).unwrap().1, "ChartPullSucceeded");
    assert_eq!(
        fetch_artifact(&h, &obj).await,
        std::fs::read(&packaged[0]).unwrap(),
        "the pushed chart, byte for byte"
    );
    create(
        &h,
        "rc",
        chart_spec("HelmRepository", "oci", "podinfo", Some(">=6.6.0-0")),
    )
    .await;
    ready_at::<HelmChart>(&h, "rc", "6.6.0-rc.1").await;
    create(
        &h,
        "none",
        chart_spec("HelmRepository", "oci", "podinfo", Some(">=7")),
    )
    .await;
    let obj: HelmChart = failed_with(&h, "none", "InvalidChartReference").await;
    assert!(
        ready_of(&obj)
            .unwrap()
            .2
            .contains("no match found for semver: >=7"),
        "{:?}",
        ready_of(&obj)
    );
}
