//! Signing commits with an OpenPGP key, as `git commit -S` does: a detached, ASCII-armored signature over
//! the commit object, stored in its `gpgsig` header (what `git verify-commit` and GitHub check). The key
//! comes from a Secret as Flux's image automation reads it: `git.asc` (an ASCII-armored secret key) and an
//! optional `passphrase`. A signing subkey is used when the key has one, the primary key otherwise.

use std::{collections::BTreeMap, io::Cursor};

use pgp::{
    composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey},
    crypto::hash::HashAlgorithm,
    types::{KeyDetails, Password},
};

use crate::{Error, Result};

/// A secret key that signs commits.
pub struct Signer {
    key: SignedSecretKey,
    password: Password,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // NB: never the key material
        f.debug_struct("Signer")
            .field("fingerprint", &self.key.fingerprint())
            .finish()
    }
}

impl Signer {
    /// Reads the key of a `signingKey` Secret (`git.asc`, `passphrase`); `name` names it in errors.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>, name: &str) -> Result<Self> {
        let armored = data.get("git.asc").ok_or_else(|| {
            Error::Invalid(format!(
                "secret '{name}' has no 'git.asc': add the ASCII-armored signing key"
            ))
        })?;
        let (key, _) = SignedSecretKey::from_armor_single(Cursor::new(armored)).map_err(|e| {
            Error::Invalid(format!(
                "secret '{name}': 'git.asc' is not an ASCII-armored OpenPGP secret key: {e}"
            ))
        })?;
        let password = match data.get("passphrase") {
            Some(p) => Password::from(
                String::from_utf8_lossy(p)
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            None => Password::empty(),
        };
        let signer = Self { key, password };
        // NB: a wrong passphrase is refused here, not at the first commit
        signer
            .sign(b"driftless")
            .map_err(|e| Error::Invalid(format!("secret '{name}': the key cannot sign: {e}")))?;
        Ok(signer)
    }

    /// An ASCII-armored detached signature over `data`.
    pub fn sign(&self, data: &[u8]) -> Result<String> {
        let mut rng = rand08::thread_rng();
        let sig = |e: pgp::errors::Error| Error::Invalid(format!("signing the commit: {e}"));
        let subkey = self
            .key
            .secret_subkeys
            .iter()
            .find(|k| k.signatures.iter().any(|s| s.key_flags().sign()));
        let signature = match subkey {
            Some(k) => DetachedSignature::sign_binary_data(
                &mut rng,
                &k.key,
                &self.password,
                HashAlgorithm::Sha256,
                data,
            ),
            None => DetachedSignature::sign_binary_data(
                &mut rng,
                &self.key.primary_key,
                &self.password,
                HashAlgorithm::Sha256,
                data,
            ),
        }
        .map_err(sig)?;
        signature.to_armored_string(ArmorOptions::default()).map_err(sig)
    }
}
