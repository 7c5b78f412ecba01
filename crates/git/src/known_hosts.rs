//! `known_hosts` matching for SSH remotes: plain and hashed (`|1|salt|hash`) host patterns, `[host]:port`
//! for non-standard ports, compared with the raw host key the server presented.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};

/// Whether `known_hosts` lists `key` (the server's raw public key blob) for `host`:`port`.
pub fn is_known(known_hosts: &str, host: &str, port: u16, key: &[u8]) -> bool {
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    known_hosts
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|line| {
            let mut fields = line.split_whitespace();
            let hosts = fields.next().unwrap_or_default();
            // @cert-authority and @revoked lines are not plain host keys
            if hosts.starts_with('@') {
                return false;
            }
            let (Some(_kind), Some(blob)) = (fields.next(), fields.next()) else {
                return false;
            };
            let Ok(blob) = STANDARD.decode(blob) else {
                return false;
            };
            blob == key && hosts.split(',').any(|pattern| host_matches(pattern, &name))
        })
}

fn host_matches(pattern: &str, name: &str) -> bool {
    if let Some(hashed) = pattern.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
            return false;
        };
        let Ok(mut mac) = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt) else {
            return false;
        };
        mac.update(name.as_bytes());
        return mac.verify_slice(&hash).is_ok();
    }
    pattern == name
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_B64: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn key() -> Vec<u8> {
        STANDARD.decode(KEY_B64).unwrap()
    }

    #[test]
    fn plain_entries_match_host_port_and_key() {
        let kh = format!("github.com ssh-ed25519 {KEY_B64}\n[127.0.0.1]:2222 ssh-ed25519 {KEY_B64}\n");
        assert!(is_known(&kh, "github.com", 22, &key()));
        assert!(is_known(&kh, "127.0.0.1", 2222, &key()));
        assert!(
            !is_known(&kh, "127.0.0.1", 22, &key()),
            "the port is part of the name"
        );
        assert!(!is_known(&kh, "gitlab.com", 22, &key()));
        assert!(!is_known(&kh, "github.com", 22, b"another key"));
    }

    #[test]
    fn hashed_entries_match() {
        let salt = b"0123456789abcdef0123";
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(salt).unwrap();
        mac.update(b"[localhost]:2022");
        let hash = mac.finalize().into_bytes();
        let kh = format!(
            "|1|{}|{} ssh-ed25519 {KEY_B64}",
            STANDARD.encode(salt),
            STANDARD.encode(hash)
        );
        assert!(is_known(&kh, "localhost", 2022, &key()));
        assert!(!is_known(&kh, "localhost", 22, &key()));
    }

    #[test]
    fn comments_markers_and_garbage_never_match() {
        let kh = format!(
            "# github.com ssh-ed25519 {KEY_B64}\n@cert-authority github.com ssh-ed25519 {KEY_B64}\ngarbage\n"
        );
        assert!(!is_known(&kh, "github.com", 22, &key()));
    }
}
