//! OpenPGP verification of commits and tags (`spec.verify`): the signature libgit2 extracts from the
//! commit (or the one appended to the tag object) must verify against one of the armored public keys of
//! the Secret (keys ending in `.asc`, or every key when none does).

use std::collections::BTreeMap;

use git2::Repository;
use pgp::{
    composed::{Deserializable, DetachedSignature, SignedPublicKey},
    types::KeyDetails,
};

use crate::{Cache, Error, Result};

/// Public keys read from a verification Secret.
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Parses the armored keys of a Secret's data.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<Self> {
        let asc: Vec<_> = data.iter().filter(|(k, _)| k.ends_with(".asc")).collect();
        let chosen = if asc.is_empty() {
            data.iter().collect()
        } else {
            asc
        };
        let mut keys = Vec::new();
        for (name, value) in chosen {
            let parsed = SignedPublicKey::from_armor_many(&value[..])
                .map_err(|e| Error::Invalid(format!("unable to read OpenPGP key '{name}': {e}")))?;
            for key in parsed.0 {
                keys.push(
                    key.map_err(|e| Error::Invalid(format!("unable to read OpenPGP key '{name}': {e}")))?,
                );
            }
        }
        if keys.is_empty() {
            return Err(Error::Invalid(
                "no OpenPGP public keys found in the verification secret".into(),
            ));
        }
        Ok(Self { keys })
    }

    /// The key ID (hex) that made `signature` over `data`, if any key of the ring did.
    fn verify(&self, signature: &str, data: &[u8]) -> Option<String> {
        let (sig, _) = DetachedSignature::from_armor_single(signature.as_bytes()).ok()?;
        for key in &self.keys {
            if sig.verify(key, data).is_ok() {
                return Some(hex::encode_upper(key.legacy_key_id().as_ref()));
            }
            for sub in &key.public_subkeys {
                if sig.verify(sub, data).is_ok() {
                    return Some(hex::encode_upper(sub.legacy_key_id().as_ref()));
                }
            }
        }
        None
    }
}

impl Cache {
    /// Verifies the signature of `commit` (fetched before); returns the signing key's ID.
    pub fn verify_commit(&self, url: &str, commit: &str, keyring: &Keyring) -> Result<String> {
        let repo = self.open(url)?;
        let oid = git2::Oid::from_str(commit).map_err(|e| Error::Invalid(e.message().to_string()))?;
        let (signature, data) = repo
            .extract_signature(&oid, None)
            .map_err(|_| Error::Verification(format!("unable to verify commit '{commit}': no signature")))?;
        let signature = String::from_utf8_lossy(&signature).to_string();
        keyring.verify(&signature, &data).ok_or_else(|| {
            Error::Verification(format!(
                "unable to verify commit '{commit}': signature of an unknown key or invalid"
            ))
        })
    }

    /// Verifies the signature of the annotated tag `tag` (fetched before); returns the signing key's ID.
    pub fn verify_tag(&self, url: &str, tag: &str, keyring: &Keyring) -> Result<String> {
        let repo = self.open(url)?;
        let reference = repo
            .find_reference(&format!("refs/tags/{tag}"))
            .map_err(|_| Error::Verification(format!("unable to verify tag '{tag}': not found")))?;
        let oid = reference
            .target()
            .ok_or_else(|| Error::Verification(format!("unable to verify tag '{tag}'")))?;
        let odb = repo
            .odb()
            .map_err(|e| Error::Verification(e.message().to_string()))?;
        let object = odb
            .read(oid)
            .map_err(|e| Error::Verification(e.message().to_string()))?;
        if object.kind() != git2::ObjectType::Tag {
            return Err(Error::Verification(format!(
                "unable to verify tag '{tag}': a lightweight tag has no signature"
            )));
        }
        let raw = String::from_utf8_lossy(object.data()).to_string();
        let Some(at) = raw.find("-----BEGIN PGP SIGNATURE-----") else {
            return Err(Error::Verification(format!(
                "unable to verify tag '{tag}': no signature"
            )));
        };
        keyring.verify(&raw[at..], &raw.as_bytes()[..at]).ok_or_else(|| {
            Error::Verification(format!(
                "unable to verify tag '{tag}': signature of an unknown key or invalid"
            ))
        })
    }

    fn open(&self, url: &str) -> Result<Repository> {
        Repository::open_bare(self.repo_path(url)).map_err(|e| Error::Git {
            context: "opening the cached repository".into(),
            source: e,
        })
    }
}
