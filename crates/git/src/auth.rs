//! Credentials from a GitRepository's `secretRef`, with Flux's keys: `username`/`password` (HTTP basic),
//! `bearerToken`, `identity` (+ `password` as its passphrase) and `known_hosts` (SSH), `ca.crt` and
//! `tls.crt`/`tls.key` (HTTPS, see [`crate::tls`]). SSH host keys are always checked against
//! `known_hosts`; there is no trust-on-first-use.

use std::collections::BTreeMap;

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use crate::{Error, Result, known_hosts, tls::Tls};

/// Credentials for one remote. Never printed: `Debug` shows which keys are set, not their values.
#[derive(Clone, Default)]
pub struct Auth {
    /// HTTP basic user.
    pub username: Option<String>,
    /// HTTP basic password, or the SSH key's passphrase.
    pub password: Option<String>,
    /// HTTP bearer token.
    pub bearer_token: Option<String>,
    /// SSH private key (PEM or OpenSSH).
    pub identity: Option<String>,
    /// SSH known_hosts lines.
    pub known_hosts: Option<String>,
    /// HTTPS CA and client certificate.
    pub tls: Tls,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username.is_some())
            .field("password", &self.password.is_some())
            .field("bearer_token", &self.bearer_token.is_some())
            .field("identity", &self.identity.is_some())
            .field("known_hosts", &self.known_hosts.is_some())
            .field("tls", &self.tls)
            .finish()
    }
}

/// The parts of a remote URL the callbacks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    /// `http`, `https` or `ssh`.
    pub scheme: String,
    /// The user in the URL, if any.
    pub user: Option<String>,
    /// The host.
    pub host: String,
    /// The port (the scheme's default when absent).
    pub port: u16,
}

impl RemoteUrl {
    /// Parses `scheme://[user@]host[:port]/path`.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = || {
            Error::Invalid(format!(
                "invalid URL '{url}': expected http, https, ssh or git://[user@]host[:port]/path"
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            "ssh" => 22,
            "git" => 9418,
            _ => return Err(invalid()),
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.split(':').next().unwrap_or(u).to_string()), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse().map_err(|_| invalid())?,
            ),
            _ => (hostport.trim_matches(['[', ']']).to_string(), default_port),
        };
        if host.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            scheme: scheme.to_string(),
            user,
            host,
            port,
        })
    }
}

