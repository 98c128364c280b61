//! Finding the fanned-out table in a query: every `read_parquet(<paths>, hive_partitioning = true)`
//! table function, and replacing it by a placeholder the map SQL later fills with a task's files.

use std::ops::ControlFlow;

use quack_lambda::quote;
use sqlparser::ast::{
    DataType, DictionaryField, Expr, FunctionArg, FunctionArgExpr, FunctionArgOperator, Ident, ObjectName,
    ObjectNamePart, Query, SelectItem, SetExpr, TableAlias, TableFactor, TableFunctionArgs, Value, VisitMut,
    VisitorMut,
};

use super::template;

/// Name of the placeholder table that stands for the fanned-out scan in rewritten SQL.
pub const FAN_PLACEHOLDER: &str = "__quack_fan_scan__";

/// The column a task's scan adds to tell the schema file's rows from its own (never shown).
const FILE_COLUMN: &str = "__quack_file";

/// One `read_parquet(..., hive_partitioning = true)` occurrence, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct FanScan {
    /// The function name as written (`read_parquet`, `parquet_scan`, `read_csv`).
    pub function: String,
    /// The paths or globs as written (one, or the elements of a list).
    pub paths: Vec<String>,
    /// Every argument after the paths, as written.
    options: Vec<FunctionArg>,
    /// Whether the user gave `hive_types` (then we do not add ours).
    pub user_hive_types: bool,
    /// `union_by_name = true`: the table's schema is the union of every file's.
    pub union_by_name: bool,
    /// The column the user's `filename` option adds, when it is on.
    pub filename_column: Option<String>,
    /// A Parquet scan (a CSV scan has its columns given, so no file decides its schema).
    pub parquet: bool,
    /// The table alias, when the query gives one.
    pub alias: Option<String>,
}

/// What every task must read the same way, known from all of the table's files: DuckDB takes a
/// multi-file table's schema from its first file (or, with `union_by_name`, from all of them),
/// never from the files one task happens to get.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableLayout {
    /// Partition columns with the types DuckDB infers over all files (pinned in every task).
    pub hive_types: Vec<(String, String)>,
    /// The table's first file, in DuckDB's order: the one whose schema the table has.
    pub first_file: String,
    /// The table's columns and types over all files, as DuckDB describes `SELECT *`.
    pub columns: Vec<(String, String)>,
}

impl FanScan {
    /// The scan over exactly `files` (read literally, never globbed again), with the table's
    /// schema whatever files the task got, under the placeholder occurrence's `alias`:
    /// - without `union_by_name`, the table's first file is read too, for its schema only: its
    ///   rows are filtered out by file name (DuckDB skips the file at plan time);
    /// - with it, the task's union is widened to the table's union by a typed empty row set
    ///   (`UNION ALL BY NAME`) and cast to the table's types.
    pub fn task_factor(&self, files: &[String], layout: &TableLayout, alias: Option<TableAlias>) -> TableFactor {
        let alias = alias.or_else(|| Some(plain_alias(&self.function)));
        if !self.parquet {
            return self.function_factor(files, layout, None, alias);
        }
        if self.union_by_name {
            return derived(self.widened_to_table(files, layout), alias);
        }
        if files.contains(&layout.first_file) {
            // The task has the schema file: read it first, plainly.
            let mut reordered = vec![layout.first_file.clone()];
            reordered.extend(files.iter().filter(|f| **f != layout.first_file).cloned());
            return self.function_factor(&reordered, layout, None, alias);
        }
        let mut with_schema_file = vec![layout.first_file.clone()];
        with_schema_file.extend(files.iter().cloned());
        let (mut query, column, extra) = match &self.filename_column {
            Some(column) => {
                (template("SELECT * FROM __quack_fan_scan__ WHERE __quack_file <> ''"), column.clone(), None)
            }
            None => (
                template("SELECT * EXCLUDE (__quack_file) FROM __quack_fan_scan__ WHERE __quack_file <> ''"),
                FILE_COLUMN.to_string(),
                Some(named_arg("filename", string_expr(FILE_COLUMN))),
            ),
        };
        let scan = self.function_factor(&with_schema_file, layout, extra, None);
        if let SetExpr::Select(select) = query.body.as_mut() {
            select.from[0].relation = scan;
            if let Some(Expr::BinaryOp { left, right, .. }) = &mut select.selection {
                **left = Expr::Identifier(Ident::with_quote('"', column));
                **right = string_expr(&layout.first_file);
            }
        }
        derived(query, alias)
    }

