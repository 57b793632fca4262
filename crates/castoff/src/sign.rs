//! minisign signatures: reads a minisign secret key (unencrypted, or encrypted with a password
//! through scrypt) and writes `<file>.minisig` files that the stock `minisign -V` verifies.
//!
//! Formats (minisign's documentation and `minisign.h`):
//!
//! - secret key file: an `untrusted comment:` line, then base64 of `Ed` ‖ kdf (`Sc`, or two
//!   zero bytes when unencrypted) ‖ `B2` ‖ salt (32) ‖ opslimit (u64 LE) ‖ memlimit (u64 LE) ‖
//!   [keynum (8) ‖ Ed25519 secret key (64: seed ‖ public) ‖ checksum (32)], the bracket XORed
//!   with scrypt(password, salt) when encrypted. The checksum is BLAKE2b-256 of `Ed` ‖ keynum ‖
//!   secret key, so a wrong password is detected instead of producing bad signatures.
//! - signature file: an `untrusted comment:` line; base64 of `ED` ‖ keynum ‖ Ed25519 signature
//!   of the BLAKE2b-512 hash of the file (the "prehashed" algorithm, fine for large files);
//!   a `trusted comment:` line; base64 of the Ed25519 signature of (signature ‖ trusted
//!   comment), which makes the trusted comment tamper-evident.
//!
//! Ed25519 signatures are deterministic and the trusted comment's timestamp is
//! `SOURCE_DATE_EPOCH`, so signing the same bytes twice gives the same `.minisig` file.

use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::Path;

use crate::hint::Hinted;
use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use blake2::Digest as _;
use ed25519_dalek::Signer as _;

/// Environment variable holding the secret key file's contents (CI secrets are strings).
pub const SIGN_KEY_ENV: &str = "CASTOFF_SIGN_KEY";
/// Environment variable holding the password of an encrypted secret key.
pub const SIGN_PASSWORD_ENV: &str = "CASTOFF_SIGN_PASSWORD";

/// Bytes of the decoded secret key: algorithms (6), salt (32), limits (16), keynum_sk (104).
const SECRET_KEY_BYTES: usize = 2 + 2 + 2 + 32 + 8 + 8 + KEYNUM_SK_BYTES;
/// keynum (8) ‖ secret key (64) ‖ checksum (32).
const KEYNUM_SK_BYTES: usize = 8 + 64 + 32;

/// A decrypted minisign secret key. `Debug` shows only the key id, never key material.
pub struct SigningKey {
    key_id: [u8; 8],
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id_hex())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A password that never appears in `Debug` output.
pub struct Password(String);

