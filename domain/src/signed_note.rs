//! Signed checkpoints of the audit log, in the formats of C2SP: `signed-note` (a text,
//! a blank line, one `— <key name> <base64(key id ‖ signature)>` line per signature;
//! Ed25519, key id = the first four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key))
//! and `tlog-checkpoint` (the text: origin, tree size, base64 root hash, one per line).
//!
//! Keys are written as Go's `golang.org/x/mod/sumdb/note` writes them, so tools made for
//! transparency logs read ours: a verifier key `<name>+<hex key id>+<base64(0x01 ‖ public
//! key)>`, a signer key `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The signature type byte of Ed25519 in C2SP signed-note.
const ED25519: u8 = 0x01;
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    #[error("the note bears no signature of key {0}")]
    NotSignedBy(String),
    #[error("the signature of key {0} does not verify")]
    BadSignature(String),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}

fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519]);
    hasher.update(public.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// Splits `<name>+<hex id>+<base64(0x01 ‖ 32 bytes)>` and checks the id against the key.
fn parse_key_parts(text: &str) -> Result<(String, [u8; 32], [u8; 4]), NoteError> {
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey("expected <name>+<id>+<key>"));
    };
    if !valid_name(name) {
        return Err(NoteError::MalformedKey("bad key name"));
    }
    let id = u32::from_str_radix(id, 16)
        .ok()
        .filter(|_| id.len() == 8)
        .ok_or(NoteError::MalformedKey("the key id is not 8 hex digits"))?;
    let bytes = B64
        .decode(key)
        .map_err(|_| NoteError::MalformedKey("the key is not base64"))?;
    let [ED25519, rest @ ..] = bytes.as_slice() else {
        return Err(NoteError::MalformedKey("not an Ed25519 key"));
    };
    let key: [u8; 32] = rest
        .try_into()
        .map_err(|_| NoteError::MalformedKey("an Ed25519 key is 32 bytes"))?;
    Ok((name.to_string(), key, id.to_be_bytes()))
}

/// The key that signs checkpoints.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({})", self.verifier_key())
    }
}

impl NoteSigner {
    /// A signer named `name` (a schema-less URL such as `example.com/audit`) from a
    /// 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::MalformedKey(
                "a key name is non-empty, without spaces or '+'",
            ));
        }
        let key = SigningKey::from_bytes(seed);
        Ok(Self {
            name: name.to_string(),
            id: key_id(name, &key.verifying_key()),
            key,
        })
    }

    /// Reads `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedKey("expected PRIVATE+KEY+…"))?;
        let (name, seed, id) = parse_key_parts(rest)?;
        let signer = Self::new(&name, &seed)?;
        if signer.id != id {
            return Err(NoteError::MalformedKey("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The signer key as [`NoteSigner::parse`] reads it (what a key file holds).
    pub fn to_private_text(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex(&self.id),
            B64.encode(bytes)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key, as verifiers are given it: `<name>+<hex id>+<base64(0x01 ‖ key)>`.
    pub fn verifier_key(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex(&self.id), B64.encode(bytes))
    }

    /// `text` (which must end in a newline) signed: the signed note.
    pub fn sign(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n'));
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            B64.encode(blob)
        )
    }
}

/// A public key that checks signed notes.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    id: [u8; 4],
}

impl NoteVerifier {
    /// Reads `<name>+<hex id>+<base64(0x01 ‖ key)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, key, id) = parse_key_parts(text)?;
        let key =
            VerifyingKey::from_bytes(&key).map_err(|_| NoteError::MalformedKey("not a point"))?;
        if key_id(&name, &key) != id {
            return Err(NoteError::MalformedKey("the key id does not match the key"));
        }
        Ok(Self { name, key, id })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The note's text, if this key signed it. Signatures of other keys are ignored, as
    /// the format asks; a signature of this key that does not verify fails the note.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::MalformedNote("control characters"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::MalformedNote("no blank line before signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        let mut found = false;
        for line in signatures.lines() {
            let line = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or(NoteError::MalformedNote(
                    "a signature line starts with '— '",
                ))?;
            let (name, blob) = line.split_once(' ').ok_or(NoteError::MalformedNote(
                "a signature line has a name and a signature",
            ))?;
            let blob = B64
                .decode(blob)
                .map_err(|_| NoteError::MalformedNote("a signature is not base64"))?;
            if name != self.name || blob.len() < 4 || blob[..4] != self.id {
                continue;
            }
            let signature = Signature::from_slice(&blob[4..])
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            self.key
                .verify(text.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            found = true;
        }
        if found {
            Ok(text)
        } else {
            Err(NoteError::NotSignedBy(self.name.clone()))
        }
    }
}

/// A checkpoint's text (C2SP tlog-checkpoint): which log, how many leaves, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Reads a checkpoint's text (extension lines after the root are allowed and ignored).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::MalformedCheckpoint("no origin line"))?;
        let size = lines
            .next()
            .filter(|s| {
                s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0'))
            })
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(NoteError::MalformedCheckpoint(
                "the tree size is not a number",
            ))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or(NoteError::MalformedCheckpoint(
                "the root is not a base64 SHA-256 hash",
            ))?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// The checkpoint in `note`, if `verifier` signed it for its own origin.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, NoteError> {
        let checkpoint = Self::parse(verifier.open(note)?)?;
        if checkpoint.origin != verifier.name() {
            return Err(NoteError::MalformedCheckpoint(
                "the origin is not the key's name",
            ));
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::new("example.com/audit", &[7u8; 32]).unwrap()
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_public_key() {
        let signer = signer();
        let checkpoint = Checkpoint {
            origin: signer.name().into(),
            size: 42,
            root: [9u8; 32],
        };
        let note = signer.sign(&checkpoint.text());
        assert!(note.starts_with("example.com/audit\n42\n"));
        assert!(note.contains("\n\n\u{2014} example.com/audit "));
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        assert_eq!(Checkpoint::open(&note, &verifier).unwrap(), checkpoint);
    }

    #[test]
    fn keys_read_back_as_written() {
        let signer = signer();
        let again = NoteSigner::parse(&signer.to_private_text()).unwrap();
        assert_eq!(again.verifier_key(), signer.verifier_key());
        let key = signer.verifier_key();
        let parts: Vec<&str> = key.split('+').collect();
        let wrong_id = format!("{}+00000000+{}", parts[0], parts[2]);
        assert!(NoteVerifier::parse(&wrong_id).is_err());
    }

    /// The example of C2SP signed-note: a note whose key and signature the specification
    /// publishes, so our reading is checked against someone else's writing.
    #[test]
    fn the_specifications_example_verifies() {
        let note = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let verifier = NoteVerifier::parse(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        )
        .unwrap();
        assert!(verifier.open(note).is_ok());
        let forged = note.replace("cryptography", "cryptographs");
        assert_eq!(
            verifier.open(&forged),
            Err(NoteError::BadSignature("PeterNeumann".into()))
        );
    }

    #[test]
    fn another_keys_signature_does_not_count() {
        let ours = signer();
        let theirs = NoteSigner::new("example.com/audit", &[8u8; 32]).unwrap();
        let note =
            theirs.sign("example.com/audit\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
        let verifier = NoteVerifier::parse(&ours.verifier_key()).unwrap();
        assert_eq!(
            verifier.open(&note),
            Err(NoteError::NotSignedBy("example.com/audit".into()))
        );
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        for text in ["", "o\n", "o\n-1\nAA==\n", "o\n01\nAA==\n", "o\n1\nAA==\n"] {
            assert!(Checkpoint::parse(text).is_err(), "{text:?}");
        }
    }
}
