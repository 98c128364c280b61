//! The allowlist over DuckDB's own parse tree.
//!
//! Contract: [`check_statement`] takes the JSON that DuckDB's `json_serialize_sql` gives for one
//! `SELECT` (the parser that will run the task, so nothing is parsed twice in two dialects) and
//! accepts it only when every part of it is known to be harmless:
//!
//! - every scalar, aggregate, window or macro function is in `allowed_functions.txt`, and is not
//!   qualified by a schema other than `main` or by any catalog;
//! - every table function is a file reader the planner emits (`read_parquet`, `read_csv`, ...)
//!   or `unnest`; its paths are string constants (or a list of them) that [`PathPolicy`]
//!   permits, and its named parameters are known ones whose values are constants;
//! - every table name refers to a common table expression in scope (no catalog tables, views or
//!   replacement scans such as `FROM 'file.parquet'`), and no CTE is recursive;
//! - every expression class and table reference type is one the planner can produce;
//! - every string constant that names a URL (`scheme://`) is a path the policy permits.
//!
//! Anything this module does not recognise is refused: a DuckDB release that adds a construct
//! or a function gets a refusal, never a pass.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::Value;

/// What a path may be.
pub trait PathPolicy {
    /// `Ok` when `path` may be read; else why not.
    fn permit(&self, path: &str) -> Result<(), String>;
}

/// Why a statement was refused: a sentence for the `forbidden` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

type Checked = Result<(), Refusal>;

fn refuse<T>(message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(message.into()))
}

/// Deepest JSON nesting accepted: about 250 nested expressions (each nests two levels), within
/// what a 2 MiB thread stack parses, walks and drops recursively.
pub const MAX_DEPTH: usize = 512;

/// Most table functions one statement may call.
pub const MAX_TABLE_FUNCTIONS: usize = 64;

/// Functions a task may call (lowercase).
fn allowed_functions() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| list(include_str!("allowed_functions.txt")).collect())
}

/// Functions refused on purpose, with the reason (for the message and the coverage test).
pub fn denied_functions() -> impl Iterator<Item = (&'static str, &'static str)> {
    list(include_str!("denied_functions.txt")).map(|line| line.split_once('\t').unwrap_or((line, "not allowed")))
}

/// Names of `allowed_functions.txt`.
pub fn allowed_function_names() -> impl Iterator<Item = &'static str> {
    allowed_functions().iter().copied()
}

fn list(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Table functions that read files, with the named parameters each may take.
fn file_reader_parameters(name: &str) -> Option<&'static [&'static str]> {
    const PARQUET: &[&str] = &[
        "filename",
        "hive_partitioning",
        "hive_types",
        "hive_types_autocast",
        "union_by_name",
        "binary_as_string",
        "file_row_number",
        "schema",
        "can_have_nan",
    ];
    const CSV: &[&str] = &[
        "filename",
        "hive_partitioning",
        "hive_types",
        "hive_types_autocast",
        "union_by_name",
        "all_varchar",
        "allow_quoted_nulls",
        "auto_detect",
        "auto_type_candidates",
        "buffer_size",
        "column_names",
        "column_types",
        "columns",
        "comment",
        "compression",
        "dateformat",
        "date_format",
        "decimal_separator",
        "delim",
        "delimiter",
        "dtypes",
        "encoding",
        "escape",
        "force_not_null",
        "header",
        "ignore_errors",
        "max_line_size",
        "maximum_line_size",
        "names",
        "new_line",
        "normalize_names",
        "null_padding",
        "nullstr",
        "parallel",
        "quote",
        "sample_size",
        "sep",
        "skip",
        "strict_mode",
        "timestampformat",
        "timestamp_format",
        "types",
    ];
    const JSON: &[&str] = &[
        "filename",
        "hive_partitioning",
        "hive_types",
        "hive_types_autocast",
        "union_by_name",
        "auto_detect",
        "columns",
        "compression",
        "convert_strings_to_integers",
        "dateformat",
        "date_format",
        "field_appearance_threshold",
        "format",
        "ignore_errors",
        "map_inference_threshold",
        "maximum_depth",
        "maximum_object_size",
        "maximum_sample_files",
        "records",
        "sample_size",
        "timestampformat",
        "timestamp_format",
    ];
    match name {
        "read_parquet" | "parquet_scan" => Some(PARQUET),
        "read_csv" | "read_csv_auto" => Some(CSV),
        "read_json" | "read_json_auto" | "read_ndjson" | "read_ndjson_auto" => Some(JSON),
        _ => None,
    }
}

