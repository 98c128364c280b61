//! Finding the fanned-out table in a query: every `read_parquet(<paths>, hive_partitioning = true)`
//! table function, and replacing it by a placeholder the map SQL later fills with a task's files.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgOperator, Ident, ObjectName, TableAlias, TableFactor, Value,
    VisitMut, VisitorMut,
};

/// Name of the placeholder table that stands for the fanned-out scan in rewritten SQL.
pub const FAN_PLACEHOLDER: &str = "__quack_fan_scan__";

/// One `read_parquet(..., hive_partitioning = true)` occurrence, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanScan {
    /// The function name as written (`read_parquet`, `parquet_scan`).
    pub function: String,
    /// The paths or globs as written (one, or the elements of a list).
    pub paths: Vec<String>,
    /// The named options other than `hive_types`, as SQL (`hive_partitioning = true`).
    pub options: Vec<String>,
    /// `hive_types` as written by the user, if any (then we do not add ours).
    pub user_hive_types: Option<String>,
    /// The table alias, when the query gives one.
    pub alias: Option<String>,
}

impl FanScan {
    /// SQL for this scan over exactly `files`, with partition column types pinned so every task
    /// infers the same types DuckDB infers over all files.
    pub fn render(&self, files: &[String], hive_types: &[(String, String)]) -> String {
        let list = files.iter().map(|f| quote_literal(f)).collect::<Vec<_>>().join(", ");
        let mut args = vec![format!("[{list}]")];
        args.extend(self.options.iter().cloned());
        match &self.user_hive_types {
            Some(user) => args.push(format!("hive_types = {user}")),
            None if !hive_types.is_empty() => {
                let fields = hive_types
                    .iter()
                    .map(|(k, t)| format!("{}: {}", quote_literal(k), quote_literal(t)))
                    .collect::<Vec<_>>()
                    .join(", ");
                args.push(format!("hive_types = {{{fields}}}"));
            }
            None => {}
        }
        format!("{}({})", self.function, args.join(", "))
    }

    /// The scan as the user wrote it (for messages and explain).
    pub fn original(&self) -> String {
        let paths = if self.paths.len() == 1 {
            quote_literal(&self.paths[0])
        } else {
            format!("[{}]", self.paths.iter().map(|p| quote_literal(p)).collect::<Vec<_>>().join(", "))
        };
        let mut args = vec![paths];
        args.extend(self.options.iter().cloned());
        if let Some(user) = &self.user_hive_types {
            args.push(format!("hive_types = {user}"));
        }
        format!("{}({})", self.function, args.join(", "))
    }
}

/// A SQL string literal for `s`.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier for `s`, always double-quoted.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Recognizes a fan-out scan in a table factor.
pub fn fan_scan_of(factor: &TableFactor) -> Option<FanScan> {
    let TableFactor::Table { name, args: Some(args), alias, .. } = factor else {
        return None;
    };
    let function = object_name_last(name)?;
    let lowered = function.to_ascii_lowercase();
    let csv = matches!(lowered.as_str(), "read_csv" | "read_csv_auto");
    if !csv && !matches!(lowered.as_str(), "read_parquet" | "parquet_scan") {
        return None;
    }
    let mut paths = None;
    let mut options = Vec::new();
    let mut hive = false;
    let mut user_hive_types = None;
    for (i, arg) in args.args.iter().enumerate() {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) if i == 0 => paths = Some(string_list(expr)?),
            FunctionArg::Named { name, arg: FunctionArgExpr::Expr(value), operator } => {
                let key = name.value.to_ascii_lowercase();
                if key == "hive_partitioning" {
                    hive = is_true(value);
                }
                if key == "hive_types" {
                    user_hive_types = Some(value.to_string());
                } else {
                    let op = match operator {
                        FunctionArgOperator::Assignment => ":=",
                        _ => "=",
                    };
                    options.push(format!("{} {op} {value}", name));
                }
            }
            _ => return None,
        }
    }
    // A CSV scan splits exactly only when its columns are given: per-file type sniffing could
    // read the same text as different types in different tasks.
    let explicit_columns = options.iter().any(|o| o.to_ascii_lowercase().starts_with("columns"));
    if !hive || (csv && !explicit_columns) {
        return None;
    }
    Some(FanScan {
        function,
        paths: paths?,
        options,
        user_hive_types,
        alias: alias.as_ref().map(|a: &TableAlias| a.name.value.clone()),
    })
}

