//! `driftless dashboard` driven by a real headless Chromium (Debian's, through chromedriver and the
//! fantoccini WebDriver client) against the test cluster, with source-controller and kustomize-controller
//! running in process: the overview, a failing Kustomization's why chain, the inventory tree, a change
//! shown live, drift, reconcile, and a read-only dashboard refusing it.
//!
//! With `DRIFTLESS_SCREENSHOTS=<dir>` the test saves a screenshot of each page there (`docs/dashboard/`).

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use driftless_e2e::Fleet;
use driftless_testkit::cluster::cluster;
use fantoccini::{Client, ClientBuilder, Locator};
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams},
};
use serde_json::{Value, json};

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: \"1\"\n";

/// A process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `driftless dashboard` on a free port; its URL.
fn dashboard(extra: &[&str]) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["dashboard", "--port", "0", "--no-browser"])
        .args(extra)
        .env("KUBECONFIG", cluster().kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the dashboard printed no URL: {line:?}"))
        .to_string();
    (Process(child), url)
}

/// Chromium, headless, through chromedriver.
async fn browser() -> (Process, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Process(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (hack/tools.sh installs Debian's chromium-driver)"),
    );
    let profile = tempfile::tempdir().unwrap().keep();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--window-size=1400,900",
            format!("--user-data-dir={}", profile.display())]}),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start a session: {e}"),
        }
    }
}

