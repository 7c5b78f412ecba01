//! Registry credentials from docker config JSON (`kubernetes.io/dockerconfigjson` Secrets, the
//! `imagePullSecrets` of a ServiceAccount): `auths.<registry>` with `username`/`password`, `auth`
//! (base64 `user:password`) or `identitytoken`/`registrytoken`, matched to a registry host as the Docker
//! CLI matches them (scheme and path ignored, Docker Hub's aliases equal).

use std::collections::BTreeMap;

use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::Error;

/// Credentials by registry host, first match wins.
#[derive(Clone, Default)]
pub struct Keychain {
    entries: Vec<(String, RegistryAuth)>,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // NB: never the secrets
        f.debug_list()
            .entries(self.entries.iter().map(|(h, _)| h))
            .finish()
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
    #[serde(default, rename = "registrytoken")]
    registry_token: Option<String>,
}

impl Keychain {
    /// Reads a docker config JSON; `name` names its Secret in errors.
    pub fn from_docker_config(json: &[u8], name: &str) -> Result<Self, Error> {
        let config: DockerConfig = serde_json::from_slice(json).map_err(|e| {
            Error::InvalidConfig(format!("invalid docker config JSON in secret '{name}': {e}"))
        })?;
        let mut entries = Vec::new();
        for (key, entry) in config.auths {
            let auth = entry
                .registry_auth()
                .map_err(|why| Error::InvalidConfig(format!("secret '{name}', registry '{key}': {why}")))?;
            entries.push((normalize(&key), auth));
        }
        Ok(Self { entries })
    }

    /// Reads the Secret data of a `secretRef`: `.dockerconfigjson` (or the legacy `.dockercfg`), or
    /// `username`/`password` for any registry.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>, name: &str) -> Result<Self, Error> {
        if let Some(json) = data.get(".dockerconfigjson") {
            return Self::from_docker_config(json, name);
        }
        if let Some(json) = data.get(".dockercfg") {
            // the legacy format: the `auths` map without its wrapper
            let wrapped = format!("{{\"auths\":{}}}", String::from_utf8_lossy(json));
            return Self::from_docker_config(wrapped.as_bytes(), name);
        }
        match (data.get("username"), data.get("password")) {
            (Some(u), Some(p)) => Ok(Self {
                entries: vec![(
                    "*".into(),
                    RegistryAuth::Basic(
                        String::from_utf8_lossy(u).to_string(),
                        String::from_utf8_lossy(p).to_string(),
                    ),
                )],
            }),
            _ => Err(Error::InvalidConfig(format!(
                "secret '{name}' has neither '.dockerconfigjson' nor 'username' and 'password'"
            ))),
        }
    }

    /// Basic credentials for every registry (a command line's `--creds user:password`).
    pub fn basic(username: &str, password: &str) -> Self {
        Self {
            entries: vec![(
                "*".into(),
                RegistryAuth::Basic(username.to_string(), password.to_string()),
            )],
        }
    }

    /// Adds the credentials of `other` after these (lower precedence).
    pub fn extend(&mut self, other: Keychain) {
        self.entries.extend(other.entries);
    }

    /// The credentials for `registry` (host and port), anonymous when none match.
    pub fn auth_for(&self, registry: &str) -> RegistryAuth {
        let wanted = normalize(registry);
        self.entries
            .iter()
            .find(|(host, _)| *host == wanted || host == "*")
            .map(|(_, auth)| auth.clone())
            .unwrap_or(RegistryAuth::Anonymous)
    }

    /// Whether there are no credentials.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Entry {
    fn registry_auth(self) -> Result<RegistryAuth, String> {
        if let Some(token) = self.registry_token.filter(|t| !t.is_empty()) {
            return Ok(RegistryAuth::Bearer(token));
        }
        if let (Some(u), Some(p)) = (&self.username, &self.password)
            && !u.is_empty()
        {
            return Ok(RegistryAuth::Basic(u.clone(), p.clone()));
        }
        if let Some(auth) = self.auth.filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| "'auth' is not base64".to_string())?;
            let text = String::from_utf8_lossy(&decoded).to_string();
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| "'auth' is not base64 of 'username:password'".to_string())?;
            return Ok(RegistryAuth::Basic(u.to_string(), p.to_string()));
        }
        if let Some(token) = self.identity_token.filter(|t| !t.is_empty()) {
            // an identity token is exchanged as the password of the token user
            return Ok(RegistryAuth::Basic("<token>".into(), token));
        }
        Ok(RegistryAuth::Anonymous)
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/path` → `host:5000`.
fn normalize(key: &str) -> String {
    let host = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".into(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: RegistryAuth) -> Option<(String, String)> {
        match auth {
            RegistryAuth::Basic(u, p) => Some((u, p)),
            _ => None,
        }
    }

    #[test]
    fn docker_config_entries_match_their_registry() {
        let json = br#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
            "127.0.0.1:5000":{"username":"a","password":"b"},
            "ghcr.io":{"registrytoken":"tok"}}}"#;
        let k = Keychain::from_docker_config(json, "ns/creds").unwrap();
        assert_eq!(
            basic(k.auth_for("docker.io")),
            Some(("user".into(), "pass".into()))
        );
        assert_eq!(
            basic(k.auth_for("127.0.0.1:5000")),
            Some(("a".into(), "b".into()))
        );
        assert!(matches!(k.auth_for("ghcr.io"), RegistryAuth::Bearer(t) if t == "tok"));
        assert!(matches!(k.auth_for("quay.io"), RegistryAuth::Anonymous));
        assert_eq!(
            format!("{k:?}"),
            r#"["127.0.0.1:5000", "ghcr.io", "docker.io"]"#,
            "hosts, never secrets"
        );
    }

    #[test]
    fn bad_secrets_say_what_is_wrong() {
        let err = Keychain::from_docker_config(b"{", "ns/creds")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid docker config JSON in secret 'ns/creds'"),
            "{err}"
        );
        let err = Keychain::from_docker_config(br#"{"auths":{"r":{"auth":"!!"}}}"#, "ns/creds")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "secret 'ns/creds', registry 'r': 'auth' is not base64");
        let err = Keychain::from_secret(&BTreeMap::new(), "ns/creds")
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither '.dockerconfigjson'"), "{err}");
        let plain = BTreeMap::from([
            ("username".to_string(), b"u".to_vec()),
            ("password".to_string(), b"p".to_vec()),
        ]);
        let k = Keychain::from_secret(&plain, "ns/creds").unwrap();
        assert_eq!(basic(k.auth_for("anything:1")), Some(("u".into(), "p".into())));
    }
}