impl Password {
    pub fn new(password: String) -> Password {
        Password(password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl SigningKey {
    /// Parses a minisign secret key file's text, decrypting it with `password` when it is
    /// encrypted. Errors never include key bytes or the password.
    pub fn from_minisign(text: &str, password: Option<&Password>) -> anyhow::Result<SigningKey> {
        let encoded = key_line(text).ok_or_else(|| {
            Hinted::new(
                "the signing key holds no key line",
                "pass the file `minisign -G` wrote as the secret key (usually minisign.key), not the public key",
            )
        })?;
        let bytes = BASE64
            .decode(encoded)
            .ok()
            .filter(|bytes| bytes.len() == SECRET_KEY_BYTES);
        let Some(bytes) = bytes else {
            bail!(Hinted::new(
                format!(
                    "the signing key is not a minisign secret key (expected base64 of {SECRET_KEY_BYTES} bytes)"
                ),
                "pass the secret key written by `minisign -G` (not the .pub file)"
            ));
        };
        let (sig_alg, rest) = bytes.split_at(2);
        let (kdf_alg, rest) = rest.split_at(2);
        let (chk_alg, rest) = rest.split_at(2);
        let (salt, rest) = rest.split_at(32);
        let (opslimit, rest) = rest.split_at(8);
        let (memlimit, keynum_sk) = rest.split_at(8);
        if sig_alg != b"Ed" || chk_alg != b"B2" {
            bail!(Hinted::new(
                "the signing key uses an unsupported algorithm",
                "generate an Ed25519 key with `minisign -G`"
            ));
        }
        let mut keynum_sk: Vec<u8> = keynum_sk.to_vec();
        match kdf_alg {
            b"\0\0" => {}
            b"Sc" => {
                let Some(password) = password else {
                    bail!(Hinted::new(
                        "the signing key is encrypted and no password was given",
                        format!(
                            "set {SIGN_PASSWORD_ENV}, or use a key generated with `minisign -G -W` (unencrypted)"
                        )
                    ));
                };
                let opslimit = u64::from_le_bytes(opslimit.try_into().expect("8 bytes"));
                let memlimit = u64::from_le_bytes(memlimit.try_into().expect("8 bytes"));
                let stream = scrypt_stream(password, salt, opslimit, memlimit)?;
                for (byte, key) in keynum_sk.iter_mut().zip(stream) {
                    *byte ^= key;
                }
            }
            _ => bail!(Hinted::new(
                "the signing key uses an unknown key derivation",
                "generate the key with `minisign -G`"
            )),
        }
        let (key_id, rest) = keynum_sk.split_at(8);
        let (secret, checksum) = rest.split_at(64);
        let mut hasher = blake2::Blake2b::<blake2::digest::consts::U32>::new();
        hasher.update(sig_alg);
        hasher.update(key_id);
        hasher.update(secret);
        // minisign 0.11 leaves the checksum of an unencrypted (`-W`) key all zero: there is no
        // password to check. The public half is still compared below.
        let unchecked = kdf_alg == b"\0\0" && checksum.iter().all(|byte| *byte == 0);
        if !unchecked && hasher.finalize().as_slice() != checksum {
            bail!(Hinted::new(
                "the signing key's checksum does not match: wrong password, or a damaged key",
                format!(
                    "check {SIGN_PASSWORD_ENV}; the key file must be exactly what `minisign -G` wrote"
                )
            ));
        }
        let seed: [u8; 32] = secret[..32].try_into().expect("32 bytes");
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if key.verifying_key().as_bytes() != &secret[32..] {
            bail!(Hinted::new(
                "the signing key's public half does not match its secret half",
                "regenerate the key with `minisign -G`"
            ));
        }
        Ok(SigningKey {
            key_id: key_id.try_into().expect("8 bytes"),
            key,
        })
    }

    /// The key id as minisign prints it (upper-case hex of the little-endian number).
    pub fn key_id_hex(&self) -> String {
        key_id_hex(&self.key_id)
    }

    /// The public key file (`minisign.pub`) matching this key (the tests' verifying keys;
    /// users have minisign's own).
    #[cfg(test)]
    fn public_key_file(&self) -> String {
        let mut bytes = b"Ed".to_vec();
        bytes.extend_from_slice(&self.key_id);
        bytes.extend_from_slice(self.key.verifying_key().as_bytes());
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.key_id_hex(),
            BASE64.encode(bytes)
        )
    }

    /// The `.minisig` text for `contents`, named `file_name` in the trusted comment.
    pub fn signature(
        &self,
        contents: impl std::io::Read,
        file_name: &str,
        timestamp: u64,
    ) -> anyhow::Result<String> {
        let mut hasher = blake2::Blake2b512::new();
        let mut reader = std::io::BufReader::new(contents);
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = reader.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        let hash = hasher.finalize();
        let signature = self.key.sign(&hash).to_bytes();
        // Tabs and newlines would break the line format; file names here never have them.
        let file_name: String = file_name
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        let trusted_comment = format!("timestamp:{timestamp}\tfile:{file_name}\thashed");
        let mut signed = signature.to_vec();
        signed.extend_from_slice(trusted_comment.as_bytes());
        let global = self.key.sign(&signed).to_bytes();
        let mut line = b"ED".to_vec();
        line.extend_from_slice(&self.key_id);
        line.extend_from_slice(&signature);
        Ok(format!(
            "untrusted comment: signature from castoff, key {}\n{}\ntrusted comment: {trusted_comment}\n{}\n",
            self.key_id_hex(),
            BASE64.encode(line),
            BASE64.encode(global)
        ))
    }

    /// Writes `<path>.minisig` beside `path`.
    pub fn sign_file(&self, path: &Path, timestamp: u64) -> anyhow::Result<()> {
        let file =
            fs::File::open(path).with_context(|| format!("could not read {}", path.display()))?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = self.signature(file, &name, timestamp)?;
        let mut target = path.as_os_str().to_owned();
        target.push(".minisig");
        fs::write(&target, text)
            .with_context(|| format!("could not write {}", Path::new(&target).display()))
    }
}

/// libsodium's `crypto_pwhash_scryptsalsa208sha256` parameter choice from (opslimit,
/// memlimit), which minisign stores in the key, then scrypt for the 104-byte XOR stream.
fn scrypt_stream(
    password: &Password,
    salt: &[u8],
    opslimit: u64,
    memlimit: u64,
) -> anyhow::Result<Vec<u8>> {
    let opslimit = opslimit.max(32768);
    let r: u64 = 8;
    let (log_n, p) = if opslimit < memlimit / 32 {
        let max_n = opslimit / (r * 4);
        (log2_below(max_n), 1)
    } else {
        let max_n = memlimit / (r * 128);
        let log_n = log2_below(max_n);
        let max_rp = ((opslimit / 4) / (1u64 << log_n)).min(0x3fff_ffff);
        (log_n, (max_rp / r).max(1))
    };
    let params = scrypt::Params::new(log_n, r as u32, p as u32, 64).map_err(|_| {
        anyhow::Error::new(Hinted::new(
            "the signing key's scrypt limits are out of range",
            "regenerate the key with `minisign -G`",
        ))
    })?;
    let mut stream = vec![0u8; KEYNUM_SK_BYTES];
    scrypt::scrypt(password.0.as_bytes(), salt, &params, &mut stream)
        .map_err(|_| anyhow::anyhow!("scrypt failed to derive the key stream"))?;
    Ok(stream)
}

/// The smallest `log2` with `2^log2 > max / 2` (libsodium's loop), at least 1.
fn log2_below(max: u64) -> u8 {
    let mut log_n = 1u8;
    while log_n < 63 && (1u64 << log_n) <= max / 2 {
        log_n += 1;
    }
    log_n
}

/// Environment variable holding the public key file's contents for `publish` to check the
/// manifest's signature with (`--verify-key FILE` wins).
pub const VERIFY_KEY_ENV: &str = "CASTOFF_VERIFY_KEY";

/// A minisign public key (`minisign.pub`): checks the `.minisig` signatures `dist` writes.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    key_id: [u8; 8],
    key: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    /// Parses a minisign public key file's text (an optional `untrusted comment:` line, then
    /// base64 of `Ed` ‖ key id ‖ 32-byte Ed25519 key).
    pub fn from_minisign(text: &str) -> anyhow::Result<VerifyingKey> {
        let hint = "pass the public key file `minisign -G` wrote (usually minisign.pub), not the secret key";
        let encoded =
            key_line(text).ok_or_else(|| Hinted::new("the public key holds no key line", hint))?;
        let bytes = BASE64
            .decode(encoded)
            .ok()
            .filter(|bytes| bytes.len() == 42 && bytes.starts_with(b"Ed"))
            .ok_or_else(|| Hinted::new("that is not a minisign public key", hint))?;
        let key_id: [u8; 8] = bytes[2..10].try_into().expect("8 bytes");
        let key_bytes: [u8; 32] = bytes[10..42].try_into().expect("32 bytes");
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes)
            .ok()
            .ok_or_else(|| Hinted::new("the public key is not a valid Ed25519 key", hint))?;
        Ok(VerifyingKey { key_id, key })
    }

