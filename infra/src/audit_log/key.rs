//! The key checkpoints are signed with.

use anyhow::Context as _;
use expensewise_domain::signed_note::NoteSigner;

use crate::config::{local_audit_key, AuditConfig};

/// The signer `AUDIT_SIGNING_KEY_FILE` holds; outside production, without it, the one in
/// the data directory, made on first use.
pub fn signing_key(config: &AuditConfig) -> anyhow::Result<NoteSigner> {
    let path = &config.key_file;
    if config.generated {
        local_audit_key(path, &config.origin)
            .with_context(|| format!("cannot make {}", path.display()))?;
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("AUDIT_SIGNING_KEY_FILE: cannot read {}", path.display()))?;
    NoteSigner::parse(&text)
        .map_err(|e| anyhow::anyhow!("AUDIT_SIGNING_KEY_FILE: {}: {e}", path.display()))
}
