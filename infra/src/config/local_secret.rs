//! The one piece of configuration the process makes rather than reads.

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
