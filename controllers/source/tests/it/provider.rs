//! `spec.provider`: credentials a GitHub App or an Azure workload identity issues. GitHub's and Azure AD's
//! token endpoints are out of reach here, so each test runs a small stand-in that checks what a real one
//! checks (the app's RS256 JWT against its public key; the client-credentials form with the federated
//! token) and issues a token the real Git server (lighttpd + git http-backend) then requires.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use driftless_api::source::{GitProvider, GitRepository, GitRepositorySpec};
use driftless_testkit::{
    git::{GitHttp, RepoRoot},
    pki::rsa_key_pair,
};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::{
    gitrepository::{create, failed, is_ready_at, reconcile_now, secret, spec, wait_until},
    start, start_with,
};

/// Serves `router` on a loopback port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// GitHub's app endpoints: the bearer must be an RS256 JWT the app's key signed, issued by its ID and
/// valid ten minutes at most; installation 42 belongs to `driftless-org`.
#[derive(Clone)]
struct GitHub {
    public_key: String,
    app_id: String,
    token: String,
    issued: Arc<AtomicUsize>,
}

impl GitHub {
    fn check(&self, headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
        let refuse = |m: &str| (StatusCode::UNAUTHORIZED, Json(json!({"message": m})));
        let jwt = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| refuse("A JSON web token could not be decoded"))?;
        #[derive(serde::Deserialize)]
        struct Claims {
            iat: u64,
            exp: u64,
            iss: String,
        }
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(self.public_key.as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iat", "iss"]);
        let claims = jsonwebtoken::decode::<Claims>(jwt, &key, &validation)
            .map_err(|_| refuse("A JSON web token could not be decoded"))?
            .claims;
        if claims.iss != self.app_id || claims.exp.saturating_sub(claims.iat) > 600 {
            return Err(refuse("'Expiration time' claim ('exp') is too far in the future"));
        }
        Ok(())
    }
}

async fn access_token(
    State(gh): State<GitHub>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = gh.check(&headers) {
        return refused;
    }
    if id != "42" {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"})));
    }
    gh.issued.fetch_add(1, Ordering::SeqCst);
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    (
        StatusCode::CREATED,
        Json(json!({"token": gh.token, "expires_at": expires.to_rfc3339()})),
    )
}

/// The app's installations, 100 a page as GitHub pages them: the owner's is on page 2.
async fn installations(
    State(gh): State<GitHub>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = gh.check(&headers) {
        return refused;
    }
    let page = match q.get("page").map(String::as_str) {
        Some("1") | None => (0..100)
            .map(|i| json!({"id": 1000 + i, "account": {"login": format!("someone-{i}")}}))
            .collect(),
        Some("2") => vec![json!({"id": 42, "account": {"login": "driftless-org"}})],
        _ => vec![],
    };
    (StatusCode::OK, Json(Value::Array(page)))
}

#[tokio::test]
async fn a_github_app_installation_token_fetches_and_is_reused_until_it_expires() {
    let h = start("git-github").await;
    let (private_key, public_key) = rsa_key_pair();
    let gh = GitHub {
        public_key,
        app_id: "4242".into(),
        token: "ghs_driftlessInstallationToken".into(),
        issued: Arc::default(),
    };
    let base = serve(
        Router::new()
            .route("/api/v3/app/installations/{id}/access_tokens", post(access_token))
            .route("/api/v3/app/installations", get(installations))
            .with_state(gh.clone()),
    )
    .await;
    let root = RepoRoot::default();
    let head = root.repo("fleet").commit(&[("a.yaml", "1")], "first");
    let server = GitHttp::start(&root, "x-access-token", &gh.token);
    let url = server.url("fleet");
    let app = |installation: Value| {
        let mut data = json!({"githubAppID": "4242", "githubAppPrivateKey": private_key,
            "githubAppBaseURL": format!("{base}/api/v3")});
        data.as_object_mut()
            .unwrap()
            .extend(installation.as_object().unwrap().clone());
        data
    };
    let github = |secret: &str| GitRepositorySpec {
        provider: Some(GitProvider::Github),
        ..spec(&url, "main", Some(secret), "1h")
    };
    secret(&h, "by-id", app(json!({"githubAppInstallationID": "42"}))).await;
    secret(
        &h,
        "by-owner",
        app(json!({"githubAppInstallationOwner": "driftless-org"})),
    )
    .await;
    create(&h, "by-id", github("by-id")).await;
    create(&h, "by-owner", github("by-owner")).await;
    let rev = format!("main@sha1:{head}");
    for name in ["by-id", "by-owner"] {
        wait_until(&h, name, "Ready with an installation token", |o| {
            is_ready_at(o, &rev)
        })
        .await;
    }
    assert_eq!(gh.issued.load(Ordering::SeqCst), 2, "one token per installation");

    // the next reconcile reuses the token
    reconcile_now(&h, "by-id", "again").await;
    assert_eq!(
        gh.issued.load(Ordering::SeqCst),
        2,
        "a cached token was requested again"
    );

    // an installation the app does not have, and a Secret without the key: what to fix
    let cases = [
        (
            "other",
            app(json!({"githubAppInstallationID": "7"})),
            "refused the app (404 Not Found): Not Found",
        ),
        (
            "no-key",
            json!({"githubAppID": "4242", "githubAppInstallationID": "42"}),
            "'githubAppPrivateKey' is required",
        ),
    ];
    for (name, data, says) in cases {
        secret(&h, name, data).await;
        create(&h, name, github(name)).await;
        let (reason, message) = failed(&h, name, "the provider failure").await;
        assert_eq!(reason, "AuthenticationFailed", "{name}");
        assert!(
            message.starts_with("failed to get credentials from the 'github' provider")
                && message.contains(says),
            "{name}: {message}"
        );
        assert!(!message.contains("BEGIN"), "no key in status: {message}");
    }
}

