//! Loading DuckDB's official extensions (httpfs, icu) from files, never from the network: the
//! coordinator, the in-process workers and the Lambda worker all load the same release's files.
//!
//! Where a file comes from, first found wins: the path the caller was given (a flag or an
//! environment variable), then the cache `scripts/fetch-extension.sh` fills
//! (`$QUACK_CACHE` or `~/.cache/quack`, `<name>/v1.5.5/<arch>/<name>.duckdb_extension`), then
//! DuckDB's own extension directory (`LOAD <name>`, where `INSTALL` puts it).

use std::path::{Path, PathBuf};

/// The DuckDB release whose extensions are loaded (the bundled library's).
pub const RELEASE: &str = "v1.5.5";

/// An extension could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error(
    "loading DuckDB's {name} extension{}: {message} (get it with scripts/fetch-extension.sh {name} \
     and point QUACK_{}_EXTENSION at the file)",
    path.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_default(),
    name.to_ascii_uppercase()
)]
pub struct ExtensionError {
    pub name: &'static str,
    pub path: Option<PathBuf>,
    pub message: String,
}

/// Where `scripts/fetch-extension.sh <name>` keeps the file for this machine's architecture,
/// when it is there.
pub fn cached(name: &str) -> Option<PathBuf> {
    let root = std::env::var_os("QUACK_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| Path::new(&h).join(".cache/quack")))?;
    let file = root.join(name).join(RELEASE).join(std::env::consts::ARCH).join(format!("{name}.duckdb_extension"));
    file.is_file().then_some(file)
}

/// Loads extension `name` into `conn`'s database: from `path` when given (an error when that
/// fails), else from [`cached`], else from DuckDB's extension directory. Never downloads.
/// Returns the file it loaded, `None` for DuckDB's directory.
pub fn load(
    conn: &duckdb::Connection,
    name: &'static str,
    path: Option<&Path>,
) -> Result<Option<PathBuf>, ExtensionError> {
    let file = path.map(Path::to_path_buf).or_else(|| cached(name));
    let sql = match &file {
        Some(file) => format!("LOAD {}", crate::quote::literal(&file.to_string_lossy())),
        None => format!("LOAD {}", crate::quote::ident(name)),
    };
    conn.execute_batch(&sql).map_err(|e| ExtensionError { name, path: file.clone(), message: e.to_string() })?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_a_clear_error_naming_it() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let error = load(&conn, "icu", Some(Path::new("/nonexistent/icu.duckdb_extension"))).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/nonexistent/icu.duckdb_extension"), "{message}");
        assert!(message.contains("scripts/fetch-extension.sh icu"), "{message}");
        assert!(message.contains("QUACK_ICU_EXTENSION"), "{message}");
    }
}
