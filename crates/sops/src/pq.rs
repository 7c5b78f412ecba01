//! Post-quantum age identities (`AGE-SECRET-KEY-PQ-1…`, recipients `age1pq1…`): age's
//! `mlkem768x25519` stanza is an HPKE base-mode seal of the file key with the X-Wing KEM
//! (ML-KEM-768 + X25519), HKDF-SHA256 and ChaCha20-Poly1305, the info string naming the stanza type.
//! The `hpke` crate does the cryptography; this module only reads the key and the stanza.

use age_core::format::{FileKey, Stanza};
use base64::Engine as _;
use hpke::{Deserializable as _, aead::ChaCha20Poly1305, kdf::HkdfSha256, kem::XWing};

const STANZA: &str = "mlkem768x25519";
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
const SECRET_PREFIX: &str = "age-secret-key-pq-";
/// The file key's size plus the ChaCha20-Poly1305 tag.
const BODY_LEN: usize = 16 + 16;

/// A hybrid ML-KEM-768 + X25519 age identity.
pub(crate) struct Identity(<XWing as hpke::Kem>::PrivateKey);

impl Identity {
    /// Parses the Bech32 `AGE-SECRET-KEY-PQ-1…` encoding of a 32-byte X-Wing seed.
    pub(crate) fn parse(line: &str) -> Result<Self, String> {
        let (hrp, seed) = bech32::decode(&line.to_lowercase())
            .map_err(|e| format!("malformed post-quantum age key: {e}"))?;
        if hrp.as_str() != SECRET_PREFIX {
            return Err(format!("malformed post-quantum age key: unknown type {hrp}"));
        }
        <XWing as hpke::Kem>::PrivateKey::from_bytes(&seed)
            .map(Identity)
            .map_err(|_| "malformed post-quantum age key: not a 32-byte seed".into())
    }
}

impl age::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA {
            return None;
        }
        let [enc] = stanza.args.as_slice() else {
            return Some(Err(age::DecryptError::InvalidHeader));
        };
        let Some(enc) = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(enc)
            .ok()
            .and_then(|b| <XWing as hpke::Kem>::EncappedKey::from_bytes(&b).ok())
        else {
            return Some(Err(age::DecryptError::InvalidHeader));
        };
        if stanza.body.len() != BODY_LEN {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        // NB: X-Wing rejects implicitly: a key that is not the recipient's fails here, at the AEAD
        let opened = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &hpke::OpModeR::Base,
            &self.0,
            &enc,
            INFO,
            &stanza.body,
            b"",
        );
        let key = <[u8; 16]>::try_from(opened.ok()?.as_slice()).ok()?;
        Some(Ok(FileKey::new(Box::new(key))))
    }
}
