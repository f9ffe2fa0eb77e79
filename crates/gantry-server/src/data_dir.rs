//! The data directory is private: it holds the database (grants, token hashes, every
//! evidence report) and the ledger signing key.

use std::io;
use std::path::Path;

/// Creates the data directory for its owner only (0700, whatever the umask) unless it
/// exists, then logs a warning, naming the path and the mode, for it and for every file
/// in it that other users may read or write. Files Gantry creates there are 0600; an
/// existing wider mode is left as it is, since an operator may have chosen it.
pub fn prepare_data_directory(path: &Path) -> io::Result<()> {
    if !path.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(path)?;
        #[cfg(unix)]
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    }
    Ok(())
}

/// Logs a warning for the data directory and each file in it that other users may
/// read or write; see [`prepare_data_directory`]. Returns how many it warned about.
pub fn warn_about_wide_modes(path: &Path) -> io::Result<usize> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;

        let mut warned = 0;
        let mut check = |path: &Path, private: u32, what: &str| -> io::Result<()> {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warned += 1;
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{mode:04o}"),
                    "the {what} is open to other users, who could read grants, token hashes \
                     and evidence: chmod {private:o} it"
                );
            }
            Ok(())
        };
        check(path, 0o700, "data directory")?;
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                check(&entry.path(), 0o600, "file in the data directory")?;
            }
        }
        Ok(warned)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(0)
    }
}
