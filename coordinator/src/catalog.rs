//! What DuckDB's own function catalog says about function names, read at run time from
//! `duckdb_functions()` of the running DuckDB: which names aggregate.
//!
//! A name aggregates when DuckDB lists it as an `aggregate` function, or when it is a scalar macro
//! whose body calls an aggregating name outside any subquery (`geomean(x)` is `exp(avg(ln(x)))`,
//! `geometric_mean` calls `geomean`): macros are followed to a fixed point.
//!
//! Reading `duckdb_functions()` takes ~23 ms of CPU, a fifth of a short query. For the DuckDB
//! release quack bundles, the answer is kept in `catalog.aggregates-<release>.txt` (one name per
//! line), which a unit test regenerates from the live catalog and compares (`QUACK_BLESS=1`
//! rewrites it): [`FunctionCatalog::pinned`]. The extensions quack loads (icu, httpfs) add no
//! aggregate or macro, and a quack query cannot define one. Any other release's catalog is read
//! at run time, so an upgrade that adds an aggregate or an aggregating macro is picked up as is.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Query, Visit, Visitor};

/// The release whose catalog [`PINNED_AGGREGATES`] is: the bundled one.
const PINNED_RELEASE: &str = quack_lambda::extension::RELEASE;
/// The aggregating names of [`PINNED_RELEASE`]'s catalog, sorted, one per line.
const PINNED_AGGREGATES: &str = include_str!("catalog.aggregates-v1.5.5.txt");

/// Lowercased names of the functions that aggregate, from one DuckDB's catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionCatalog {
    aggregates: HashSet<String>,
}

impl FunctionCatalog {
    /// Reads the catalog of the database `conn` is connected to.
    pub fn load(conn: &duckdb::Connection) -> Result<Self, duckdb::Error> {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT lower(function_name), function_type, macro_definition FROM duckdb_functions() \
             WHERE function_type IN ('aggregate', 'macro')",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<String>>(2)?))
        })?;
        let mut aggregates = HashSet::new();
        let mut macros: HashMap<String, Vec<String>> = HashMap::new();
        for row in rows {
            let (name, kind, body) = row?;
            if kind == "aggregate" {
                aggregates.insert(name);
            } else if let Some(body) = body {
                macros.entry(name).or_default().push(body);
            }
        }
        Ok(Self::from_parts(aggregates, &macros))
    }

    /// The catalog of a fresh in-memory DuckDB of the bundled release (for tests and tools).
    pub fn bundled() -> Self {
        let conn = duckdb::Connection::open_in_memory().expect("an in-memory DuckDB opens");
        Self::load(&conn).expect("duckdb_functions() is readable")
    }

    /// The catalog of DuckDB `release` (as `pragma_version()`'s `library_version` spells it,
    /// `v1.5.5`) when quack keeps it; `None` for any other release (read it with [`Self::load`]).
    pub fn pinned(release: &str) -> Option<Self> {
        (release == PINNED_RELEASE).then(|| FunctionCatalog {
            aggregates: PINNED_AGGREGATES.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect(),
        })
    }

    /// Aggregates plus every macro (by name, one body per overload) whose body calls one.
    pub fn from_parts(mut aggregates: HashSet<String>, macros: &HashMap<String, Vec<String>>) -> Self {
        let called: HashMap<&String, HashSet<String>> = macros
            .iter()
            .map(|(name, bodies)| (name, bodies.iter().flat_map(|body| top_level_calls(body)).collect()))
            .collect();
        loop {
            let before = aggregates.len();
            for (name, calls) in &called {
                if !aggregates.contains(*name) && calls.iter().any(|c| aggregates.contains(c)) {
                    aggregates.insert((*name).clone());
                }
            }
            if aggregates.len() == before {
                break;
            }
        }
        FunctionCatalog { aggregates }
    }

    /// True when `name` (any case) aggregates.
    pub fn is_aggregate(&self, name: &str) -> bool {
        self.aggregates.contains(&name.to_ascii_lowercase())
    }

    /// The aggregating names, lowercased.
    pub fn aggregates(&self) -> &HashSet<String> {
        &self.aggregates
    }
}

/// Lowercased names of the functions a macro body calls outside subqueries. A body that does
/// not parse calls nothing we can see (DuckDB's printed macro bodies parse in practice).
fn top_level_calls(body: &str) -> HashSet<String> {
    struct Calls {
        depth: usize,
        names: HashSet<String>,
    }
    impl Visitor for Calls {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = expr {
                if self.depth == 0 && f.over.is_none() {
                    if let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) {
                        self.names.insert(name.value.to_ascii_lowercase());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut calls = Calls { depth: 0, names: HashSet::new() };
    if let Ok(expr) = crate::rewrite::parse_expr(body) {
        let _ = expr.visit(&mut calls);
    }
    calls.names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept list is the bundled DuckDB's live catalog, with and without the extensions
    /// quack loads. `QUACK_BLESS=1` rewrites it.
    #[test]
    fn the_pinned_catalog_is_the_live_one() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let release: String =
            conn.query_row("SELECT library_version FROM pragma_version()", [], |row| row.get(0)).unwrap();
        assert_eq!(release, PINNED_RELEASE, "the bundled DuckDB is the release whose extensions quack pins");
        let live = FunctionCatalog::load(&conn).unwrap();
        let mut names: Vec<_> = live.aggregates.iter().cloned().collect();
        names.sort();
        let text = names.join("\n") + "\n";
        if std::env::var_os("QUACK_BLESS").is_some() {
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/src/catalog.aggregates-v1.5.5.txt"), &text).unwrap();
        }
        assert_eq!(PINNED_AGGREGATES, text, "the kept catalog is stale: rerun with QUACK_BLESS=1");
        assert_eq!(FunctionCatalog::pinned(&release), Some(live.clone()));
        assert_eq!(FunctionCatalog::pinned("v1.4.0"), None);
        for name in ["icu", "httpfs"] {
            let Some(file) = quack_lambda::extension::cached(name) else { continue };
            let conn =
                quack_lambda::extension::open_in_memory(duckdb::Config::default(), &[(name, Some(&file))]).unwrap();
            quack_lambda::extension::load(&conn, name, Some(&file)).unwrap();
            assert_eq!(FunctionCatalog::load(&conn).unwrap(), live, "{name} adds no aggregate or macro");
        }
    }

    #[test]
    fn aggregating_macros_are_aggregates_transitively() {
        let catalog = FunctionCatalog::bundled();
        for name in ["sum", "count", "median", "geomean", "geometric_mean", "weighted_avg", "wavg", "json_group_array"]
        {
            assert!(catalog.is_aggregate(name), "{name}");
        }
        for name in ["lower", "list_sum", "get_block_size", "split_part", "round_even", "nullif"] {
            assert!(!catalog.is_aggregate(name), "{name}");
        }
    }

    #[test]
    fn a_macro_over_a_new_aggregate_follows_it() {
        let aggregates = HashSet::from(["agg".to_string()]);
        let macros = HashMap::from([
            ("m1".to_string(), vec!["m2(x) + 1".to_string()]),
            ("m2".to_string(), vec!["agg(x)".to_string()]),
            ("sub".to_string(), vec!["(SELECT agg(y) FROM t)".to_string()]),
            ("plain".to_string(), vec!["x + 1".to_string()]),
        ]);
        let catalog = FunctionCatalog::from_parts(aggregates, &macros);
        assert!(catalog.is_aggregate("M1") && catalog.is_aggregate("m2"));
        assert!(!catalog.is_aggregate("sub") && !catalog.is_aggregate("plain"));
    }
}