    /// `SELECT CAST(c AS t) AS c, ... FROM (SELECT NULL::t AS c, ... WHERE false UNION ALL BY NAME
    /// SELECT * FROM <scan>)`: every column of the table, in its order and type.
    fn widened_to_table(&self, files: &[String], layout: &TableLayout) -> Query {
        let mut union = template("SELECT 1 WHERE false UNION ALL BY NAME SELECT * FROM __quack_fan_scan__");
        if let SetExpr::SetOperation { left, right, .. } = union.body.as_mut() {
            if let SetExpr::Select(select) = left.as_mut() {
                select.projection = layout
                    .columns
                    .iter()
                    .map(|(name, ty)| SelectItem::ExprWithAlias {
                        expr: cast(Expr::Value(Value::Null.into()), ty),
                        alias: Ident::with_quote('"', name),
                    })
                    .collect();
            }
            if let SetExpr::Select(select) = right.as_mut() {
                select.from[0].relation = self.function_factor(files, layout, None, None);
            }
        }
        let mut outer = template("SELECT 1 FROM __quack_fan_scan__");
        if let SetExpr::Select(select) = outer.body.as_mut() {
            select.projection = layout
                .columns
                .iter()
                .map(|(name, ty)| SelectItem::ExprWithAlias {
                    expr: cast(Expr::Identifier(Ident::with_quote('"', name)), ty),
                    alias: Ident::with_quote('"', name),
                })
                .collect();
            select.from[0].relation = derived(union, Some(plain_alias("__quack_union")));
        }
        outer
    }

    /// `function([files], options..., hive_types = {...}[, extra])`.
    fn function_factor(
        &self,
        files: &[String],
        layout: &TableLayout,
        extra: Option<FunctionArg>,
        alias: Option<TableAlias>,
    ) -> TableFactor {
        let list = Expr::Array(sqlparser::ast::Array {
            elem: files.iter().map(|f| string_expr(&quote::literal_path(f))).collect(),
            named: false,
        });
        let mut args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(list))];
        args.extend(self.options.iter().cloned());
        if !self.user_hive_types && !layout.hive_types.is_empty() {
            let fields = layout
                .hive_types
                .iter()
                .map(|(k, t)| DictionaryField { key: Ident::with_quote('\'', k), value: Box::new(string_expr(t)) })
                .collect();
            args.push(named_arg("hive_types", Expr::Dictionary(fields)));
        }
        args.extend(extra);
        TableFactor::Table {
            name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(&self.function))]),
            alias,
            args: Some(TableFunctionArgs { args, settings: None }),
            with_hints: vec![],
            version: None,
            with_ordinality: false,
            partitions: vec![],
            json_path: None,
            sample: None,
            index_hints: vec![],
        }
    }

    /// The scan as the user wrote it (for messages, explain, and describing the whole table).
    pub fn original(&self) -> String {
        let paths = if self.paths.len() == 1 {
            string_expr(&self.paths[0])
        } else {
            Expr::Array(sqlparser::ast::Array {
                elem: self.paths.iter().map(|p| string_expr(p)).collect(),
                named: false,
            })
        };
        let mut args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(paths))];
        args.extend(self.options.iter().cloned());
        let args = args.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        format!("{}({args})", self.function)
    }
}

fn string_expr(text: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(text.to_string()).into())
}

fn named_arg(name: &str, value: Expr) -> FunctionArg {
    FunctionArg::Named {
        name: Ident::new(name),
        arg: FunctionArgExpr::Expr(value),
        operator: FunctionArgOperator::Equals,
    }
}

/// `read_parquet([files])`, each path read literally, under `alias`.
pub(crate) fn parquet_files(files: &[String], alias: Option<TableAlias>) -> TableFactor {
    let list = Expr::Array(sqlparser::ast::Array {
        elem: files.iter().map(|f| string_expr(&quote::literal_path(f))).collect(),
        named: false,
    });
    TableFactor::Table {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new("read_parquet"))]),
        alias,
        args: Some(TableFunctionArgs { args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(list))], settings: None }),
        with_hints: vec![],
        version: None,
        with_ordinality: false,
        partitions: vec![],
        json_path: None,
        sample: None,
        index_hints: vec![],
    }
}

/// `CAST(expr AS type)` for a type as DuckDB names it (`STRUCT(a INTEGER)`, `DECIMAL(18,2)`).
pub(crate) fn cast(expr: Expr, data_type: &str) -> Expr {
    Expr::Cast {
        kind: sqlparser::ast::CastKind::Cast,
        expr: Box::new(expr),
        data_type: DataType::Custom(ObjectName(vec![ObjectNamePart::Identifier(Ident::new(data_type))]), vec![]),
        format: None,
    }
}