fn object_name_last(name: &ObjectName) -> Option<String> {
    name.0.last().and_then(|part| part.as_ident()).map(|ident| ident.value.clone())
}

fn string_list(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(vec![s.clone()]),
            _ => None,
        },
        Expr::Array(array) => array.elem.iter().map(|e| string_list(e).and_then(|mut v| v.pop())).collect(),
        _ => None,
    }
}

fn is_true(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Boolean(b) => *b,
            Value::Number(n, _) => n != "0",
            Value::SingleQuotedString(s) => s.eq_ignore_ascii_case("true") || s == "1",
            _ => false,
        },
        _ => false,
    }
}

/// Finds every fan-out scan in `node` and, when `replace` is set, turns each into the
/// placeholder table (keeping its alias).
pub fn collect_fan_scans<V: VisitMut>(node: &mut V, replace: bool) -> Vec<FanScan> {
    struct Finder {
        found: Vec<FanScan>,
        replace: bool,
    }
    impl VisitorMut for Finder {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let Some(scan) = fan_scan_of(factor) {
                self.found.push(scan);
                if self.replace {
                    if let TableFactor::Table { name, args, .. } = factor {
                        *name = ObjectName::from(vec![Ident::new(FAN_PLACEHOLDER)]);
                        *args = None;
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder { found: Vec::new(), replace };
    let _ = node.visit(&mut finder);
    finder.found
}

/// True when `factor` is the placeholder of the fanned-out scan.
pub fn is_placeholder(factor: &TableFactor) -> bool {
    matches!(factor, TableFactor::Table { name, args: None, .. }
        if object_name_last(name).as_deref() == Some(FAN_PLACEHOLDER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::DuckDbDialect;
    use sqlparser::parser::Parser;

    fn scans(sql: &str) -> Vec<FanScan> {
        let mut statements = Parser::parse_sql(&DuckDbDialect {}, sql).unwrap();
        collect_fan_scans(&mut statements, false)
    }

    #[test]
    fn finds_hive_partitioned_read_parquet_only() {
        let found = scans(
            "SELECT * FROM read_parquet('l/trips/*/*.parquet', hive_partitioning = true) t \
             JOIN read_parquet('l/zones.parquet') z ON true",
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].paths, vec!["l/trips/*/*.parquet"]);
        assert_eq!(found[0].alias.as_deref(), Some("t"));
        assert_eq!(found[0].options, vec!["hive_partitioning = true"]);
    }

    #[test]
    fn lists_and_user_hive_types_are_kept() {
        let found = scans("SELECT 1 FROM read_parquet(['a/x=1/f.parquet', 'a/x=2/f.parquet'], hive_partitioning = 1, hive_types = {'x': 'INTEGER'})");
        assert_eq!(found[0].paths.len(), 2);
        assert_eq!(found[0].user_hive_types.as_deref(), Some("{'x': 'INTEGER'}"));
        let sql = found[0].render(&["a/x=1/f.parquet".into()], &[("x".into(), "BIGINT".into())]);
        assert_eq!(sql, "read_parquet(['a/x=1/f.parquet'], hive_partitioning = 1, hive_types = {'x': 'INTEGER'})");
    }

    #[test]
    fn renders_pinned_hive_types_and_escapes_paths() {
        let found = scans("SELECT 1 FROM read_parquet('d/*/*.parquet', hive_partitioning = true)");
        let sql = found[0].render(&["d/k=it's/f.parquet".into()], &[("k".into(), "VARCHAR".into())]);
        assert_eq!(
            sql,
            "read_parquet(['d/k=it''s/f.parquet'], hive_partitioning = true, hive_types = {'k': 'VARCHAR'})"
        );
    }

    #[test]
    fn csv_scans_fan_out_only_with_explicit_columns() {
        let sql = "SELECT 1 FROM read_csv('d/*/*.csv.gz', hive_partitioning = true, header = false, \
                   columns = {'key': 'VARCHAR', 'size': 'BIGINT'})";
        assert_eq!(scans(sql).len(), 1);
        assert!(scans("SELECT 1 FROM read_csv('d/*/*.csv', hive_partitioning = true)").is_empty());
    }

    #[test]
    fn replaces_with_placeholder() {
        let mut statements =
            Parser::parse_sql(&DuckDbDialect {}, "SELECT 1 FROM read_parquet('d/*', hive_partitioning = true) AS t")
                .unwrap();
        collect_fan_scans(&mut statements, true);
        assert_eq!(statements[0].to_string(), format!("SELECT 1 FROM {FAN_PLACEHOLDER} AS t"));
    }
}
