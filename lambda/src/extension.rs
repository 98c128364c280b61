//! Loading DuckDB's official extensions (httpfs, icu) from files, never from the network: the
//! coordinator, the in-process workers and the Lambda worker all load the same release's files.
//!
//! Where a file comes from, first found wins: the path the caller was given (a flag or an
//! environment variable), then the cache `scripts/fetch-extension.sh` fills
//! (`$QUACK_CACHE` or `~/.cache/quack`, `<name>/v1.5.5/<arch>/<name>.duckdb_extension`), then
//! DuckDB's own extension directory (`LOAD <name>`, where `INSTALL` puts it).
//!
//! DuckDB checks an extension's signature when it loads it: an RSA signature over SHA-256
//! hashes of the whole file, computed by mbedtls in software. For the 20 MB icu and httpfs files
//! that is about 100 ms of CPU per file, per process, which is most of a short query's overhead
//! and of a Lambda worker's cold start. quack instead pins the BLAKE3 hash of the exact official
//! files it ships ([`PINNED`], from PyPI's `duckdb-extension-<name>` wheels, which
//! `scripts/fetch-extension.sh` unpacks) and hashes them itself (SIMD, about 4 ms per file; a
//! SHA-256 with SHA-NI took 15-25 ms, a fifth of a short query), once per file: the verdict is
//! kept, in memory and in quack's cache directory, for as long as the file's identity (inode,
//! size, change time) stays the same ([`is_pinned`]). A database
//! skips DuckDB's check (`allow_unsigned_extensions`) only when every extension it will load is
//! a pinned file ([`open_in_memory`]), and such a database then loads nothing else: [`load`]
//! refuses a file whose hash is not pinned. Any other file still loads in a database that
//! checks signatures. As with DuckDB's own check, the file is read again by the loader after it
//! was checked; replacing it in between takes write access to it, which is already enough to
//! replace quack itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

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

/// The official extension files of [`RELEASE`] that quack loads without DuckDB's signature
/// check: (name, architecture, BLAKE3 of the file). The same files' SHA-256, for the record:
/// httpfs x86_64 887c392b…b7d8, aarch64 eba6e263…ea1e9; icu x86_64 fe6196ed…02e6, aarch64
/// 8e754ef7…c11c.
pub const PINNED: &[(&str, &str, &str)] = &[
    ("httpfs", "x86_64", "30cda505d37db5c4207bca6c1b76b6965be95b35ce5bb122bc2f477091f3de7d"),
    ("httpfs", "aarch64", "5c2605adeaca5ba83be1693bfcdd40e2b68e6af8077589c170aa914ab246527f"),
    ("icu", "x86_64", "5fb11c103c8c5a95b0a8fe3da377f4f601de6f081b094c2fb132c07f3f91f976"),
    ("icu", "aarch64", "c24434325cf66b851b7657b846699df0528693a6ad85897b904724970f4aab15"),
];

