//! SOPS decryption, as the real sops decrypts: the data key from an age identity (X25519), each
//! `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value with AES-256-GCM (the path of keys as additional
//! data), `encrypted_regex`/`unencrypted_regex`/`encrypted_suffix`/`unencrypted_suffix`, and the MAC
//! (SHA-512 over every value in document order, encrypted with the last-modified time as additional
//! data) verified before anything is returned. Formats: YAML, JSON, dotenv, INI, binary; keys: age
//! (X25519 and post-quantum ML-KEM-768 + X25519) and OpenPGP.
#![warn(missing_docs)]

mod pq;

use std::io::Read;

use aes_gcm::{
    AesGcm,
    aead::{Aead, KeyInit, Payload, consts::U32},
    aes::Aes256,
};
use base64::Engine as _;
use serde_yaml::{Mapping, Value};
use sha2::{Digest, Sha512};

/// A decryption failure, naming what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Not a sops document (no `sops` metadata).
    #[error("no sops metadata")]
    NotEncrypted,
    /// The document or its metadata is malformed.
    #[error("malformed sops document: {0}")]
    Malformed(String),
    /// No key given decrypts the data key; names the key types the file has.
    #[error("no key could decrypt the data key (the file is encrypted for: {0})")]
    NoKey(String),
    /// The file is encrypted only for key types this build cannot use.
    #[error("unsupported age recipient type: {0}")]
    Unsupported(String),
    /// A value did not decrypt.
    #[error("failed to decrypt the value at '{0}'")]
    Value(String),
    /// The MAC does not match: the file was changed after encryption.
    #[error("MAC mismatch: the file was modified after it was encrypted")]
    Mac,
    /// The file has no MAC, so nothing proves it is what was encrypted.
    #[error("the file has no MAC: refusing to use it")]
    NoMac,
}

/// The keys to try.
#[derive(Default)]
pub struct Keys {
    age: Vec<age::x25519::Identity>,
    age_pq: Vec<pq::Identity>,
    pgp: Vec<pgp::composed::SignedSecretKey>,
}

/// A decryption key that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl From<String> for KeyError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl Keys {
    /// Adds the age identities (`AGE-SECRET-KEY-…` X25519 and `AGE-SECRET-KEY-PQ-…` post-quantum
    /// lines; comments ignored) of `text`.
    pub fn add_age(&mut self, text: &str) -> Result<usize, KeyError> {
        let mut n = 0;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        {
            if line.starts_with("AGE-SECRET-KEY-PQ-") {
                self.age_pq.push(pq::Identity::parse(line)?);
            } else {
                let id: age::x25519::Identity = line
                    .parse()
                    .map_err(|e: &str| KeyError(format!("invalid age key: {e}")))?;
                self.age.push(id);
            }
            n += 1;
        }
        Ok(n)
    }

    /// Adds the OpenPGP private keys of an armored key block (`*.asc`).
    pub fn add_pgp(&mut self, armored: &str) -> Result<usize, KeyError> {
        use pgp::composed::Deserializable;
        let (keys, _) = pgp::composed::SignedSecretKey::from_armor_many(armored.as_bytes())
            .map_err(|e| KeyError(format!("invalid OpenPGP private key: {e}")))?;
        let mut n = 0;
        for key in keys {
            self.pgp
                .push(key.map_err(|e| KeyError(format!("invalid OpenPGP private key: {e}")))?);
            n += 1;
        }
        Ok(n)
    }
}

/// Whether `doc` carries sops metadata.
pub fn is_encrypted(doc: &Value) -> bool {
    doc.get("sops").is_some_and(Value::is_mapping)
}

fn meta_str<'a>(sops: &'a Value, key: &str) -> Option<&'a str> {
    sops.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The data key, from the first age stanza an identity opens.