/// Azure AD's token endpoint for one tenant: a client-credentials grant whose assertion is the
/// federated token, for the client ID, asking for Azure DevOps' scope.
#[derive(Clone)]
struct AzureAd {
    client_id: String,
    assertion: Assertion,
    access_token: String,
}

/// What makes an assertion valid.
#[derive(Clone)]
enum Assertion {
    /// The controller's federated token file holds exactly this.
    Exact(String),
    /// A ServiceAccount token the cluster vouches for (TokenReview), for this subject and Azure's audience,
    /// as Azure AD checks one against the cluster's issuer.
    Reviewed {
        client: kube::Client,
        subject: Arc<std::sync::Mutex<String>>,
    },
}

impl Assertion {
    async fn valid(&self, token: &str) -> bool {
        match self {
            Assertion::Exact(want) => token == want,
            Assertion::Reviewed { client, subject } => {
                use k8s_openapi::api::authentication::v1::TokenReview;
                let review: TokenReview = serde_json::from_value(json!({
                    "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                    "spec": {"token": token, "audiences": ["api://AzureADTokenExchange"]}}))
                .unwrap();
                let reviewed = kube::Api::<TokenReview>::all(client.clone())
                    .create(&Default::default(), &review)
                    .await
                    .unwrap();
                let status = reviewed.status.unwrap_or_default();
                let want = subject.lock().unwrap().clone();
                status.authenticated == Some(true)
                    && status.user.and_then(|u| u.username).as_deref() == Some(want.as_str())
            }
        }
    }
}

async fn azure_token(
    State(ad): State<AzureAd>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let valid = field("grant_type") == "client_credentials"
        && field("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        && field("scope") == "499b84ac-1321-427f-aa17-267ca6975798/.default"
        && field("client_id") == ad.client_id
        && ad.assertion.valid(field("client_assertion")).await;
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": "invalid_client", "error_description": "AADSTS700213: No matching federated identity record found"}),
            ),
        );
    }
    (
        StatusCode::OK,
        Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": ad.access_token})),
    )
}

#[tokio::test]
async fn azure_workload_identity_gives_a_bearer_token_and_object_level_identity_needs_its_gate() {
    let federated = "federated.projected.token";
    let ad = AzureAd {
        client_id: "5f3c2a1e-client".into(),
        assertion: Assertion::Exact(federated.into()),
        access_token: "eyJ0eXAiOiJKV1Qi.azure-devops".into(),
    };
    let authority = serve(
        Router::new()
            .route("/tenant-1/oauth2/v2.0/token", post(azure_token))
            .with_state(ad.clone()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, federated).unwrap();
    let flags = [
        format!("--azure-authority-host={authority}/"),
        format!("--azure-federated-token-file={}", token_file.display()),
        format!("--azure-client-id={}", ad.client_id),
        "--azure-tenant-id=tenant-1".into(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let h = start_with("git-azure", &flags).await;
    let root = RepoRoot::default();
    let head = root.repo("fleet").commit(&[("a.yaml", "1")], "first");
    let server = GitHttp::start_bearer(&root, &ad.access_token);
    let azure = GitRepositorySpec {
        provider: Some(GitProvider::Azure),
        ..spec(&server.url("fleet"), "main", None, "1h")
    };
    create(&h, "fleet", azure.clone()).await;
    let rev = format!("main@sha1:{head}");
    wait_until(&h, "fleet", "Ready with the workload identity", |o| {
        is_ready_at(o, &rev)
    })
    .await;

    // a ServiceAccount of the object's own needs ObjectLevelWorkloadIdentity, as in Flux
    let own = GitRepositorySpec {
        service_account_name: Some("tenant".into()),
        ..azure
    };
    create(&h, "own", own).await;
    let (reason, message) = failed(&h, "own", "the feature gate refusal").await;
    assert_eq!(reason, "FeatureGateDisabled");
    assert_eq!(
        message,
        "to use spec.serviceAccountName for provider authentication please enable the \
         ObjectLevelWorkloadIdentity feature gate in the controller"
    );
}

#[tokio::test]
async fn object_level_workload_identity_exchanges_the_service_accounts_own_token() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let subject = Arc::new(std::sync::Mutex::new(String::new()));
    let ad = AzureAd {
        client_id: "tenant-client".into(),
        assertion: Assertion::Reviewed {
            client: driftless_testkit::cluster::cluster().client().await,
            subject: subject.clone(),
        },
        access_token: "eyJ0eXAiOiJKV1Qi.tenant-devops".into(),
    };
    let authority = serve(
        Router::new()
            .route("/tenant-2/oauth2/v2.0/token", post(azure_token))
            .with_state(ad.clone()),
    )
    .await;
    let flags = [
        format!("--azure-authority-host={authority}/"),
        "--feature-gates=ObjectLevelWorkloadIdentity=true".into(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let h = start_with("git-own", &flags).await;
    *subject.lock().unwrap() = format!("system:serviceaccount:{}:tenant", h.ns.name());
    let accounts: kube::Api<ServiceAccount> =
        kube::Api::namespaced(driftless_testkit::cluster::cluster().client().await, h.ns.name());
    for (name, annotations) in [
        (
            "tenant",
            json!({"azure.workload.identity/client-id": "tenant-client",
                "azure.workload.identity/tenant-id": "tenant-2"}),
        ),
        ("bare", json!({})),
    ] {
        let sa: ServiceAccount = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "annotations": annotations}}))
        .unwrap();
        accounts.create(&Default::default(), &sa).await.unwrap();
    }
    let root = RepoRoot::default();
    let head = root.repo("fleet").commit(&[("a.yaml", "1")], "first");
    let server = GitHttp::start_bearer(&root, &ad.access_token);
    let with = |account: &str| GitRepositorySpec {
        provider: Some(GitProvider::Azure),
        service_account_name: Some(account.into()),
        ..spec(&server.url("fleet"), "main", None, "1h")
    };
    create(&h, "tenant", with("tenant")).await;
    let rev = format!("main@sha1:{head}");
    wait_until(&h, "tenant", "Ready with the tenant's identity", |o| {
        is_ready_at(o, &rev)
    })
    .await;

    // a ServiceAccount without the client ID annotation says what to add
    create(&h, "bare", with("bare")).await;
    let (reason, message) = failed(&h, "bare", "the missing annotation").await;
    assert_eq!(reason, "AuthenticationFailed");
    assert!(
        message.contains("has no azure.workload.identity/client-id annotation"),
        "{message}"
    );
}

#[tokio::test]
async fn a_service_account_name_needs_the_azure_provider() {
    let h = start("git-sa").await;
    // without a provider, Flux's CRD rule refuses it at the API server already
    let none = GitRepository::new(
        "none",
        GitRepositorySpec {
            service_account_name: Some("tenant".into()),
            ..spec("https://example.com/repo.git", "main", None, "1h")
        },
    );
    let refused = h
        .api
        .patch("none", &PatchParams::apply("test"), &Patch::Apply(&none))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("serviceAccountName can only be set when provider is 'azure' or 'aws'"),
        "{refused}"
    );
    // the rule lets 'aws' through; the controller says what it supports
    let wrong = GitRepositorySpec {
        service_account_name: Some("tenant".into()),
        provider: Some(GitProvider::Aws),
        ..spec("https://example.com/repo.git", "main", None, "1h")
    };
    create(&h, "wrong", wrong).await;
    let (reason, message) = failed(&h, "wrong", "the spec refusal").await;
    assert_eq!(reason, "InvalidSpec");
    assert!(
        message.contains("only supported with the 'azure' provider"),
        "{message}"
    );
    // only a spec change helps: Stalled, not retried
    let status = h.api.get("wrong").await.unwrap().status.unwrap();
    let has = |t: &str| driftless_runtime::conditions::get(&status.conditions, t).map(|c| c.status.clone());
    assert_eq!(has("Stalled").as_deref(), Some("True"));
    assert_eq!(has("Reconciling"), None);
}