fn plain_alias(name: &str) -> TableAlias {
    TableAlias { explicit: true, name: Ident::with_quote('"', name), columns: vec![], at: None }
}

pub(crate) fn derived(subquery: Query, alias: Option<TableAlias>) -> TableFactor {
    TableFactor::Derived { lateral: false, subquery: Box::new(subquery), alias, sample: None }
}

/// Puts `scan(files)` in place of every placeholder table in `query`, each under its own alias.
pub fn substitute_scan(query: &Query, scan: &FanScan, files: &[String], layout: &TableLayout) -> Query {
    struct Substitute<'a> {
        scan: &'a FanScan,
        files: &'a [String],
        layout: &'a TableLayout,
    }
    impl VisitorMut for Substitute<'_> {
        type Break = ();
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if is_placeholder(factor) {
                let TableFactor::Table { alias, .. } = factor else { unreachable!("a placeholder is a table") };
                *factor = self.scan.task_factor(self.files, self.layout, alias.take());
            }
            ControlFlow::Continue(())
        }
    }
    let mut query = query.clone();
    let _ = query.visit(&mut Substitute { scan, files, layout });
    query
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
    let mut user_hive_types = false;
    let mut union_by_name = false;
    let mut filename_column = None;
    let mut explicit_columns = false;
    for (i, arg) in args.args.iter().enumerate() {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) if i == 0 => paths = Some(string_list(expr)?),
            FunctionArg::Named { name, arg: FunctionArgExpr::Expr(value), .. } => {
                match name.value.to_ascii_lowercase().as_str() {
                    "hive_partitioning" => hive = is_true(value),
                    "hive_types" => user_hive_types = true,
                    "union_by_name" => union_by_name = is_true(value),
                    "columns" => explicit_columns = true,
                    "filename" => {
                        filename_column = match value {
                            Expr::Value(v) => match &v.value {
                                Value::SingleQuotedString(column) => Some(column.clone()),
                                _ => is_true(value).then(|| "filename".to_string()),
                            },
                            _ => return None,
                        }
                    }
                    _ => {}
                }
                options.push(arg.clone());
            }
            _ => return None,
        }
    }
    // A CSV scan splits exactly only when its columns are given: per-file type sniffing could
    // read the same text as different types in different tasks.
    if !hive || (csv && !explicit_columns) {
        return None;
    }
    Some(FanScan {
        function,
        paths: paths?,
        options,
        user_hive_types,
        union_by_name,
        filename_column,
        parquet: !csv,
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
    collect_fan_scans_except(node, replace, None)
}

/// As [`collect_fan_scans`], leaving out the fan-out scan that is the `skip`-th (from 0, in the
/// visiting order, which is the order of the SQL text) of `node`: that table is not fanned out
/// (a broadcast or co-partitioned side, [`super::Companion`]); it is neither returned nor
/// replaced.
pub fn collect_fan_scans_except<V: VisitMut>(node: &mut V, replace: bool, skip: Option<usize>) -> Vec<FanScan> {
    struct Finder {
        found: Vec<FanScan>,
        replace: bool,
        seen: usize,
        skip: Option<usize>,
    }
    impl VisitorMut for Finder {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let Some(scan) = fan_scan_of(factor) {
                let occurrence = self.seen;
                self.seen += 1;
                if self.skip == Some(occurrence) {
                    return ControlFlow::Continue(());
                }
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
    let mut finder = Finder { found: Vec::new(), replace, seen: 0, skip };
    let _ = node.visit(&mut finder);
    finder.found
}

/// Puts `factor(alias)` in place of every placeholder table in `query` (each placeholder's own
/// alias given), and `companion(alias)` in place of every other fan-out scan (the one
/// [`collect_fan_scans_except`] left).
pub fn substitute_factors(
    query: &Query,
    factor: &dyn Fn(Option<TableAlias>) -> TableFactor,
    companion: &dyn Fn(Option<TableAlias>) -> TableFactor,
) -> Query {
    struct Substitute<'a> {
        factor: &'a dyn Fn(Option<TableAlias>) -> TableFactor,
        companion: &'a dyn Fn(Option<TableAlias>) -> TableFactor,
    }
    impl VisitorMut for Substitute<'_> {
        type Break = ();
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let placeholder = is_placeholder(factor);
            if placeholder || fan_scan_of(factor).is_some() {
                let TableFactor::Table { alias, .. } = factor else { unreachable!("a scan is a table") };
                let alias = alias.take();
                *factor = if placeholder { (self.factor)(alias) } else { (self.companion)(alias) };
            }
            ControlFlow::Continue(())
        }
    }
    let mut query = query.clone();
    let _ = query.visit(&mut Substitute { factor, companion });
    query
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
        assert_eq!(found[0].original(), "read_parquet('l/trips/*/*.parquet', hive_partitioning = true)");
    }

    fn layout(first: &str) -> TableLayout {
        TableLayout {
            hive_types: vec![("x".into(), "BIGINT".into())],
            first_file: first.into(),
            columns: vec![("v".into(), "INTEGER".into()), ("x".into(), "BIGINT".into())],
        }
    }

    fn task_sql(sql: &str, files: &[&str], first: &str) -> String {
        let mut statements = Parser::parse_sql(&DuckDbDialect {}, sql).unwrap();
        let found = collect_fan_scans(&mut statements, true);
        let sqlparser::ast::Statement::Query(query) = &statements[0] else { panic!() };
        let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        substitute_scan(query, &found[0], &files, &layout(first)).to_string()
    }

    #[test]
    fn user_hive_types_are_kept() {
        let found = scans("SELECT 1 FROM read_parquet(['a/x=1/f.parquet', 'a/x=2/f.parquet'], hive_partitioning = 1, hive_types = {'x': 'INTEGER'})");
        assert_eq!(found[0].paths.len(), 2);
        assert!(found[0].user_hive_types);
        assert_eq!(
            task_sql("SELECT 1 FROM read_parquet('a/*/*', hive_partitioning = 1, hive_types = {'x': 'INTEGER'})", &["a/x=1/f.parquet"], "a/x=1/f.parquet"),
            "SELECT 1 FROM read_parquet(['a/x=1/f.parquet'], hive_partitioning = 1, hive_types = {'x': 'INTEGER'}) AS \"read_parquet\""
        );
    }

    #[test]
    fn the_first_files_task_reads_plainly_with_pinned_hive_types_and_literal_paths() {
        let sql = "SELECT 1 FROM read_parquet('d/*/*.parquet', hive_partitioning = true) AS t";
        assert_eq!(
            task_sql(sql, &["d/x=it's/f[1]*?.parquet"], "d/x=it's/f[1]*?.parquet"),
            "SELECT 1 FROM read_parquet(['d/x=it''s/f[[]1][*][?].parquet'], hive_partitioning = true, \
             hive_types = {'x': 'BIGINT'}) AS t"
        );
    }

    #[test]
    fn other_tasks_take_the_schema_of_the_tables_first_file() {
        let sql = "SELECT 1 FROM read_parquet('d/*/*.parquet', hive_partitioning = true) AS t";
        assert_eq!(
            task_sql(sql, &["d/x=2/f.parquet"], "d/x=1/f.parquet"),
            "SELECT 1 FROM (SELECT * EXCLUDE (__quack_file) FROM read_parquet(['d/x=1/f.parquet', 'd/x=2/f.parquet'], \
             hive_partitioning = true, hive_types = {'x': 'BIGINT'}, filename = '__quack_file') \
             WHERE \"__quack_file\" <> 'd/x=1/f.parquet') AS t"
        );
        let sql = "SELECT 1 FROM read_parquet('d/*/*.parquet', hive_partitioning = true, filename = true)";
        assert!(task_sql(sql, &["d/x=2/f.parquet"], "d/x=1/f.parquet")
            .contains("SELECT * FROM read_parquet(['d/x=1/f.parquet', 'd/x=2/f.parquet'], hive_partitioning = true, filename = true, hive_types = {'x': 'BIGINT'}) WHERE \"filename\" <> 'd/x=1/f.parquet'"));
    }

    #[test]
    fn union_by_name_tasks_are_widened_to_the_tables_union() {
        let sql = "SELECT 1 FROM read_parquet('d/*/*.parquet', hive_partitioning = true, union_by_name = true) AS t";
        assert_eq!(
            task_sql(sql, &["d/x=2/f.parquet"], "d/x=1/f.parquet"),
            "SELECT 1 FROM (SELECT CAST(\"v\" AS INTEGER) AS \"v\", CAST(\"x\" AS BIGINT) AS \"x\" FROM \
             (SELECT CAST(NULL AS INTEGER) AS \"v\", CAST(NULL AS BIGINT) AS \"x\" WHERE false UNION ALL BY NAME \
             SELECT * FROM read_parquet(['d/x=2/f.parquet'], hive_partitioning = true, union_by_name = true, \
             hive_types = {'x': 'BIGINT'})) AS \"__quack_union\") AS t"
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