fn data_key(sops: &Value, keys: &Keys) -> Result<Vec<u8>, Error> {
    let identities: Vec<&dyn age::Identity> = (keys.age.iter().map(|i| i as &dyn age::Identity))
        .chain(keys.age_pq.iter().map(|i| i as &dyn age::Identity))
        .collect();
    for stanza in sops.get("age").and_then(Value::as_sequence).into_iter().flatten() {
        let Some(enc) = stanza.get("enc").and_then(Value::as_str) else {
            continue;
        };
        let reader = age::armor::ArmoredReader::new(enc.as_bytes());
        let Ok(decryptor) = age::Decryptor::new(reader) else {
            continue;
        };
        if let Ok(mut plain) = decryptor.decrypt(identities.iter().copied()) {
            let mut key = Vec::new();
            if plain.read_to_end(&mut key).is_ok() && key.len() == 32 {
                return Ok(key);
            }
        }
    }
    for stanza in sops.get("pgp").and_then(Value::as_sequence).into_iter().flatten() {
        let Some(enc) = stanza.get("enc").and_then(Value::as_str) else {
            continue;
        };
        for key in &keys.pgp {
            if let Some(data) = pgp_open(enc, key)
                && data.len() == 32
            {
                return Ok(data);
            }
        }
    }
    let age_recipients: Vec<&str> = sops
        .get("age")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("recipient").and_then(Value::as_str))
        .collect();
    // NB: `age1<plugin>1…` recipients (YubiKey, TPM, …) need a plugin binary, which a controller lacks
    let plugin = |r: &&str| {
        let hrp = &r[..r.rfind('1').unwrap_or(0)];
        hrp.strip_prefix("age1")
            .filter(|p| *p != "pq")
            .map(str::to_string)
    };
    if let Some(name) = age_recipients.iter().find_map(&plugin)
        && age_recipients.iter().all(|r| plugin(r).is_some())
        && sops
            .get("pgp")
            .and_then(Value::as_sequence)
            .is_none_or(|s| s.is_empty())
    {
        return Err(Error::Unsupported(format!(
            "age plugin recipient (age1{name}1…): decrypting needs the age-plugin-{name} binary"
        )));
    }
    let types: Vec<&str> = ["age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"]
        .into_iter()
        .filter(|k| {
            sops.get(*k)
                .and_then(Value::as_sequence)
                .is_some_and(|s| !s.is_empty())
        })
        .collect();
    Err(Error::NoKey(if types.is_empty() {
        "no key".into()
    } else {
        types.join(", ")
    }))
}

/// The data key of one PGP stanza, when `key` opens it.
/// Old sops files (gpg without MDC) use legacy symmetrically encrypted data; the values' GCM tags and the
/// MAC still protect what is decrypted with such a data key.
fn pgp_open(armored: &str, key: &pgp::composed::SignedSecretKey) -> Option<Vec<u8>> {
    let parse = || {
        pgp::composed::Message::from_armor(std::io::BufReader::new(armored.as_bytes()))
            .ok()
            .map(|(m, _)| m)
    };
    let password = pgp::types::Password::empty();
    let mut message = match parse()?.decrypt(&password, key) {
        Ok(m) => m,
        Err(_) => parse()?.decrypt_legacy(&password, key).ok()?,
    };
    if message.is_compressed() {
        message = message.decompress().ok()?;
    }
    message.as_data_vec().ok()
}

/// An `ENC[…]` value.
struct Sealed {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: String,
}

fn parse_sealed(s: &str) -> Option<Sealed> {
    let inner = s.strip_prefix("ENC[AES256_GCM,")?.strip_suffix(']')?;
    let (mut data, mut iv, mut tag, mut kind) = (None, None, None, None);
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.decode(v).ok();
    for part in inner.split(',') {
        let (k, v) = part.split_once(':')?;
        match k {
            "data" => data = b64(v),
            "iv" => iv = b64(v),
            "tag" => tag = b64(v),
            "type" => kind = Some(v.to_string()),
            _ => {}
        }
    }
    Some(Sealed {
        data: data?,
        iv: iv?,
        tag: tag?,
        kind: kind?,
    })
}

/// Decrypts one value with `key` and `aad`; returns the plaintext bytes and the sops type.
fn open(s: &str, key: &[u8], aad: &str) -> Option<(Vec<u8>, String)> {
    let sealed = parse_sealed(s)?;
    if sealed.iv.len() != 32 {
        return None;
    }
    let cipher = AesGcm::<Aes256, U32>::new_from_slice(key).ok()?;
    let mut msg = sealed.data.clone();
    msg.extend_from_slice(&sealed.tag);
    let nonce = aes_gcm::aead::Nonce::<AesGcm<Aes256, U32>>::try_from(sealed.iv.as_slice()).ok()?;
    let plain = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &msg,
                aad: aad.as_bytes(),
            },
        )
        .ok()?;
    Some((plain, sealed.kind))
}

