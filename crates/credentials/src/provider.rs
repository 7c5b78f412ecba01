//! Credentials a provider issues instead of a Secret's static keys (`spec.provider`):
//! - `github`: a GitHub App installation token, from `secretRef`'s `githubAppID`,
//!   `githubAppInstallationID` (or `githubAppInstallationOwner`), `githubAppPrivateKey` and optional
//!   `githubAppBaseURL` (GitHub Enterprise Server); the token is the basic-auth password of user
//!   `x-access-token`, as GitHub documents;
//! - `azure`: an Azure DevOps access token by workload identity: the federated token of the controller's
//!   environment (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`,
//!   `AZURE_AUTHORITY_HOST`, which the workload identity webhook sets; [`AzureArgs`]), or, with
//!   `spec.serviceAccountName` and the `ObjectLevelWorkloadIdentity`
//!   gate, a token the API server issues for that ServiceAccount (client and tenant IDs from its
//!   `azure.workload.identity/*` annotations); the access token is sent as a bearer token.
//!
//! Tokens are cached until shortly before they expire, keyed by a hash of what identifies them.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use driftless_git::tls::Tls;
use driftless_runtime::error::api_message;
use k8s_openapi::api::{authentication::v1::TokenRequest, core::v1::ServiceAccount};
use kube::Api;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The GitHub API of github.com.
const GITHUB_API: &str = "https://api.github.com";
/// The user GitHub expects with an installation token.
pub const GITHUB_TOKEN_USER: &str = "x-access-token";
/// The audience Azure AD accepts federated Kubernetes tokens for.
const AZURE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Azure DevOps' resource: its scope for the client-credentials grant.
const AZURE_DEVOPS_SCOPE: &str = "499b84ac-1321-427f-aa17-267ca6975798/.default";
/// A token is renewed this long before it expires.
const EARLY: Duration = Duration::from_secs(300);

/// Issued tokens, by a hash of what identifies them.
#[derive(Default)]
pub struct Tokens(Mutex<HashMap<String, (String, SystemTime)>>);

impl Tokens {
    fn get(&self, key: &str) -> Option<String> {
        let cache = self.0.lock().expect("token cache");
        let (token, expires) = cache.get(key)?;
        (SystemTime::now() + EARLY < *expires).then(|| token.clone())
    }

    fn put(&self, key: String, token: &str, expires: SystemTime) {
        self.0
            .lock()
            .expect("token cache")
            .insert(key, (token.to_string(), expires));
    }
}

fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A GitHub App installation token for the Secret `secret` (`ns/name`, for messages) with `data`.
pub async fn github_token(
    data: &BTreeMap<String, Vec<u8>>,
    secret: &str,
    tls: &Tls,
    proxy: Option<&str>,
    tokens: &Tokens,
) -> Result<String, String> {
    let get = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let invalid = |what: &str| format!("invalid '{secret}' secret data for the 'github' provider: {what}");
    let app_id = get("githubAppID").ok_or_else(|| invalid("'githubAppID' is required"))?;
    let pem = get("githubAppPrivateKey").ok_or_else(|| invalid("'githubAppPrivateKey' is required"))?;
    let installation = get("githubAppInstallationID");
    let owner = get("githubAppInstallationOwner");
    if installation.is_none() && owner.is_none() {
        return Err(invalid(
            "'githubAppInstallationID' or 'githubAppInstallationOwner' is required",
        ));
    }
    let base = get("githubAppBaseURL").unwrap_or_else(|| GITHUB_API.into());
    let base = base.trim_end_matches('/').to_string();
    let cache_key = key(&[
        b"github",
        base.as_bytes(),
        app_id.as_bytes(),
        installation.as_deref().unwrap_or_default().as_bytes(),
        owner.as_deref().unwrap_or_default().as_bytes(),
        pem.as_bytes(),
    ]);
    if let Some(token) = tokens.get(&cache_key) {
        return Ok(token);
    }
    let signing = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| invalid(&format!("'githubAppPrivateKey' is not an RSA private key: {e}")))?;
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iat: u64,
        exp: u64,
        iss: &'a str,
    }
    // NB: GitHub allows ten minutes at most; a minute back dates for clock drift
    let now = now_secs();
    let claims = Claims {
        iat: now.saturating_sub(60),
        exp: now + 9 * 60,
        iss: &app_id,
    };
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &signing,
    )
    .map_err(|e| invalid(&format!("signing the app's token failed: {e}")))?;
    let client = tls.http_client(proxy).map_err(|e| e.to_string())?;
    let call = |method: reqwest::Method, url: String| {
        client
            .request(method, url)
            .bearer_auth(&jwt)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header("User-Agent", "driftless-source-controller")
    };
    let installation = match (installation, owner) {
        (Some(id), _) => id,
        (None, Some(owner)) => {
            #[derive(Deserialize)]
            struct Account {
                login: String,
            }
            #[derive(Deserialize)]
            struct Installation {
                id: u64,
                account: Account,
            }
            // NB: page by page (100 at most each) until the owner's installation or the last page
            let mut found = None;
            for page in 1.. {
                let list: Vec<Installation> = github_json(
                    call(
                        reqwest::Method::GET,
                        format!("{base}/app/installations?per_page=100&page={page}"),
                    ),
                    &base,
                )
                .await?;
                found = list
                    .iter()
                    .find(|i| i.account.login.eq_ignore_ascii_case(&owner))
                    .map(|i| i.id.to_string());
                if found.is_some() || list.len() < 100 {
                    break;
                }
            }
            found.ok_or_else(|| format!("the GitHub App {app_id} has no installation for owner '{owner}'"))?
        }
        (None, None) => unreachable!("checked above"),
    };
    #[derive(Deserialize)]
    struct AccessToken {
        token: String,
        expires_at: Option<String>,
    }
    let issued: AccessToken = github_json(
        call(
            reqwest::Method::POST,
            format!("{base}/app/installations/{installation}/access_tokens"),
        ),
        &base,
    )
    .await?;
    let expires = issued
        .expires_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64))
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
    tokens.put(cache_key, &issued.token, expires);
    Ok(issued.token)
}

/// Sends a GitHub API request and reads its JSON answer; a refusal carries GitHub's message.
async fn github_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    base: &str,
) -> Result<T, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("GitHub API at '{base}' unreachable: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        #[derive(Deserialize)]
        struct Message {
            message: String,
        }
        let detail = serde_json::from_str::<Message>(&body)
            .map(|m| m.message)
            .unwrap_or_else(|_| body.chars().take(200).collect());
        return Err(format!(
            "GitHub API at '{base}' refused the app ({status}): {detail}"
        ));
    }
    serde_json::from_str(&body).map_err(|e| format!("unexpected GitHub API answer from '{base}': {e}"))
}

/// The controller's Azure workload identity, from the environment the workload identity webhook sets
/// (or the flags of the same names).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct AzureArgs {
    /// The Azure AD authority.
    #[arg(
        long,
        env = "AZURE_AUTHORITY_HOST",
        default_value = "https://login.microsoftonline.com/"
    )]
    pub azure_authority_host: String,
    /// The federated (projected ServiceAccount) token file of the controller.
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE", default_value = "")]
    pub azure_federated_token_file: String,
    /// The client ID of the managed identity the controller uses.
    #[arg(long, env = "AZURE_CLIENT_ID", default_value = "")]
    pub azure_client_id: String,
    /// The Azure AD tenant.
    #[arg(long, env = "AZURE_TENANT_ID", default_value = "")]
    pub azure_tenant_id: String,
}

/// Where the Azure workload identity comes from.
pub enum AzureIdentity<'a> {
    /// The controller's environment (its own ServiceAccount's federated token file).
    Controller,
    /// A ServiceAccount of the object's namespace.
    ServiceAccount {
        /// The client.
        client: &'a kube::Client,
        /// Its namespace.
        namespace: &'a str,
        /// Its name.
        name: &'a str,
    },
}