/// Expression classes the planner can produce.
const EXPRESSION_CLASSES: &[&str] = &[
    "BETWEEN",
    "CASE",
    "CAST",
    "COLLATE",
    "COLUMN_REF",
    "COMPARISON",
    "CONJUNCTION",
    "CONSTANT",
    "FUNCTION",
    "LAMBDA",
    "LAMBDA_REF",
    "OPERATOR",
    "POSITIONAL_REFERENCE",
    "STAR",
    "SUBQUERY",
    "WINDOW",
];

/// Table reference types (what a `FROM` or a join side may be).
const TABLE_REFS: &[&str] =
    &["BASE_TABLE", "TABLE_FUNCTION", "JOIN", "SUBQUERY", "EMPTY", "EMPTY_FROM", "EXPRESSION_LIST"];

/// Types refused wherever they appear: DESCRIBE/SUMMARIZE, internal scans, recursion, PIVOT,
/// prepared-statement parameters.
const REFUSED_TYPES: &[(&str, &str)] = &[
    ("SHOW_REF", "DESCRIBE and SUMMARIZE"),
    ("COLUMN_DATA", "internal scans"),
    ("DELIM_GET", "internal scans"),
    ("BOUND_TABLE_REF", "internal scans"),
    ("INVALID", "invalid table references"),
    ("PIVOT", "PIVOT"),
    ("RECURSIVE_CTE_NODE", "recursive common table expressions"),
    ("VALUE_PARAMETER", "prepared-statement parameters"),
    ("VALUE_DEFAULT", "DEFAULT"),
];

/// Checks one serialized statement (an element of `json_serialize_sql`'s `statements`).
pub fn check_statement(statement: &Value, paths: &dyn PathPolicy) -> Checked {
    let mut walker = Walker { paths, scopes: Vec::new(), table_functions: 0 };
    walker.walk(statement)
}

/// The deepest nesting of objects and arrays in `json`, counted without parsing it (so that a
/// hostile document cannot exhaust the stack of a recursive parser).
pub fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

struct Walker<'a> {
    paths: &'a dyn PathPolicy,
    /// Names of the common table expressions in scope, innermost last.
    scopes: Vec<Vec<String>>,
    table_functions: usize,
}