/// The value a decrypted plaintext stands for.
fn typed(plain: Vec<u8>, kind: &str) -> Option<Value> {
    let s = String::from_utf8(plain).ok()?;
    Some(match kind {
        "str" | "bytes" => Value::String(s),
        "int" => Value::Number(s.parse::<i64>().ok()?.into()),
        "float" => Value::Number(s.parse::<f64>().ok()?.into()),
        "bool" => Value::Bool(s.eq_ignore_ascii_case("true")),
        _ => Value::String(s),
    })
}

/// The bytes a value adds to the MAC, as sops writes them.
fn mac_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Number(n) => n.to_string().into_bytes(),
        Value::Null => Vec::new(),
        other => serde_yaml::to_string(other).unwrap_or_default().into_bytes(),
    }
}

struct Rules {
    encrypted_regex: Option<regex::Regex>,
    unencrypted_regex: Option<regex::Regex>,
    encrypted_suffix: Option<String>,
    unencrypted_suffix: Option<String>,
    mac_only_encrypted: bool,
}

impl Rules {
    fn of(sops: &Value) -> Result<Self, Error> {
        let re = |k: &str| {
            meta_str(sops, k)
                .map(|r| regex::Regex::new(r).map_err(|e| Error::Malformed(format!("{k}: {e}"))))
                .transpose()
        };
        Ok(Self {
            encrypted_regex: re("encrypted_regex")?,
            unencrypted_regex: re("unencrypted_regex")?,
            encrypted_suffix: meta_str(sops, "encrypted_suffix").map(str::to_string),
            unencrypted_suffix: meta_str(sops, "unencrypted_suffix").map(str::to_string),
            mac_only_encrypted: sops
                .get("mac_only_encrypted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// Whether the value at `path` is encrypted, by sops's rules.
    fn encrypted(&self, path: &[String]) -> bool {
        let mut encrypted = true;
        if let Some(s) = &self.unencrypted_suffix {
            encrypted = !path.iter().any(|p| p.ends_with(s.as_str()));
        }
        if let Some(s) = &self.encrypted_suffix {
            encrypted = path.iter().any(|p| p.ends_with(s.as_str()));
        }
        if let Some(r) = &self.unencrypted_regex {
            encrypted = !path.iter().any(|p| r.is_match(p));
        }
        if let Some(r) = &self.encrypted_regex {
            encrypted = path.iter().any(|p| r.is_match(p));
        }
        encrypted
    }
}

struct Walk<'a> {
    key: &'a [u8],
    rules: Rules,
    hash: Sha512,
}

impl Walk<'_> {
    fn value(&mut self, v: &mut Value, path: &mut Vec<String>) -> Result<(), Error> {
        match v {
            Value::Mapping(map) => self.mapping(map, path),
            Value::Sequence(items) => {
                for item in items {
                    self.value(item, path)?;
                }
                Ok(())
            }
            Value::Tagged(t) => self.value(&mut t.value, path),
            leaf => {
                let encrypted = self.rules.encrypted(path);
                if encrypted && let Some(s) = leaf.as_str() {
                    let aad = format!("{}:", path.join(":"));
                    let (plain, kind) =
                        open(s, self.key, &aad).ok_or_else(|| Error::Value(path.join(".")))?;
                    *leaf = typed(plain, &kind).ok_or_else(|| Error::Value(path.join(".")))?;
                }
                if !self.rules.mac_only_encrypted || encrypted {
                    self.hash.update(mac_bytes(leaf));
                }
                Ok(())
            }
        }
    }

    fn mapping(&mut self, map: &mut Mapping, path: &mut Vec<String>) -> Result<(), Error> {
        for (k, v) in map.iter_mut() {
            path.push(match k {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            });
            let r = self.value(v, path);
            path.pop();
            r?;
        }
        Ok(())
    }
}

/// Decrypts a YAML or JSON sops document with `keys`, verifying its MAC; returns the document without its
/// `sops` metadata.
pub fn decrypt_document(doc: &Value, keys: &Keys) -> Result<Value, Error> {
    let sops = doc
        .get("sops")
        .filter(|_| is_encrypted(doc))
        .ok_or(Error::NotEncrypted)?;
    // NB: without a MAC nothing proves the values are those encrypted: refused before any key is tried
    let mac = meta_str(sops, "mac").ok_or(Error::NoMac)?;
    let key = data_key(sops, keys)?;
    let mut tree = doc.clone();
    let map = tree
        .as_mapping_mut()
        .ok_or_else(|| Error::Malformed("the document is not a mapping".into()))?;
    map.remove("sops");
    let mut walk = Walk {
        key: &key,
        rules: Rules::of(sops)?,
        hash: Sha512::new(),
    };
    walk.mapping(map, &mut Vec::new())?;
    let computed = hex::encode_upper(walk.hash.finalize());
    let modified = meta_str(sops, "lastmodified").unwrap_or_default();
    let (plain, _) = open(mac, &key, modified).ok_or(Error::Mac)?;
    if plain != computed.as_bytes() {
        return Err(Error::Mac);
    }
    Ok(tree)
}

/// sops's flattened metadata (`pgp__list_0__map_enc`, as dotenv and INI files carry it) as its tree.
fn unflatten(pairs: &[(String, String)]) -> Value {
    let mut root = Value::Mapping(Mapping::new());
    for (key, value) in pairs {
        let value = Value::String(value.replace("\\n", "\n"));
        let mut node = &mut root;
        let segs: Vec<&str> = key.split("__").collect();
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            if let Some(index) = seg.strip_prefix("list_").and_then(|n| n.parse::<usize>().ok()) {
                if !node.is_sequence() {
                    *node = Value::Sequence(Vec::new());
                }
                let items = node.as_sequence_mut().expect("a sequence");
                while items.len() <= index {
                    items.push(Value::Mapping(Mapping::new()));
                }
                node = &mut items[index];
                continue;
            }
            let name = seg.strip_prefix("map_").unwrap_or(seg);
            if !node.is_mapping() {
                *node = Value::Mapping(Mapping::new());
            }
            let map = node.as_mapping_mut().expect("a mapping");
            if last {
                map.insert(Value::String(name.into()), value.clone());
                break;
            }
            node = map.entry(Value::String(name.into())).or_insert(Value::Null);
        }
    }
    root
}

/// Decrypts a dotenv file (`KEY=ENC[…]` lines, `sops_*` metadata lines); returns the `KEY=value` lines.
pub fn decrypt_dotenv(text: &str, keys: &Keys) -> Result<String, Error> {
    let mut doc = Mapping::new();
    let mut meta = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| Error::Malformed(format!("'{line}' is not KEY=VALUE")))?;
        match k.strip_prefix("sops_") {
            Some(m) => meta.push((m.to_string(), v.to_string())),
            None => {
                doc.insert(Value::String(k.to_string()), Value::String(v.to_string()));
            }
        }
    }
    doc.insert(Value::String("sops".into()), unflatten(&meta));
    let plain = decrypt_document(&Value::Mapping(doc), keys)?;
    let mut out = String::new();
    for (k, v) in plain.as_mapping().into_iter().flatten() {
        out.push_str(&format!("{}={}\n", k.as_str().unwrap_or_default(), scalar(v)));
    }
    Ok(out)
}