impl Auth {
    /// Reads Flux's keys from a Secret's data.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Self {
        let get = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).to_string())
                .filter(|v| !v.is_empty())
        };
        let bytes = |k: &str| data.get(k).filter(|v| !v.is_empty()).cloned();
        Self {
            username: get("username"),
            password: get("password"),
            bearer_token: get("bearerToken"),
            identity: get("identity"),
            known_hosts: get("known_hosts"),
            tls: Tls {
                // NB: `caFile` is the key Flux read before `ca.crt`, still accepted
                ca: bytes("ca.crt").or_else(|| bytes("caFile")),
                cert: bytes("tls.crt"),
                key: bytes("tls.key"),
            },
        }
    }

    /// Checks that the credentials fit the URL's scheme, with a message that says what to add.
    pub fn validate(&self, url: &RemoteUrl, secret: &str) -> Result<()> {
        let missing = |what: &str| Error::Auth {
            url: format!("{}://{}", url.scheme, url.host),
            message: format!("invalid '{secret}' secret data: {what}"),
        };
        match url.scheme.as_str() {
            "ssh" => {
                if self.identity.is_none() {
                    return Err(missing("required field 'identity' for SSH authentication"));
                }
                if self.known_hosts.is_none() {
                    return Err(missing("required field 'known_hosts' for SSH authentication"));
                }
            }
            _ => {
                if self.username.is_some() != self.password.is_some() {
                    return Err(missing(
                        "both 'username' and 'password' are required for basic auth",
                    ));
                }
                if self.tls.cert.is_some() != self.tls.key.is_some() {
                    return Err(missing(
                        "both 'tls.crt' and 'tls.key' are required for a client certificate",
                    ));
                }
            }
        }
        Ok(())
    }

    /// HTTP headers to send (a bearer token).
    pub fn headers(&self) -> Vec<String> {
        self.bearer_token
            .iter()
            .map(|t| format!("Authorization: Bearer {t}"))
            .collect()
    }

    /// Callbacks answering credential requests once (a second request means they were refused) and
    /// checking SSH host keys against `known_hosts`.
    pub fn callbacks<'a>(&'a self, url: &'a RemoteUrl) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        let mut attempts = 0;
        callbacks.credentials(move |_url, username_from_url, allowed| {
            attempts += 1;
            if attempts > 2 {
                return Err(git2::Error::new(
                    git2::ErrorCode::Auth,
                    git2::ErrorClass::Http,
                    "credentials were refused",
                ));
            }
            let user = username_from_url
                .map(str::to_string)
                .or_else(|| url.user.clone())
                .unwrap_or_else(|| "git".into());
            if allowed.contains(CredentialType::SSH_KEY)
                && let Some(identity) = &self.identity
            {
                return Cred::ssh_key_from_memory(&user, None, identity, self.password.as_deref());
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(&user);
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                && let (Some(u), Some(p)) = (&self.username, &self.password)
            {
                return Cred::userpass_plaintext(u, p);
            }
            Err(git2::Error::new(
                git2::ErrorCode::Auth,
                git2::ErrorClass::Http,
                "authentication required but no credentials were given (secretRef)",
            ))
        });
        callbacks.certificate_check(move |cert, _host| {
            let Some(hostkey) = cert.as_hostkey() else {
                // TLS: libgit2 verifies the chain against the system's CAs
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let known = self.known_hosts.as_deref().unwrap_or_default();
            match hostkey.hostkey() {
                Some(key) if known_hosts::is_known(known, &url.host, url.port, key) => {
                    Ok(CertificateCheckStatus::CertificateOk)
                }
                _ => Err(git2::Error::new(
                    git2::ErrorCode::Certificate,
                    git2::ErrorClass::Ssh,
                    format!("host key of {}:{} is not in known_hosts", url.host, url.port),
                )),
            }
        });
        callbacks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        let u = RemoteUrl::parse("ssh://git@github.com/org/repo").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.user.as_deref(), u.host.as_str(), u.port),
            ("ssh", Some("git"), "github.com", 22)
        );
        let u = RemoteUrl::parse("https://user:pw@example.com:8443/repo.git").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.host.as_str(), u.port),
            (Some("user"), "example.com", 8443)
        );
        assert_eq!(
            RemoteUrl::parse("http://127.0.0.1:8080/git/x.git").unwrap().port,
            8080
        );
        assert!(RemoteUrl::parse("ftp://example.com/x").is_err());
        assert!(RemoteUrl::parse("github.com:org/repo").is_err());
    }

    #[test]
    fn secrets_read_fluxs_keys_and_validation_says_what_is_missing() {
        let data: BTreeMap<String, Vec<u8>> = [
            ("identity".to_string(), b"KEY".to_vec()),
            ("password".to_string(), b"pass".to_vec()),
        ]
        .into();
        let auth = Auth::from_secret(&data);
        assert_eq!(auth.identity.as_deref(), Some("KEY"));
        let ssh = RemoteUrl::parse("ssh://git@github.com/org/repo").unwrap();
        let err = auth.validate(&ssh, "flux-system/ssh").unwrap_err().to_string();
        assert!(
            err.contains("known_hosts") && err.contains("flux-system/ssh"),
            "{err}"
        );
        let https = RemoteUrl::parse("https://example.com/repo").unwrap();
        let only_user = Auth {
            username: Some("u".into()),
            ..Default::default()
        };
        assert!(
            only_user
                .validate(&https, "s")
                .unwrap_err()
                .to_string()
                .contains("password")
        );
    }

    #[test]
    fn debug_never_shows_values() {
        let auth = Auth {
            password: Some("hunter2".into()),
            bearer_token: Some("tok3n".into()),
            ..Default::default()
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("tok3n"), "{shown}");
    }

    #[test]
    fn bearer_tokens_become_a_header() {
        let auth = Auth {
            bearer_token: Some("abc".into()),
            ..Default::default()
        };
        assert_eq!(auth.headers(), ["Authorization: Bearer abc"]);
    }
}