    /// The key id as minisign prints it.
    pub fn key_id_hex(&self) -> String {
        key_id_hex(&self.key_id)
    }

    /// Checks `<path>.minisig` against `contents` (the bytes of `path` already read): the
    /// signature by this key over the file (prehashed `ED` or legacy `Ed`), the signature over
    /// the trusted comment, and that the trusted comment names this file.
    pub fn verify_file(&self, path: &Path, contents: &[u8]) -> anyhow::Result<()> {
        let mut signature_path = path.as_os_str().to_owned();
        signature_path.push(".minisig");
        let signature_path = std::path::PathBuf::from(signature_path);
        let refuse = |problem: &str| {
            anyhow::Error::new(Hinted::new(
                format!(
                    "{} is not signed by the key {} ({problem}); nothing was sent",
                    path.display(),
                    self.key_id_hex()
                ),
                format!(
                    "publish only what `dist --sign-key` signed with the matching secret key, or check --verify-key / {VERIFY_KEY_ENV}"
                ),
            ))
        };
        let text = castoff_archive::foreign::read_regular(&signature_path, 64 * 1024)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| refuse(&format!("no readable {}", signature_path.display())))?;
        let mut lines = text.lines().map(str::trim_end);
        let (Some(_untrusted), Some(signature_line), Some(trusted), Some(global_line)) =
            (lines.next(), lines.next(), lines.next(), lines.next())
        else {
            return Err(refuse("the signature file is not in minisign's format"));
        };
        let trusted_comment = trusted
            .strip_prefix("trusted comment: ")
            .ok_or_else(|| refuse("the signature file has no trusted comment"))?;
        let signature_bytes = BASE64
            .decode(signature_line)
            .ok()
            .filter(|bytes| bytes.len() == 74)
            .ok_or_else(|| refuse("the signature line is not a minisign signature"))?;
        if signature_bytes[2..10] != self.key_id {
            return Err(refuse("it was signed by another key"));
        }
        let signature = ed25519_dalek::Signature::from_slice(&signature_bytes[10..74])
            .map_err(|_| refuse("the signature is malformed"))?;
        let valid = match &signature_bytes[..2] {
            b"ED" => {
                let hash = blake2::Blake2b512::digest(contents);
                self.key.verify_strict(&hash, &signature).is_ok()
            }
            b"Ed" => self.key.verify_strict(contents, &signature).is_ok(),
            _ => false,
        };
        if !valid {
            return Err(refuse(
                "the signature does not match the file: it changed after it was signed",
            ));
        }
        let global = BASE64
            .decode(global_line)
            .ok()
            .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
            .ok_or_else(|| refuse("the trusted comment's signature is malformed"))?;
        let mut signed = signature_bytes[10..74].to_vec();
        signed.extend_from_slice(trusted_comment.as_bytes());
        if self.key.verify_strict(&signed, &global).is_err() {
            return Err(refuse("the trusted comment was altered"));
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !trusted_comment
            .split('\t')
            .any(|field| field == format!("file:{name}"))
        {
            return Err(refuse("the signature is for another file"));
        }
        Ok(())
    }
}