/// Decrypts an INI file (sections of `key = ENC[…]`, metadata in `[sops]`); returns the INI text.
pub fn decrypt_ini(text: &str, keys: &Keys) -> Result<String, Error> {
    let mut doc = Mapping::new();
    let mut meta = Vec::new();
    let mut section: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_string());
            if name != "sops" {
                doc.insert(Value::String(name.into()), Value::Mapping(Mapping::new()));
            }
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| Error::Malformed(format!("'{line}' is not key = value")))?;
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        match section.as_deref() {
            Some("sops") => meta.push((k, v)),
            Some(name) => {
                if let Some(map) = doc.get_mut(name).and_then(Value::as_mapping_mut) {
                    map.insert(Value::String(k), Value::String(v));
                }
            }
            None => return Err(Error::Malformed(format!("'{line}' is outside a section"))),
        }
    }
    doc.insert(Value::String("sops".into()), unflatten(&meta));
    let plain = decrypt_document(&Value::Mapping(doc), keys)?;
    let mut out = String::new();
    for (name, entries) in plain.as_mapping().into_iter().flatten() {
        out.push_str(&format!("[{}]\n", name.as_str().unwrap_or_default()));
        for (k, v) in entries.as_mapping().into_iter().flatten() {
            out.push_str(&format!("{} = {}\n", k.as_str().unwrap_or_default(), scalar(v)));
        }
    }
    Ok(out)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// The decryptor of a build: documents with sops metadata, and generator files in sops's dotenv, INI,
