//! SQL quoting, in one place for the worker, the coordinator and the dashboard: string literals
//! and identifiers as DuckDB reads them, and paths that DuckDB must not glob.

/// A SQL string literal for `text` (`it's` -> `'it''s'`).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A SQL identifier for `name`, always double-quoted (`a"b` -> `"a""b"`), so that keywords and
/// any letter case stay the name as written.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A path that DuckDB's file readers take literally: its glob characters (`*`, `?`, `[`) each
/// become a one-character class (`[*]`, `[?]`, `[[]`), which matches only that character, in
/// DuckDB's local and S3 globbing alike. A path without them is returned unchanged.
pub fn literal_path(path: &str) -> String {
    if !path.contains(['*', '?', '[']) {
        return path.to_string();
    }
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_literals_and_identifiers() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident("select"), "\"select\"");
    }

    #[test]
    fn glob_characters_become_classes() {
        assert_eq!(literal_path("/l/d=1/f.parquet"), "/l/d=1/f.parquet");
        assert_eq!(literal_path("/l/d=x[1]/f*?.parquet"), "/l/d=x[[]1]/f[*][?].parquet");
    }

    #[test]
    fn duckdb_reads_escaped_paths_literally() {
        let dir = tempfile::tempdir().unwrap();
        let conn = duckdb::Connection::open_in_memory().unwrap();
        for (name, value) in [("f[1].parquet", 1), ("f1.parquet", 2), ("f*.parquet", 3), ("f?.parquet", 4)] {
            let path = dir.path().join(name).display().to_string();
            conn.execute_batch(&format!("COPY (SELECT {value} AS v) TO {} (FORMAT parquet)", literal(&path))).unwrap();
        }
        for (name, value) in [("f[1].parquet", 1), ("f*.parquet", 3), ("f?.parquet", 4)] {
            let path = literal_path(&dir.path().join(name).display().to_string());
            let sql = format!("SELECT list(v ORDER BY v)::VARCHAR FROM read_parquet({})", literal(&path));
            let got: String = conn.query_row(&sql, [], |row| row.get(0)).unwrap();
            assert_eq!(got, format!("[{value}]"), "{name} is read alone");
        }
    }
}
