//! The pieces of configuration the process makes rather than reads.

use std::path::Path;

use rand::RngCore;

use super::{invalid, ConfigError, Secret, MIN_PRODUCTION_SECRET_LEN};

/// Outside production a missing JWT secret is generated once and kept in the data
/// directory, so tokens survive restarts of a local installation.
pub fn local_secret(data_dir: &Path) -> Result<Secret, ConfigError> {
    let path = data_dir.join("jwt-secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if text.trim().len() >= MIN_PRODUCTION_SECRET_LEN {
            return Ok(Secret::new(text.trim()));
        }
    }
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir).map_err(|e| {
        invalid(
            "DATA_DIR",
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    write_private(&path, &secret)
        .map_err(|e| invalid("DATA_DIR", format!("cannot write {}: {e}", path.display())))?;
    Ok(Secret::new(secret))
}

/// Outside production a missing master key is generated once at `path` (in the data
/// directory): a local installation keeps reading what it encrypted across restarts.
pub fn local_data_key(path: &Path) -> std::io::Result<()> {
    local_key_file(path, || {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Outside production a missing audit log signing key is generated once at `path`, named
/// `origin`, so a local installation's checkpoints keep verifying across restarts.
pub fn local_audit_key(path: &Path, origin: &str) -> std::io::Result<()> {
    local_key_file(path, || {
        let mut seed = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut seed);
        expensewise_domain::signed_note::NoteSigner::new(origin, &seed)
            .map(|signer| signer.to_private_text() + "\n")
            .unwrap_or_default()
    })
}

/// Writes what `make` gives at `path` unless a file is there. It is written aside and
/// linked into place, so a process starting at the same moment reads either no file or
/// the whole key; whoever links first wins.
fn local_key_file(path: &Path, make: impl FnOnce() -> String) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let aside = path.with_extension(format!("{}.new", rand::random::<u32>()));
    write_private(&aside, &make())?;
    let linked = std::fs::hard_link(&aside, path);
    std::fs::remove_file(&aside)?;
    match linked {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}