/// YAML/JSON or binary (`{"data": …}`) formats; anything else passes through.
pub struct Decryptor {
    keys: Keys,
}

impl Decryptor {
    /// With `keys`.
    pub fn new(keys: Keys) -> Self {
        Self { keys }
    }
}

impl driftless_kustomize::yaml::Decrypt for Decryptor {
    fn document(&self, doc: Value, origin: &str) -> Result<Value, String> {
        let mut doc = if is_encrypted(&doc) {
            decrypt_document(&doc, &self.keys).map_err(|e| format!("{origin}: sops: {e}"))?
        } else {
            doc
        };
        // a Secret's data values may themselves be sops documents (JSON, YAML, dotenv), as Flux decrypts
        if doc.get("kind").and_then(Value::as_str) == Some("Secret")
            && let Some(data) = doc.get_mut("data").and_then(Value::as_mapping_mut)
        {
            for (key, value) in data.iter_mut() {
                let Some(encoded) = value.as_str() else { continue };
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
                    continue;
                };
                let name = std::path::PathBuf::from(key.as_str().unwrap_or_default());
                let plain = self.file(bytes.clone(), &name)?;
                if plain != bytes {
                    *value = Value::String(base64::engine::general_purpose::STANDARD.encode(plain));
                }
            }
        }
        Ok(doc)
    }

    fn file(&self, bytes: Vec<u8>, path: &std::path::Path) -> Result<Vec<u8>, String> {
        let fail = |e: Error| format!("{}: sops: {e}", path.display());
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Ok(bytes);
        };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if (ext == "env" || text.contains("\nsops_mac=") || text.starts_with("sops_mac="))
            && text.lines().any(|l| l.starts_with("sops_mac="))
        {
            return decrypt_dotenv(text, &self.keys)
                .map(String::into_bytes)
                .map_err(fail);
        }
        if ext == "ini" && text.lines().any(|l| l.trim() == "[sops]") {
            return decrypt_ini(text, &self.keys)
                .map(String::into_bytes)
                .map_err(fail);
        }
        let Ok(doc) = serde_yaml::from_str::<Value>(text) else {
            return Ok(bytes);
        };
        if !is_encrypted(&doc) {
            return Ok(bytes);
        }
        let plain = decrypt_document(&doc, &self.keys).map_err(fail)?;
        let is_binary = doc.as_mapping().is_some_and(|m| m.len() == 2) && doc.get("data").is_some();
        if is_binary && !matches!(ext, "yaml" | "yml" | "json") {
            return Ok(scalar(&plain["data"]).into_bytes());
        }
        if ext == "json" || text.trim_start().starts_with('{') {
            return serde_json::to_vec_pretty(&plain).map_err(|e| e.to_string());
        }
        serde_yaml::to_string(&plain)
            .map(String::into_bytes)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    /// `fixtures/sops` of `../shared`, or `None` after saying loudly that the test is skipped (only a
    /// user's clone lacks it; CI always has it).
    fn fixtures() -> Option<std::path::PathBuf> {
        let dir = driftless_testkit::shared_dir().map(|d| d.join("fixtures/sops"));
        if dir.is_none() {
            eprintln!("SKIPPED: ../shared/fixtures is absent (a user's clone); CI always has it");
        }
        dir
    }

    fn fixture(path: &str) -> Option<String> {
        Some(std::fs::read_to_string(fixtures()?.join(path)).expect("the fixture"))
    }

    /// Flux's `algorithms/<name>.yaml` and the keys of `keys/<key>` (one age identity), when the fixtures are there.
    fn age_fixture(name: &str, key: &str) -> Option<(Value, Keys)> {
        let doc = fixture(&format!("flux/controller/testdata/sops/algorithms/{name}.yaml"))?;
        let key = fixture(&format!("flux/controller/testdata/sops/keys/{key}"))?;
        let mut keys = Keys::default();
        assert_eq!(keys.add_age(&key), Ok(1));
        Some((serde_yaml::from_str(&doc).unwrap(), keys))
    }

    #[test]
    fn an_age_encrypted_secret_decrypts_and_its_mac_verifies() {
        let Some((doc, keys)) = age_fixture("age", "age.txt") else {
            return;
        };
        let plain = decrypt_document(&doc, &keys).unwrap();
        assert!(plain.get("sops").is_none());
        let value = plain["stringData"]["key"].as_str().unwrap();
        assert!(!value.starts_with("ENC["), "{value}");
        assert_eq!(plain["metadata"]["name"], "age");

        // a changed value breaks the MAC; a wrong key opens nothing
        let mut tampered = doc.clone();
        tampered["metadata"]["name"] = Value::String("other".into());
        assert_eq!(decrypt_document(&tampered, &keys), Err(Error::Mac));
        let mut other = Keys::default();
        other
            .add_age(&fixture("flux/controller/testdata/sops/keys/age-global.txt").unwrap())
            .unwrap();
        assert_eq!(decrypt_document(&doc, &other), Err(Error::NoKey("age".into())));
    }

    #[test]
    fn pgp_encrypted_documents_decrypt_in_yaml_and_json() {
        let Some(key) = fixture("getsops/pgp/sops_functional_tests_key.asc") else {
            return;
        };
        let mut keys = Keys::default();
        assert!(keys.add_pgp(&key).unwrap() >= 1);
        for (file, field, want) in [
            ("format.enc.yaml", "foo", "bar"),
            ("format.enc.json", "foo", "bar"),
        ] {
            let text = fixture(&format!("getsops/functional-tests/res/{file}")).unwrap();
            let doc: Value = serde_yaml::from_str(&text).unwrap();
            let plain = decrypt_document(&doc, &keys).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(plain[field], want, "{file}");
        }
        let flux_key = fixture("flux/controller/testdata/sops/keys/pgp.asc").unwrap();
        let mut flux = Keys::default();
        flux.add_pgp(&flux_key).unwrap();
        let doc: Value =
            serde_yaml::from_str(&fixture("flux/controller/testdata/sops/algorithms/pgp.yaml").unwrap())
                .unwrap();
        decrypt_document(&doc, &flux).unwrap();
    }

    #[test]
    fn a_file_without_mac_is_refused_and_comments_decrypt() {
        let Some(key) = fixture("getsops/pgp/sops_functional_tests_key.asc") else {
            return;
        };
        let mut keys = Keys::default();
        keys.add_pgp(&key).unwrap();
        let doc: Value =
            serde_yaml::from_str(&fixture("getsops/functional-tests/res/no_mac.yaml").unwrap()).unwrap();
        assert_eq!(decrypt_document(&doc, &keys), Err(Error::NoMac));
        let doc: Value =
            serde_yaml::from_str(&fixture("getsops/functional-tests/res/comments.enc.yaml").unwrap())
                .unwrap();
        let plain = decrypt_document(&doc, &keys).unwrap();
        assert_eq!(plain["lorem"], "ipsum");
        assert_eq!(plain["dolor"], "sit");
    }

    #[test]
    fn dotenv_and_ini_files_decrypt() {
        let Some(key) = fixture("getsops/pgp/sops_functional_tests_key.asc") else {
            return;
        };
        let mut keys = Keys::default();
        keys.add_pgp(&key).unwrap();
        let env = decrypt_dotenv(
            &fixture("getsops/functional-tests/res/format.enc.env").unwrap(),
            &keys,
        )
        .unwrap();
        assert_eq!(env.replace(' ', ""), "foo=bar\n");
        let ini = decrypt_ini(
            &fixture("getsops/functional-tests/res/format.enc.ini").unwrap(),
            &keys,
        )
        .unwrap();
        assert_eq!(ini, "[foo]\nbar = baz\n");
    }

    #[test]
    fn a_key_type_we_cannot_use_is_named_and_the_global_key_opens_its_file() {
        let (Some(doc), Some(global)) = (
            fixture("flux/controller/testdata/sops/algorithms/age.yaml"),
            fixture("flux/controller/testdata/sops/keys/age-global.txt"),
        ) else {
            return;
        };
        let mut doc: Value = serde_yaml::from_str(&doc).unwrap();
        let vault: Value =
            serde_yaml::from_str("- vault_address: https://vault.example\n  enc: x\n").unwrap();
        doc["sops"]["age"] = Value::Sequence(Vec::new());
        doc["sops"]["hc_vault"] = vault;
        let err = decrypt_document(&doc, &Keys::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no key could decrypt the data key (the file is encrypted for: hc_vault)"
        );
        let mut keys = Keys::default();
        keys.add_age(&global).unwrap();
        let secret: Value =
            serde_yaml::from_str(&fixture("flux/controller/testdata/sops/global/secret.yaml").unwrap())
                .unwrap();
        decrypt_document(&secret, &keys).unwrap();
    }

    #[test]
    fn builds_decrypt_resources_and_generator_files() {
        let Some(dir) = fixtures().map(|d| d.join("flux/controller/testdata/sops")) else {
            return;
        };
        let mut keys = Keys::default();
        keys.add_age(&std::fs::read_to_string(dir.join("keys/age.txt")).unwrap())
            .unwrap();
        keys.add_pgp(&std::fs::read_to_string(dir.join("keys/pgp.asc")).unwrap())
            .unwrap();
        let decryptor = Decryptor::new(keys);
        for folder in ["envs", "files"] {
            let objects = driftless_kustomize::build_with(
                &dir.join(folder),
                std::path::Path::new("."),
                Some(&decryptor),
            )
            .unwrap_or_else(|e| panic!("{folder}: {e}"));
            let cm = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
            let value = cm["data"]["key"].as_str().unwrap();
            assert!(!value.contains("ENC["), "{folder}: {value}");
            let secret = objects.iter().find(|o| o["kind"] == "Secret").unwrap();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(secret["data"]["key"].as_str().unwrap())
                .unwrap();
            assert_eq!(
                decoded,
                value.as_bytes(),
                "{folder}: the Secret holds the same plaintext"
            );
        }
        // encrypted strategic-merge patches, and Secret values that are sops documents themselves
        for folder in ["patches", "inside"] {
            let objects = driftless_kustomize::build_with(
                &dir.join(folder),
                std::path::Path::new("."),
                Some(&decryptor),
            )
            .unwrap_or_else(|e| panic!("{folder}: {e}"));
            assert!(!objects.is_empty(), "{folder}");
            for o in &objects {
                for v in o
                    .get("data")
                    .and_then(|d| d.as_object())
                    .into_iter()
                    .flatten()
                    .map(|(_, v)| v)
                {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .unwrap_or_default();
                    let text = String::from_utf8_lossy(&decoded);
                    assert!(
                        !text.contains("ENC[") && !text.contains("\"sops\""),
                        "{folder}: {text}"
                    );
                }
            }
        }
        // resources: age, pgp and a plaintext one (age-pq is left out: no maintained crate opens it yet)
        let tmp = tempfile::tempdir().unwrap();
        for f in ["age.yaml", "pgp.yaml", "vault.yaml"] {
            std::fs::copy(dir.join("algorithms").join(f), tmp.path().join(f)).unwrap();
        }
        std::fs::write(
            tmp.path().join("kustomization.yaml"),
            "resources:\n- age.yaml\n- pgp.yaml\n- vault.yaml\n",
        )
        .unwrap();
        let objects =
            driftless_kustomize::build_with(tmp.path(), std::path::Path::new("."), Some(&decryptor)).unwrap();
        assert_eq!(objects.len(), 3);
        for o in &objects {
            assert!(o.get("sops").is_none());
            let text = serde_json::to_string(o).unwrap();
            assert!(!text.contains("ENC["), "{text}");
        }
    }

    #[test]
    fn post_quantum_age_decrypts_with_its_hybrid_key_only() {
        let Some((doc, keys)) = age_fixture("age-pq", "age-pq.txt") else {
            return;
        };
        let plain = decrypt_document(&doc, &keys).unwrap();
        assert_eq!(plain["metadata"]["name"], "age-pq");
        let value = plain["stringData"]["key"].as_str().unwrap();
        assert!(!value.is_empty() && !value.starts_with("ENC["), "{value}");

        // another hybrid key (any 32-byte seed is one) or an X25519 key opens nothing
        let mut other = Keys::default();
        let seed =
            bech32::encode::<bech32::Bech32>(bech32::Hrp::parse("age-secret-key-pq-").unwrap(), &[7; 32])
                .unwrap()
                .to_uppercase();
        assert_eq!(other.add_age(&seed), Ok(1));
        other
            .add_age(&fixture("flux/controller/testdata/sops/keys/age.txt").unwrap())
            .unwrap();
        assert_eq!(decrypt_document(&doc, &other), Err(Error::NoKey("age".into())));
        assert!(Keys::default().add_age("AGE-SECRET-KEY-PQ-1QQQQ").is_err());
    }

    #[test]
    fn age_plugin_recipients_are_named_as_unsupported() {
        let Some(doc) = fixture("flux/controller/testdata/sops/algorithms/age.yaml") else {
            return;
        };
        let mut doc: Value = serde_yaml::from_str(&doc).unwrap();
        doc["sops"]["age"][0]["recipient"] =
            Value::String("age1yubikey1qgg72x2qfk9wg3wh0qg9u0v7l5dkq4jx69fv80p6wdus3ftg6flwg5dz2dp".into());
        let err = decrypt_document(&doc, &Keys::default()).unwrap_err().to_string();
        assert!(
            err.starts_with("unsupported age recipient type: age plugin recipient (age1yubikey1…)"),
            "{err}"
        );
    }

    /// A copy of the fixture tree without `remote` (it needs the network), as the fixtures' README says.
    fn root_without_remote(dir: &std::path::Path) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for entry in ["algorithms", "envs", "files", "patches", "inside", "component"] {
            let to = tmp.path().join(entry);
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(dir.join(entry)).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        }
        let root = std::fs::read_to_string(dir.join("kustomization.yaml"))
            .unwrap()
            .replace("  - remote\n", "");
        std::fs::write(tmp.path().join("kustomization.yaml"), root).unwrap();
        tmp
    }

    #[test]
    fn the_fixture_root_builds_without_remote_with_every_secret_decrypted() {
        let Some(dir) = fixtures().map(|d| d.join("flux/controller/testdata/sops")) else {
            return;
        };
        let mut keys = Keys::default();
        for k in ["age.txt", "age-global.txt", "age-pq.txt"] {
            keys.add_age(&std::fs::read_to_string(dir.join("keys").join(k)).unwrap())
                .unwrap();
        }
        keys.add_pgp(&std::fs::read_to_string(dir.join("keys/pgp.asc")).unwrap())
            .unwrap();
        let decryptor = Decryptor::new(keys);
        // with `remote`, as the fixture is: it needs the network, which builds never use
        let err = driftless_kustomize::build_with(&dir, std::path::Path::new("."), Some(&decryptor))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("remote/kustomization.yaml") && err.contains("remote resources not allowed"),
            "{err}"
        );
        let root = root_without_remote(&dir);
        let objects =
            driftless_kustomize::build_with(root.path(), std::path::Path::new("."), Some(&decryptor))
                .unwrap();
        // what Flux's own decryption test expects of these fixtures
        let value = |name: &str, key: &str| {
            let o = objects
                .iter()
                .find(|o| o["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            if let Some(v) = o["stringData"][key].as_str() {
                return v.to_string();
            }
            let v = o["data"][key]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no {key}"));
            match o["kind"].as_str() {
                Some("Secret") => {
                    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).unwrap()).unwrap()
                }
                _ => v.to_string(),
            }
        };
        for name in [
            "sops-algo-age",
            "sops-algo-age-pq",
            "sops-algo-pgp",
            "sops-algo-vault",
            "sops-component",
            "sops-envs-secret",
            "sops-files-secret",
            "sops-inside-secret",
            "sops-envs-configmap",
            "sops-files-configmap",
        ] {
            assert_eq!(value(name, "key"), "value", "{name}");
        }
        assert_eq!(value("sops-patches-secret", "key"), "merge1");
        assert_eq!(value("sops-patches-secret", "merge2"), "merge2");
        let text = serde_json::to_string(&objects).unwrap();
        assert!(!text.contains("ENC["), "something stayed encrypted");
    }

    #[test]
    fn plain_documents_are_not_sops_documents() {
        let doc: Value = serde_yaml::from_str("apiVersion: v1\nkind: Secret\n").unwrap();
        assert_eq!(decrypt_document(&doc, &Keys::default()), Err(Error::NotEncrypted));
    }
}