/// Saves a screenshot as `name`.png where DRIFTLESS_SCREENSHOTS says.
async fn screenshot(browser: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("DRIFTLESS_SCREENSHOTS") {
        let png = browser.screenshot().await.unwrap();
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// The text of the first element at `css`, once `check` accepts it (within 20 s).
async fn text_when(browser: &Client, css: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = match browser.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if check(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{css}: {text:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn at<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// `#id` of a key in CSS (its `/` escaped).
fn row_css(key: &str) -> String {
    format!("tr[id=\"{key}\"]")
}

// the controllers run on this runtime's workers while the test drives the browser
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_explains_updates_live_and_acts() {
    let tc = cluster();
    tc.install_crds().await;
    tc.apply_kustomization("config/default");
    let ns = tc.namespace("dash").await;
    let n = ns.name().to_string();
    let artifacts = tempfile::tempdir().unwrap();
    let quiet = ["--log-level=error".to_string()];
    let (_, source) = driftless_e2e::source(&n, artifacts.path(), &quiet).await;
    let kustomize = driftless_e2e::kustomize(&n, &quiet).await;
    let _fleet = Fleet::start(&n, &[("apps/cm.yaml", CM)]).await;
    let client = tc.client().await;
    let ks: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &n,
        &driftless_api::kinds::get("Kustomization").unwrap().api_resource(),
    );
    for (name, source) in [("apps", "fleet"), ("broken", "missing")] {
        let obj = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name},
            "spec": {"interval": "1h", "path": "./apps", "prune": true, "targetNamespace": n,
                     "sourceRef": {"kind": "GitRepository", "name": source}}});
        ks.patch(name, &PatchParams::apply("t"), &Patch::Apply(&obj))
            .await
            .unwrap();
    }
    let ready = |want: &'static str, name: &'static str| {
        let ks = ks.clone();
        async move {
            until(&format!("{name} Ready={want}"), async || {
                let o = serde_json::to_value(ks.get(name).await.ok()?).ok()?;
                let ready = o
                    .pointer("/status/conditions")?
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready")?
                    .clone();
                (ready["status"] == want).then_some(o)
            })
            .await
        }
    };
    ready("True", "apps").await;
    ready("False", "broken").await;

    let (_dash, url) = dashboard(&[]);
    let (_driver, browser) = browser().await;

    // the overview: both, the failing one first, with its reason
    browser.goto(&format!("{url}/?namespace={n}")).await.unwrap();
    let apps_row = row_css(&format!("Kustomization/{n}/apps"));
    let broken_row = row_css(&format!("Kustomization/{n}/broken"));
    let apps = text_when(&browser, &apps_row, |t| t.contains("Ready")).await;
    assert!(apps.contains("main@sha1:"), "{apps}");
    let broken = text_when(&browser, &broken_row, |t| t.contains("Failing")).await;
    assert!(broken.contains("missing"), "the reason and message: {broken}");
    let order: Vec<String> = browser
        .execute(
            "return Array.from(document.querySelectorAll('#objects tbody tr')).map(r => r.id)",
            vec![],
        )
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let pos = |name: &str| {
        order
            .iter()
            .position(|k| k.ends_with(&format!("/{name}")))
            .unwrap()
    };
    assert!(pos("broken") < pos("apps"), "failing first: {order:?}");
    screenshot(&browser, "overview").await;
    // by keyboard: / goes to the search, j selects the first row; dark on a click, kept per browser
    let body = browser.find(Locator::Css("body")).await.unwrap();
    body.send_keys("j").await.unwrap();
    let selected = browser
        .execute("return document.querySelector('#objects tr.selected').id", vec![])
        .await
        .unwrap();
    assert_eq!(selected.as_str(), Some(order[0].as_str()));
    body.send_keys("/").await.unwrap();
    let focused = browser
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("q"), "/ focuses the search");
    browser
        .find(Locator::Css("#theme"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let theme = browser
        .execute("return [document.documentElement.dataset.theme, getComputedStyle(document.body).backgroundColor]", vec![])
        .await
        .unwrap();
    assert_eq!(theme, json!(["dark", "rgb(13, 17, 23)"]), "dark");
    screenshot(&browser, "overview-dark").await;
    browser
        .find(Locator::Css("#theme"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // live: a change made elsewhere shows in the open page without reloading it
    browser
        .execute("window.__loaded = 'same page'", vec![])
        .await
        .unwrap();
    let suspend = |on: bool| {
        let ks = ks.clone();
        async move {
            ks.patch(
                "apps",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"suspend": on}})),
            )
            .await
            .unwrap();
        }
    };
    let started = Instant::now();
    suspend(true).await;
    text_when(&browser, &format!("{apps_row} td.suspend"), |t| t == "True").await;
    let shown_after = started.elapsed();
    assert_eq!(
        browser.execute("return window.__loaded", vec![]).await.unwrap(),
        json!("same page"),
        "updated in place, not reloaded"
    );
    assert!(
        shown_after < Duration::from_secs(5),
        "shown live after {shown_after:?}"
    );
    suspend(false).await;
    text_when(&browser, &format!("{apps_row} td.suspend"), |t| t == "False").await;

    // a failing Kustomization's page: its why chain down to the missing source
    browser
        .find(Locator::Css(&format!("{broken_row} a")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let why = text_when(&browser, "#why pre", |t| !t.is_empty()).await;
    assert!(
        why.contains(&format!("Kustomization {n}/broken: not Ready"))
            && why.contains(&format!("source GitRepository {n}/missing: not found")),
        "{why}"
    );
    screenshot(&browser, "object-failing").await;

    // the tree of what apps applied, each object with its health; a click shows its live YAML
    browser
        .goto(&format!("{url}/o/Kustomization/{n}/apps/tree"))
        .await
        .unwrap();
    let tree = text_when(&browser, "#tree", |t| t.contains("ConfigMap")).await;
    assert!(tree.contains(&format!("ConfigMap/{n}/app Current")), "{tree}");
    screenshot(&browser, "tree").await;
    browser
        .find(Locator::Css("#tree li a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let yaml = text_when(&browser, "#yaml", |t| !t.is_empty()).await;
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("v: \"1\"") && !yaml.contains("managedFields"),
        "{yaml}"
    );

    // drift: a hand edit of the ConfigMap shows as a diff against the applied revision
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &n);
    cms.patch(
        "app",
        &PatchParams::apply("someone").force(),
        &Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"v": "2"}}),
        ),
    )
    .await
    .unwrap();
    browser
        .goto(&format!("{url}/o/Kustomization/{n}/apps/drift"))
        .await
        .unwrap();
    let drift = text_when(&browser, "#changes", |t| !t.is_empty()).await;
    assert!(drift.contains(&format!("ConfigMap/{n}/app drifted")), "{drift}");
    assert!(
        drift.contains("-  v: \"2\"") && drift.contains("+  v: \"1\""),
        "{drift}"
    );
    screenshot(&browser, "drift").await;

    // reconcile from the object page: requestedAt set, handled, and the drift corrected
    browser
        .goto(&format!("{url}/o/Kustomization/{n}/apps"))
        .await
        .unwrap();
    screenshot(&browser, "object").await;
    browser
        .find(Locator::Css("button[data-action$='/reconcile']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let said = text_when(&browser, "#flash", |t| !t.is_empty()).await;
    assert!(said.contains("reconcile requested"), "{said}");
    let requested = until("requestedAt set", async || {
        let o = serde_json::to_value(ks.get("apps").await.ok()?).ok()?;
        let at = at(&o, "/metadata/annotations/reconcile.fluxcd.io~1requestedAt").to_string();
        (!at.is_empty()).then_some(at)
    })
    .await;
    until("the request handled", async || {
        let o = serde_json::to_value(ks.get("apps").await.ok()?).ok()?;
        (at(&o, "/status/lastHandledReconcileAt") == requested).then_some(())
    })
    .await;
    let cm = cms.get("app").await.unwrap();
    assert_eq!(cm.data.unwrap()["v"], "1", "the reconcile corrected the drift");

    // a read-only dashboard shows the action turned off and refuses it
    let (_ro, ro_url) = dashboard(&["--read-only"]);
    browser
        .goto(&format!("{ro_url}/o/Kustomization/{n}/apps"))
        .await
        .unwrap();
    let button = browser
        .find(Locator::Css("button[data-action$='/reconcile']"))
        .await
        .unwrap();
    assert_eq!(button.attr("disabled").await.unwrap().as_deref(), Some("true"));
    let refused = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(location.pathname + '/reconcile', {method: 'POST', headers: {'X-Driftless-Action': '1'}})
               .then(async r => done([r.status, await r.text()]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(refused[0], 403, "{refused}");
    assert!(refused[1].as_str().unwrap().contains("read-only"), "{refused}");
    let o = serde_json::to_value(ks.get("apps").await.unwrap()).unwrap();
    assert_eq!(
        at(&o, "/metadata/annotations/reconcile.fluxcd.io~1requestedAt"),
        requested,
        "nothing requested"
    );
    // the page's own guard: a POST without the dashboard's header is refused too
    let forged = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(location.pathname + '/reconcile', {method: 'POST'}).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(forged, 403);

    // behind an authenticating proxy: actions impersonate the user its header names, so the API server's
    // RBAC decides and its refusal is shown; a request without the header may not act
    let (_proxied, proxied_url) = dashboard(&["--user-header", "X-Forwarded-User"]);
    browser
        .goto(&format!("{proxied_url}/o/Kustomization/{n}/apps"))
        .await
        .unwrap();
    let post = |user: Option<&str>| {
        let headers = match user {
            Some(u) => format!("{{'X-Driftless-Action': '1', 'X-Forwarded-User': '{u}'}}"),
            None => "{'X-Driftless-Action': '1'}".to_string(),
        };
        format!(
            "const done = arguments[arguments.length - 1];
             fetch(location.pathname + '/reconcile', {{method: 'POST', headers: {headers}}})
               .then(async r => done([r.status, await r.text()]));"
        )
    };
    let anonymous = browser.execute_async(&post(None), vec![]).await.unwrap();
    assert_eq!(anonymous[0], 401, "{anonymous}");
    let jane = browser.execute_async(&post(Some("jane")), vec![]).await.unwrap();
    assert_eq!(jane[0], 403, "{jane}");
    let said = jane[1].as_str().unwrap();
    assert!(said.contains("forbidden") && said.contains("\"jane\""), "{said}");
    let o = serde_json::to_value(ks.get("apps").await.unwrap()).unwrap();
    assert_eq!(
        at(&o, "/metadata/annotations/reconcile.fluxcd.io~1requestedAt"),
        requested,
        "nothing requested as jane"
    );

    browser.close().await.unwrap();
    source.abort();
    kustomize.abort();
}