/// quack's cache directory: `$QUACK_CACHE`, else `~/.cache/quack`.
fn cache_root() -> Option<PathBuf> {
    std::env::var_os("QUACK_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| Path::new(&h).join(".cache/quack")))
}

/// Where `scripts/fetch-extension.sh <name>` keeps the file for this machine's architecture,
/// when it is there.
pub fn cached(name: &str) -> Option<PathBuf> {
    let file =
        cache_root()?.join(name).join(RELEASE).join(std::env::consts::ARCH).join(format!("{name}.duckdb_extension"));
    file.is_file().then_some(file)
}

/// The file [`load`] would load for `name`: `path` when given, else [`cached`]; `None` means
/// DuckDB's extension directory.
pub fn resolve(name: &str, path: Option<&Path>) -> Option<PathBuf> {
    path.map(Path::to_path_buf).or_else(|| cached(name))
}

/// The file's BLAKE3 hash, lowercase hex (the file memory-mapped, not copied).
pub fn blake3(file: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap(file)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Whether `file` is the official `name` extension of [`RELEASE`] that quack pins (for any
/// architecture: DuckDB itself refuses one built for another).
///
/// A file is hashed once while its identity stays the same: its device, inode, size,
/// modification and change times (to the nanosecond), as git decides that a file in its index
/// need not be hashed again. Within a process the verdict is kept in memory; across processes
/// a pinned file's is kept in quack's cache directory (`pins/`, see [`Verdicts`]), so a short
/// query does not hash 20 MB per extension on every run. Writing to a file changes its change
/// time, which no caller can set, so a file changed since its verdict is hashed again.
pub fn is_pinned(name: &str, file: &Path) -> bool {
    is_pinned_with(name, file, cache_root().map(|root| Verdicts { dir: root.join("pins") }).as_ref())
}

fn is_pinned_with(name: &str, file: &Path, verdicts: Option<&Verdicts>) -> bool {
    type Seen = HashMap<PathBuf, (Stamp, Option<String>)>;
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    let Some(stamp) = Stamp::of(file) else { return false };
    let seen = SEEN.get_or_init(Default::default);
    let known = seen.lock().unwrap_or_else(|p| p.into_inner()).get(file).filter(|(s, _)| *s == stamp).cloned();
    let hash = match known {
        Some((_, hash)) => hash,
        None => {
            let hash = check(name, file, stamp, verdicts, unix_now());
            seen.lock().unwrap_or_else(|p| p.into_inner()).insert(file.to_path_buf(), (stamp, hash.clone()));
            hash
        }
    };
    hash.is_some_and(|hash| pinned(name, &hash))
}

/// `file`'s hash, from its kept verdict or by hashing it (then kept when it is pinned as
/// `name`). Kept only when the file was not changed while it was read and has not changed for
/// two seconds before `now`: a write in the same tick of the file system's clock as the hash
/// might not move the change time (git's "racy" files).
fn check(name: &str, file: &Path, stamp: Stamp, verdicts: Option<&Verdicts>, now: i64) -> Option<String> {
    if let Some(hash) = verdicts.and_then(|v| v.recall(file, &stamp)) {
        return Some(hash);
    }
    let hash = blake3(file).ok()?;
    if let Some(verdicts) = verdicts {
        if pinned(name, &hash) && stamp.changed_before(now - 2) && Stamp::of(file) == Some(stamp) {
            verdicts.record(file, &stamp, &hash);
        }
    }
    Some(hash)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn pinned(name: &str, hash: &str) -> bool {
    PINNED.iter().any(|(n, _, pin)| *n == name && *pin == hash)
}

/// A file's identity: device, inode, size, modification and change time (seconds, nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp([i64; 7]);

impl Stamp {
    fn of(file: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(file).ok().filter(|m| m.is_file())?;
        // Device and inode numbers are stored bit for bit.
        Some(Stamp([
            meta.dev() as i64,
            meta.ino() as i64,
            meta.size() as i64,
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        ]))
    }

    /// Whether the file last changed before second `unix` (its change time).
    fn changed_before(&self, unix: i64) -> bool {
        self.0[5] < unix
    }
}

/// Verdicts on pinned files kept across processes: one small file per extension path (named by
/// the path's BLAKE3), holding the file's [`Stamp`] and hash. Only quack's own cache directory
/// holds them, never a directory beside an extension file given by path: whoever can write
/// there can already replace the fetched extensions themselves. A record that cannot be read
/// or written is as if absent; one whose stamp differs from the file's, or whose hash is not
/// pinned, is ignored.
struct Verdicts {
    dir: PathBuf,
}

impl Verdicts {
    const HEADER: &'static str = "quack-pin-v1";

    fn path(&self, file: &Path) -> PathBuf {
        use std::os::unix::ffi::OsStrExt as _;
        let key = blake3::hash(file.as_os_str().as_bytes()).to_hex();
        self.dir.join(&key[..32])
    }

    fn recall(&self, file: &Path, stamp: &Stamp) -> Option<String> {
        let text = std::fs::read_to_string(self.path(file)).ok().filter(|t| t.len() < 512)?;
        let mut fields = text.split_ascii_whitespace();
        (fields.next() == Some(Self::HEADER)).then_some(())?;
        for expected in stamp.0 {
            (fields.next()?.parse::<i64>().ok()? == expected).then_some(())?;
        }
        let hash = fields.next()?;
        (fields.next().is_none() && PINNED.iter().any(|(_, _, pin)| *pin == hash)).then(|| hash.to_string())
    }

    /// Best effort: written to a temporary file and renamed, so a reader sees all or nothing.
    fn record(&self, file: &Path, stamp: &Stamp, hash: &str) {
        let target = self.path(file);
        let line = std::iter::once(Self::HEADER.to_string())
            .chain(stamp.0.iter().map(i64::to_string))
            .chain(std::iter::once(hash.to_string()))
            .collect::<Vec<_>>()
            .join(" ");
        let temp = target.with_extension(format!("{}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&temp, format!("{line}\n")))
            .and_then(|()| std::fs::rename(&temp, &target));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        if let Err(error) = written {
            tracing::debug!(%error, dir = %self.dir.display(), "could not keep an extension's verdict");
        }
    }
}

/// Opens an in-memory DuckDB with `config` that will load the extensions `planned` (name and
/// the path given for it, resolved as [`load`] resolves it). When every one of them is a pinned
/// file, the database skips DuckDB's own signature check (`allow_unsigned_extensions`), never
/// autoloads an extension (an autoloaded file would skip the check too), and [`load`] then loads
/// only pinned files into it; otherwise DuckDB checks every signature.
pub fn open_in_memory(
    config: duckdb::Config,
    planned: &[(&'static str, Option<&Path>)],
) -> duckdb::Result<duckdb::Connection> {
    // One thread per file: hashing is the cost (20 MB each).
    let all_pinned = !planned.is_empty()
        && std::thread::scope(|scope| {
            let checks: Vec<_> = planned
                .iter()
                .map(|(name, path)| scope.spawn(move || resolve(name, *path).is_some_and(|f| is_pinned(name, &f))))
                .collect();
            checks.into_iter().all(|check| check.join().unwrap_or(false))
        });
    let config =
        if all_pinned { config.allow_unsigned_extensions()?.enable_autoload_extension(false)? } else { config };
    duckdb::Connection::open_in_memory_with_flags(config)
}

/// Whether `conn`'s database skips DuckDB's signature check (see [`open_in_memory`]).
pub fn skips_signature_check(conn: &duckdb::Connection) -> bool {
    conn.query_row("SELECT current_setting('allow_unsigned_extensions')", [], |row| row.get::<_, bool>(0))
        .unwrap_or(true) // unknown: treat as skipping, so only pinned files load
}

/// Loads extension `name` into `conn`'s database: from `path` when given (an error when that
/// fails), else from [`cached`], else from DuckDB's extension directory. Never downloads.
/// In a database that skips DuckDB's signature check, only a pinned file loads.
/// Returns the file it loaded, `None` for DuckDB's directory.
pub fn load(
    conn: &duckdb::Connection,
    name: &'static str,
    path: Option<&Path>,
) -> Result<Option<PathBuf>, ExtensionError> {
    let file = resolve(name, path);
    if skips_signature_check(conn) && !file.as_deref().is_some_and(|f| is_pinned(name, f)) {
        return Err(ExtensionError {
            name,
            path: file,
            message: format!(
                "this DuckDB skips its signature check, so it loads only the official {RELEASE} files whose \
                 BLAKE3 hash quack pins, and this is not one of them"
            ),
        });
    }
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

    /// A file of the fetch script's, when this machine has it (CI fetches both).
    fn fetched(name: &str) -> Option<PathBuf> {
        let file = cached(name);
        if file.is_none() {
            eprintln!("skipping: no {name} extension fetched (scripts/fetch-extension.sh {name})");
        }
        file
    }

    #[test]
    fn pinned_files_load_without_duckdbs_check_and_nothing_else_does() {
        let (Some(icu), Some(httpfs)) = (fetched("icu"), fetched("httpfs")) else { return };
        assert!(is_pinned("icu", &icu) && is_pinned("httpfs", &httpfs));
        assert!(!is_pinned("httpfs", &icu), "a pin is for its own name");

        let conn = open_in_memory(duckdb::Config::default(), &[("icu", Some(&icu))]).unwrap();
        assert!(skips_signature_check(&conn));
        let autoload =
            conn.query_row("SELECT current_setting('autoload_known_extensions')", [], |r| r.get::<_, bool>(0));
        assert!(!autoload.unwrap(), "nothing loads behind load()'s back");
        assert_eq!(load(&conn, "icu", Some(&icu)).unwrap(), Some(icu.clone()));
        conn.query_row("SELECT current_setting('TimeZone')", [], |r| r.get::<_, String>(0)).unwrap();

        // Any other file is refused in that database, even one DuckDB would accept...
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("httpfs.duckdb_extension");
        let mut bytes = std::fs::read(&httpfs).unwrap();
        bytes.push(0);
        std::fs::write(&copy, &bytes).unwrap();
        let error = load(&conn, "httpfs", Some(&copy)).unwrap_err().to_string();
        assert!(error.contains("pins") && error.contains(&*copy.to_string_lossy()), "{error}");
        // ...and a database planning an unpinned file checks signatures, as DuckDB does.
        let conn = open_in_memory(duckdb::Config::default(), &[("icu", Some(&icu)), ("httpfs", Some(&copy))]).unwrap();
        assert!(!skips_signature_check(&conn));
        let error = load(&conn, "httpfs", Some(&copy)).unwrap_err().to_string();
        assert!(!error.contains("pins"), "DuckDB's own check refuses it: {error}");
        load(&conn, "icu", Some(&icu)).unwrap();
    }

    #[test]
    fn a_changed_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("icu.duckdb_extension");
        std::fs::write(&file, b"not an extension").unwrap();
        assert!(!is_pinned_with("icu", &file, None));
        let Some(icu) = fetched("icu") else { return };
        std::fs::copy(&icu, &file).unwrap();
        assert!(is_pinned_with("icu", &file, None), "the copy's new size and change time are noticed");
        assert!(!is_pinned_with("icu", &dir.path().join("missing"), None));
    }

    #[test]
    fn a_kept_verdict_holds_only_for_the_same_file_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let verdicts = Verdicts { dir: dir.path().join("pins") };
        let file = dir.path().join("icu.duckdb_extension");
        std::fs::write(&file, b"not an extension").unwrap();
        let stamp = Stamp::of(&file).unwrap();
        let (icu_pin, httpfs_pin) = (PINNED[2].2, PINNED[0].2);
        assert_eq!(verdicts.recall(&file, &stamp), None, "nothing kept yet");
        verdicts.record(&file, &stamp, icu_pin);
        assert_eq!(verdicts.recall(&file, &stamp).as_deref(), Some(icu_pin));
        // With the record trusted, the file counts as pinned without being hashed, for its own
        // name only...
        assert!(is_pinned_with("icu", &file, Some(&verdicts)));
        assert!(!is_pinned_with("httpfs", &file, Some(&verdicts)));
        // ...and not once it changes: same size, same modification time, new change time.
        let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, b"NOT an extension").unwrap();
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(modified).unwrap();
        let changed = Stamp::of(&file).unwrap();
        assert_ne!(changed, stamp);
        assert_eq!(verdicts.recall(&file, &changed), None);
        assert!(!is_pinned_with("icu", &file, Some(&verdicts)), "hashed again, and refused");
        // Another path's record, a forged hash, a torn or oversized record: all ignored.
        assert_eq!(verdicts.recall(&dir.path().join("other"), &stamp), None);
        let record = verdicts.path(&file);
        let line = std::fs::read_to_string(&record).unwrap();
        for forged in [
            line.replace(icu_pin, &"0".repeat(64)),
            line[..line.len() / 2].to_string(),
            format!("{line} {httpfs_pin}"),
            format!("{line}{}", " ".repeat(600)),
            String::new(),
        ] {
            std::fs::write(&record, &forged).unwrap();
            assert_eq!(verdicts.recall(&file, &stamp), None, "{forged:?}");
        }
        // A directory that cannot be written: the verdict is simply not kept.
        let blocked = Verdicts { dir: file.join("pins") };
        blocked.record(&file, &stamp, icu_pin);
        assert_eq!(blocked.recall(&file, &stamp), None);
    }

    #[test]
    fn a_pinned_file_is_kept_only_once_it_has_settled() {
        let Some(icu) = fetched("icu") else { return };
        let dir = tempfile::tempdir().unwrap();
        let verdicts = Verdicts { dir: dir.path().join("pins") };
        let copy = dir.path().join("icu.duckdb_extension");
        std::fs::copy(&icu, &copy).unwrap();
        let stamp = Stamp::of(&copy).unwrap();
        let changed = stamp.0[5];
        // Just changed: pinned, but not kept.
        assert_eq!(check("icu", &copy, stamp, Some(&verdicts), changed + 1).as_deref(), Some(PINNED[2].2));
        assert_eq!(verdicts.recall(&copy, &stamp), None);
        // A file that is not pinned under the name asked is never kept.
        assert!(check("httpfs", &copy, stamp, Some(&verdicts), changed + 10).is_some());
        assert_eq!(verdicts.recall(&copy, &stamp), None);
        // Settled: kept.
        assert_eq!(check("icu", &copy, stamp, Some(&verdicts), changed + 10).as_deref(), Some(PINNED[2].2));
        assert_eq!(verdicts.recall(&copy, &stamp).as_deref(), Some(PINNED[2].2));
    }
}