/// A minisign key file's text: the file's when one is named, else the environment variable's
/// (CI secrets are strings); none when neither is given.
fn key_text(file: Option<&Path>, variable: &str, kind: &str) -> anyhow::Result<Option<String>> {
    match file {
        Some(path) => fs::read_to_string(path).map(Some).map_err(|error| {
            anyhow::Error::new(
                Hinted::new(
                    format!("could not read the {kind} key {}", path.display()),
                    format!("pass the minisign {kind} key file"),
                )
                .because(error),
            )
        }),
        None => Ok(std::env::var(variable)
            .ok()
            .filter(|text| !text.trim().is_empty())),
    }
}

/// The base64 line of a minisign key file (after its `untrusted comment:` line).
fn key_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
}

/// A key id as minisign prints it (upper-case hex of the little-endian number).
fn key_id_hex(key_id: &[u8; 8]) -> String {
    key_id
        .iter()
        .rev()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

/// The public key from `--verify-key FILE` or `CASTOFF_VERIFY_KEY`; none when neither is set.
pub fn verifying_key_from(file: Option<&Path>) -> anyhow::Result<Option<VerifyingKey>> {
    let Some(text) = key_text(file, VERIFY_KEY_ENV, "public")? else {
        return Ok(None);
    };
    VerifyingKey::from_minisign(&text).map(Some)
}

/// The key from `--sign-key FILE` or `CASTOFF_SIGN_KEY`, with `CASTOFF_SIGN_PASSWORD`; none
/// when neither is set.
pub fn signing_key_from(file: Option<&Path>) -> anyhow::Result<Option<SigningKey>> {
    let Some(text) = key_text(file, SIGN_KEY_ENV, "secret")? else {
        return Ok(None);
    };
    let password = std::env::var(SIGN_PASSWORD_ENV).ok().map(Password::new);
    SigningKey::from_minisign(&text, password.as_ref()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed unencrypted key built here from a seed, in minisign's layout.
    fn key_text(seed: [u8; 32]) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let key_id = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut secret = seed.to_vec();
        secret.extend_from_slice(key.verifying_key().as_bytes());
        let mut hasher = blake2::Blake2b::<blake2::digest::consts::U32>::new();
        hasher.update(b"Ed");
        hasher.update(key_id);
        hasher.update(&secret);
        let mut bytes = b"Ed\0\0B2".to_vec();
        bytes.extend_from_slice(&[0; 48]);
        bytes.extend_from_slice(&key_id);
        bytes.extend_from_slice(&secret);
        bytes.extend_from_slice(&hasher.finalize());
        format!("untrusted comment: test key\n{}\n", BASE64.encode(bytes))
    }

    #[test]
    fn signatures_verify_with_the_public_key_and_changes_are_refused() {
        let key = SigningKey::from_minisign(&key_text([9; 32]), None).unwrap();
        let public = VerifyingKey::from_minisign(&key.public_key_file()).unwrap();
        let other_key = VerifyingKey::from_minisign(
            &SigningKey::from_minisign(&key_text([8; 32]), None)
                .unwrap()
                .public_key_file(),
        )
        .unwrap();
        // The test keys share one key id: give the other key its own, as minisign would.
        let other = VerifyingKey {
            key_id: [9; 8],
            ..other_key.clone()
        };
        let dir = std::env::temp_dir().join(format!("castoff-verify-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("manifest.json");
        fs::write(&file, b"{\"apps\": []}\n").unwrap();
        key.sign_file(&file, 1_700_000_000).unwrap();
        public.verify_file(&file, b"{\"apps\": []}\n").unwrap();
        let problem = |key: &VerifyingKey, contents: &[u8]| {
            let text = key.verify_file(&file, contents).unwrap_err().to_string();
            text[text.find('(').unwrap() + 1..text.find(')').unwrap()].to_owned()
        };
        assert_eq!(
            problem(&public, b"{\"apps\": [1]}\n"),
            "the signature does not match the file: it changed after it was signed"
        );
        assert_eq!(
            problem(&other, b"{\"apps\": []}\n"),
            "it was signed by another key"
        );
        // A trusted comment naming another file, or altered, is refused too.
        let signature = dir.join("manifest.json.minisig");
        let text = fs::read_to_string(&signature).unwrap();
        fs::write(
            &signature,
            text.replace("file:manifest.json", "file:other.json"),
        )
        .unwrap();
        assert_eq!(
            problem(&public, b"{\"apps\": []}\n"),
            "the trusted comment was altered"
        );
        fs::remove_file(&signature).unwrap();
        assert!(problem(&public, b"{\"apps\": []}\n").starts_with("no readable "));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_redacts_and_signatures_are_deterministic() {
        let key = SigningKey::from_minisign(&key_text([7; 32]), None).unwrap();
        let debug = format!("{key:?} {:?}", Password::new("hunter2".into()));
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert_eq!(key.key_id_hex(), "0807060504030201");
        let first = key
            .signature(&b"hello"[..], "a.txt", 1_700_000_000)
            .unwrap();
        let second = key
            .signature(&b"hello"[..], "a.txt", 1_700_000_000)
            .unwrap();
        assert_eq!(first, second);
        assert!(first.contains("trusted comment: timestamp:1700000000\tfile:a.txt\thashed\n"));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let error =
            SigningKey::from_minisign("untrusted comment: x\nnot base64!\n", None).unwrap_err();
        assert!(crate::hint::render(&*error).contains("\nhint: "), "{error}");
        let mut damaged = key_text([9; 32]);
        damaged = damaged.replace('A', "B");
        if let Err(error) = SigningKey::from_minisign(&damaged, None) {
            assert!(crate::hint::render(&*error).contains("\nhint: "), "{error}");
        }
    }

    #[test]
    fn libsodium_parameters_for_minisign_defaults() {
        // minisign's defaults (OPSLIMIT/MEMLIMIT_SENSITIVE): N = 2^20, r = 8, p = 1.
        let opslimit: u64 = 33_554_432;
        let memlimit: u64 = 1_073_741_824;
        assert!(opslimit >= memlimit / 32);
        let log_n = log2_below(memlimit / (8 * 128));
        assert_eq!(log_n, 20);
        assert_eq!(((opslimit / 4) / (1 << log_n)) / 8, 1);
    }
}