impl Walker<'_> {
    fn walk(&mut self, value: &Value) -> Checked {
        match value {
            Value::Array(items) => items.iter().try_for_each(|item| self.walk(item)),
            Value::Object(object) => self.walk_object(object),
            _ => Ok(()),
        }
    }

    fn walk_object(&mut self, object: &serde_json::Map<String, Value>) -> Checked {
        let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
        if let Some((_, what)) = REFUSED_TYPES.iter().find(|(t, _)| *t == kind) {
            return refuse(format!("{what} may not run here"));
        }
        if let Some(class) = object.get("class").and_then(Value::as_str) {
            return self.expression(class, object);
        }
        if let Some(from) = object.get("from_table") {
            check_table_ref(from)?;
        }
        if kind == "JOIN" {
            for side in ["left", "right"] {
                check_table_ref(object.get(side).unwrap_or(&Value::Null))?;
            }
        }
        if object.contains_key("cte_map") {
            return self.query_node(object);
        }
        match kind {
            "TABLE_FUNCTION" if object.contains_key("function") => {
                self.table_function(&object["function"])?;
                self.walk_except(object, &["function"])
            }
            "BASE_TABLE" if object.contains_key("table_name") => {
                self.base_table(object)?;
                self.walk_except(object, &[])
            }
            _ => self.walk_except(object, &[]),
        }
    }

    fn walk_except(&mut self, object: &serde_json::Map<String, Value>, skip: &[&str]) -> Checked {
        object.iter().filter(|(k, _)| !skip.contains(&k.as_str())).try_for_each(|(_, v)| self.walk(v))
    }

    /// A query node: its CTEs are in scope for the node and for the CTEs written after them.
    fn query_node(&mut self, object: &serde_json::Map<String, Value>) -> Checked {
        let entries = object["cte_map"].get("map").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        self.scopes.push(Vec::new());
        let result = (|| {
            for entry in entries {
                let name = entry.get("key").and_then(Value::as_str).unwrap_or_default().to_lowercase();
                if let Some(definition) = entry.get("value") {
                    self.walk(definition)?;
                }
                if let Some(scope) = self.scopes.last_mut() {
                    scope.push(name);
                }
            }
            self.walk_except(object, &["cte_map"])
        })();
        self.scopes.pop();
        result
    }

    fn base_table(&mut self, object: &serde_json::Map<String, Value>) -> Checked {
        let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default();
        let name = text("table_name");
        if !text("schema_name").is_empty() || !text("catalog_name").is_empty() {
            return refuse(format!(
                "the table {name:?} is qualified by a schema or catalog: only the lake's files may be read"
            ));
        }
        let lower = name.to_lowercase();
        if self.scopes.iter().any(|scope| scope.contains(&lower)) {
            return Ok(());
        }
        refuse(format!(
            "{name:?} is not a common table expression of the query: tables, views and files named as tables \
             may not be read here (read files with read_parquet)"
        ))
    }

    fn expression(&mut self, class: &str, object: &serde_json::Map<String, Value>) -> Checked {
        if !EXPRESSION_CLASSES.contains(&class) {
            return refuse(format!("expressions of class {class} may not run here"));
        }
        if let Some(name) = object.get("function_name").and_then(Value::as_str) {
            check_function_name(name, object)?;
        }
        if class == "CONSTANT" {
            if let Some(constant) = object.get("value") {
                self.strings(constant)?;
            }
            return Ok(());
        }
        self.walk_except(object, &[])
    }

    /// Every string inside a constant: a URL must be a permitted path.
    fn strings(&mut self, value: &Value) -> Checked {
        match value {
            Value::String(text) if text.contains("://") => self.paths.permit(text).map_err(Refusal),
            Value::Array(items) => items.iter().try_for_each(|item| self.strings(item)),
            Value::Object(object) => object.values().try_for_each(|item| self.strings(item)),
            _ => Ok(()),
        }
    }

    fn table_function(&mut self, function: &Value) -> Checked {
        self.table_functions += 1;
        if self.table_functions > MAX_TABLE_FUNCTIONS {
            return refuse(format!("more than {MAX_TABLE_FUNCTIONS} table functions in one task"));
        }
        let object = function.as_object().ok_or_else(|| Refusal("a table function that is not a call".into()))?;
        let name = object.get("function_name").and_then(Value::as_str).unwrap_or_default();
        let lower = name.to_lowercase();
        let qualified = ["schema", "catalog"]
            .iter()
            .any(|key| object.get(*key).and_then(Value::as_str).is_some_and(|s| !s.is_empty() && s != "main"));
        if qualified {
            return refuse(format!("the table function {name} is qualified by a schema or catalog"));
        }
        let children = object.get("children").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        if lower == "unnest" {
            return children.iter().try_for_each(|child| self.walk(child));
        }
        let Some(parameters) = file_reader_parameters(&lower) else {
            return refuse(format!(
                "the table function {name} may not run here (only read_parquet, read_csv, read_json and unnest)"
            ));
        };
        if children.is_empty() {
            return refuse(format!("{name} without a path"));
        }
        for (position, child) in children.iter().enumerate() {
            match named_parameter(child) {
                Some((parameter, value)) => {
                    let parameter = parameter.to_lowercase();
                    if !parameters.contains(&parameter.as_str()) {
                        return refuse(format!("{name}'s parameter {parameter} may not be used here"));
                    }
                    if !is_constant(value) {
                        return refuse(format!("{name}'s parameter {parameter} must be a constant"));
                    }
                    self.walk(value)?;
                }
                None if position == 0 => self.path_argument(name, child)?,
                None => return refuse(format!("{name} takes one path or list of paths, then named parameters")),
            }
        }
        Ok(())
    }

    /// The first argument of a file reader: a string constant or a list of them, each permitted.
    fn path_argument(&mut self, function: &str, argument: &Value) -> Checked {
        let paths: Vec<&Value> = match argument.get("class").and_then(Value::as_str) {
            Some("CONSTANT") => vec![argument],
            Some("FUNCTION") if argument.get("function_name").and_then(Value::as_str) == Some("list_value") => {
                argument.get("children").and_then(Value::as_array).map(|c| c.iter().collect()).unwrap_or_default()
            }
            _ => return refuse(format!("{function} must read string constants, not a computed path")),
        };
        for path in paths {
            let constant = path.get("value");
            let is_varchar = constant
                .and_then(|v| v.get("type"))
                .and_then(|t| t.get("id"))
                .and_then(Value::as_str)
                .is_some_and(|id| id == "VARCHAR");
            let text = constant.and_then(|v| v.get("value")).and_then(Value::as_str);
            match (path.get("class").and_then(Value::as_str), is_varchar, text) {
                (Some("CONSTANT"), true, Some(text)) => self.paths.permit(text).map_err(Refusal)?,
                _ => return refuse(format!("{function} must read string constants, not a computed path")),
            }
        }
        Ok(())
    }
}