/// An Azure DevOps access token by workload identity.
pub async fn azure_token(
    identity: AzureIdentity<'_>,
    azure: &AzureArgs,
    proxy: Option<&str>,
    tokens: &Tokens,
) -> Result<String, String> {
    let set = |v: &str| Some(v.to_string()).filter(|v| !v.is_empty());
    let authority = azure.azure_authority_host.clone();
    let (client_id, tenant, assertion) = match identity {
        AzureIdentity::Controller => {
            let missing = |k: &str| {
                format!(
                    "workload identity is not set up for the controller: {k} is not set (label the \
                     Deployment azure.workload.identity/use: \"true\" and annotate its ServiceAccount)"
                )
            };
            let file = set(&azure.azure_federated_token_file)
                .ok_or_else(|| missing("AZURE_FEDERATED_TOKEN_FILE"))?;
            let client_id = set(&azure.azure_client_id).ok_or_else(|| missing("AZURE_CLIENT_ID"))?;
            let tenant = set(&azure.azure_tenant_id).ok_or_else(|| missing("AZURE_TENANT_ID"))?;
            let assertion = std::fs::read_to_string(&file)
                .map_err(|e| format!("reading the federated token {file}: {e}"))?;
            (client_id, tenant, assertion.trim().to_string())
        }
        AzureIdentity::ServiceAccount {
            client,
            namespace,
            name,
        } => {
            let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
            let sa = accounts
                .get_opt(name)
                .await
                .map_err(|e| format!("reading ServiceAccount '{namespace}/{name}': {}", api_message(&e)))?
                .ok_or_else(|| format!("ServiceAccount '{namespace}/{name}' not found"))?;
            let annotation = |k: &str| {
                sa.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(k))
                    .filter(|v| !v.is_empty())
                    .cloned()
            };
            let client_id = annotation("azure.workload.identity/client-id").ok_or_else(|| {
                format!(
                    "ServiceAccount '{namespace}/{name}' has no azure.workload.identity/client-id annotation"
                )
            })?;
            let tenant = annotation("azure.workload.identity/tenant-id")
                .or_else(|| set(&azure.azure_tenant_id))
                .ok_or_else(|| {
                    format!(
                        "ServiceAccount '{namespace}/{name}' has no azure.workload.identity/tenant-id \
                         annotation and the controller has no AZURE_TENANT_ID"
                    )
                })?;
            let request: TokenRequest = serde_json::from_value(serde_json::json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [AZURE_AUDIENCE], "expirationSeconds": 600}
            }))
            .expect("a TokenRequest");
            let issued: TokenRequest = accounts
                .create_subresource("token", name, &Default::default(), &request)
                .await
                .map_err(|e| {
                    format!(
                        "requesting a token for ServiceAccount '{namespace}/{name}': {}",
                        api_message(&e)
                    )
                })?;
            let token = issued
                .status
                .and_then(|s| s.token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    format!("the API server issued no token for ServiceAccount '{namespace}/{name}'")
                })?;
            (client_id, tenant, token)
        }
    };
    let cache_key = key(&[
        b"azure",
        authority.as_bytes(),
        client_id.as_bytes(),
        tenant.as_bytes(),
    ]);
    if let Some(token) = tokens.get(&cache_key) {
        return Ok(token);
    }
    let url = format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'));
    let client = Tls::default().http_client(proxy).map_err(|e| e.to_string())?;
    let form = [
        ("client_id", client_id.as_str()),
        ("client_assertion", assertion.as_str()),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("grant_type", "client_credentials"),
        ("scope", AZURE_DEVOPS_SCOPE),
    ];
    let response = client
        .post(&url)
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("Azure AD at '{authority}' unreachable: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    #[derive(Deserialize)]
    struct Answer {
        access_token: Option<String>,
        expires_in: Option<u64>,
        error_description: Option<String>,
    }
    let answer: Answer = serde_json::from_str(&body)
        .map_err(|_| format!("Azure AD refused the workload identity ({status})"))?;
    match (status.is_success(), answer.access_token) {
        (true, Some(token)) => {
            let expires = SystemTime::now() + Duration::from_secs(answer.expires_in.unwrap_or(3600));
            tokens.put(cache_key, &token, expires);
            Ok(token)
        }
        _ => Err(format!(
            "Azure AD refused the workload identity ({status}): {}",
            answer.error_description.unwrap_or_default()
        )),
    }
}
