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
/// It is written aside and linked into place, so a process starting at the same moment
/// reads either no file or the whole key; whoever links first wins.
pub fn local_data_key(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let aside = path.with_extension(format!("{}.new", rand::random::<u32>()));
    write_private(&aside, &key)?;
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