/// A table reference must be of a type in [`TABLE_REFS`].
fn check_table_ref(table: &Value) -> Checked {
    let kind = table.get("type").and_then(Value::as_str).unwrap_or("unknown");
    if TABLE_REFS.contains(&kind) {
        return Ok(());
    }
    match REFUSED_TYPES.iter().find(|(t, _)| *t == kind) {
        Some((_, what)) => refuse(format!("{what} may not run here")),
        None => refuse(format!("table references of type {kind} may not run here")),
    }
}

/// `name = value` or `value AS name` (`name := value`) among a table function's arguments.
fn named_parameter(child: &Value) -> Option<(&str, &Value)> {
    let alias = child.get("alias").and_then(Value::as_str).unwrap_or_default();
    if !alias.is_empty() {
        return Some((alias, child));
    }
    if child.get("class").and_then(Value::as_str) == Some("COMPARISON")
        && child.get("type").and_then(Value::as_str) == Some("COMPARE_EQUAL")
    {
        let left = child.get("left")?;
        let names = left.get("column_names").and_then(Value::as_array)?;
        if left.get("class").and_then(Value::as_str) == Some("COLUMN_REF") && names.len() == 1 {
            return Some((names[0].as_str()?, child.get("right")?));
        }
    }
    None
}

/// A constant, a cast of one, or a list, struct, map or row of constants.
fn is_constant(value: &Value) -> bool {
    match value.get("class").and_then(Value::as_str) {
        Some("CONSTANT") => true,
        Some("CAST") => value.get("child").is_some_and(is_constant),
        Some("FUNCTION") => {
            matches!(
                value.get("function_name").and_then(Value::as_str),
                Some("list_value" | "struct_pack" | "map" | "row")
            ) && value.get("children").and_then(Value::as_array).is_some_and(|c| c.iter().all(is_constant))
        }
        _ => false,
    }
}

fn check_function_name(name: &str, object: &serde_json::Map<String, Value>) -> Checked {
    let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default();
    if !text("catalog").is_empty() || !matches!(text("schema"), "" | "main") {
        return refuse(format!("the function {name} is qualified by a schema or catalog"));
    }
    let lower = name.to_lowercase();
    if allowed_functions().contains(lower.as_str()) {
        return Ok(());
    }
    match denied_functions().find(|(denied, _)| *denied == lower) {
        Some((_, reason)) => refuse(format!("the function {name} may not run here: it {reason}")),
        None => refuse(format!("the function {name} is not one a task may call")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(r#"{"a": [1, {"b": "[[[{"}]}"#), 3);
        assert_eq!(json_depth(r#""\"[""#), 0);
        assert_eq!(json_depth("[[[]]]"), 3);
    }

    #[test]
    fn the_function_lists_do_not_overlap() {
        let allowed = allowed_functions();
        let overlap: Vec<&str> = denied_functions().map(|(n, _)| n).filter(|n| allowed.contains(n)).collect();
        assert!(overlap.is_empty(), "{overlap:?}");
        assert!(allowed.contains("sum") && allowed.contains("count_star") && !allowed.contains("current_setting"));
    }
}
