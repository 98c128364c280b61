//! How partial results travel from the workers to the coordinator's reduce: as Arrow IPC,
//! column by column in the map's own types, except for the types Arrow cannot carry exactly.
//!
//! Contract: every DuckDB type arrives as itself. Arrow has no exact form for `BIT` (it becomes
//! a blob of DuckDB's internal bytes), `ENUM` (a dictionary DuckDB cannot append), `UHUGEINT`,
//! `HUGEINT` beyond 38 digits and `BIGNUM` (decimal128 and blob), `TIME WITH TIME ZONE` (its
//! offset is lost); a column whose type names any
//! of them, at any depth (`BIT[]`, `STRUCT(e ENUM(...))`), travels as its text, which DuckDB
//! casts back exactly, and the reduce reads it through a view that casts it to its own type.

use sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, TableAlias, TableAliasColumnDef, TableFactor};

use crate::engine::Column;

/// The type names Arrow cannot carry exactly.
const NOT_CARRIED: &[&str] =
    &["BIT", "BITSTRING", "ENUM", "UHUGEINT", "HUGEINT", "INT128", "UINT128", "BIGNUM", "VARINT"];

/// The type a column of `data_type` travels as, when not its own.
pub fn carrier(data_type: &str) -> Option<&'static str> {
    // Words of the type outside quoted parts (ENUM values, quoted field names).
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    for c in data_type.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c.is_ascii_alphanumeric() || c == '_' => word.push(c.to_ascii_uppercase()),
            None => words.push(std::mem::take(&mut word)),
        }
    }
    words.push(word);
    words.retain(|w| !w.is_empty());
    // TIME WITH TIME ZONE arrives in UTC, without its offset (TIMESTAMP WITH TIME ZONE is an
    // instant, and arrives whole).
    let timetz = words.windows(4).any(|w| w == ["TIME", "WITH", "TIME", "ZONE"]) || words.iter().any(|w| w == "TIMETZ");
    (timetz || words.iter().any(|w| NOT_CARRIED.contains(&w.as_str()))).then_some("VARCHAR")
}

/// The types (as they travel, after [`carrier`]) that go through the exchange's Parquet files
/// and read back exactly: scalars whose Arrow form Parquet stores. Others (INTERVAL, UUID,
/// nested types) keep a plan to one stage for now.
const EXCHANGE_TYPES: &[&str] = &[
    "BOOLEAN",
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "VARCHAR",
    "BLOB",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "TIMESTAMP WITH TIME ZONE",
];

/// Whether a column of `data_type` goes through the exchange between stages exactly.
pub fn exchange_carries(data_type: &str) -> bool {
    let travels = carrier(data_type).unwrap_or(data_type).trim().to_ascii_uppercase();
    let decimal = travels.strip_prefix("DECIMAL(").is_some_and(|rest| {
        rest.strip_suffix(')').is_some_and(|p| p.split(',').all(|n| n.trim().parse::<u8>().is_ok()))
    });
    decimal || EXCHANGE_TYPES.contains(&travels.as_str())
}

/// True when some column travels as another type.
pub fn needs_carriers(columns: &[Column]) -> bool {
    columns.iter().any(|c| carrier(&c.data_type).is_some())
}

/// The columns as they travel.
pub fn carried(columns: &[Column]) -> Vec<Column> {
    columns
        .iter()
        .map(|c| Column { name: c.name.clone(), data_type: carrier(&c.data_type).unwrap_or(&c.data_type).to_string() })
        .collect()
}

/// `map` with every column whose type does not travel cast to its carrier, by position:
/// `SELECT c0, CAST(c1 AS VARCHAR) AS "name", ... FROM (map) AS __quack_m(c0, c1, ...)`.
/// `map` unchanged when every type travels.
pub fn wrap_map(map: Query, columns: &[Column]) -> Query {
    if !needs_carriers(columns) {
        return map;
    }
    let position = |i: usize| Ident::new(format!("__quack_t{i}"));
    let mut outer = crate::rewrite::template("SELECT 1 FROM __quack_fan_scan__");
    if let SetExpr::Select(select) = outer.body.as_mut() {
        select.projection = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let column = Expr::Identifier(position(i));
                let expr = match carrier(&c.data_type) {
                    Some(ty) => crate::rewrite::scan::cast(column, ty),
                    None => column,
                };
                SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', &c.name) }
            })
            .collect();
        select.from[0].relation = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(map),
            alias: Some(TableAlias {
                explicit: true,
                name: Ident::new("__quack_m"),
                columns: (0..columns.len()).map(|i| TableAliasColumnDef::from_name(position(i).value)).collect(),
                at: None,
            }),
            sample: None,
        };
    }
    outer
}

/// [`wrap_map`] for SQL the planner cannot parse (a query run as written): the same wrapping
/// around the text, which DuckDB accepts for any query (`SELECT * FROM (FROM t)`).
pub fn wrap_sql(sql: &str, columns: &[Column]) -> String {
    if !needs_carriers(columns) {
        return sql.to_string();
    }
    let items = columns
        .iter()
        .enumerate()
        .map(|(i, c)| match carrier(&c.data_type) {
            Some(ty) => format!("CAST(__quack_t{i} AS {ty}) AS {}", quack_lambda::quote::ident(&c.name)),
            None => format!("__quack_t{i} AS {}", quack_lambda::quote::ident(&c.name)),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let positions = (0..columns.len()).map(|i| format!("__quack_t{i}")).collect::<Vec<_>>().join(", ");
    format!("SELECT {items} FROM ({sql}\n) AS __quack_m({positions})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_arrow_cannot_carry_travel_as_text() {
        for ty in [
            "BIT",
            "HUGEINT",
            "UHUGEINT",
            "BIGNUM",
            "ENUM('a', 'b')",
            "BIT[]",
            "STRUCT(e ENUM('x'))",
            "MAP(VARCHAR, HUGEINT)",
            "TIME WITH TIME ZONE",
            "TIME WITH TIME ZONE[]",
        ] {
            assert_eq!(carrier(ty), Some("VARCHAR"), "{ty}");
        }
        for ty in [
            "BIGINT",
            "DECIMAL(38,2)",
            "VARCHAR",
            "STRUCT(\"bit\" INTEGER)",
            "ENUMS",
            "BLOB",
            "VARIANT",
            "TIMESTAMP WITH TIME ZONE",
        ] {
            assert_eq!(carrier(ty), None, "{ty}");
        }
    }

    #[test]
    fn the_exchange_carries_scalars_and_text_carried_types() {
        for ty in ["BIGINT", "DECIMAL(18,3)", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "HUGEINT", "ENUM('a')", "BIT"] {
            assert!(exchange_carries(ty), "{ty}");
        }
        for ty in ["INTERVAL", "UUID", "INTEGER[]", "STRUCT(a INTEGER)", "MAP(VARCHAR, INTEGER)", "UNION(a INTEGER)"] {
            assert!(!exchange_carries(ty), "{ty}");
        }
    }

    #[test]
    fn wraps_only_what_needs_it() {
        let columns = vec![
            Column { name: "k".into(), data_type: "INTEGER".into() },
            Column { name: "s".into(), data_type: "HUGEINT".into() },
        ];
        let map = crate::rewrite::template("SELECT 1 AS k, 2::HUGEINT AS s");
        assert_eq!(
            wrap_map(map, &columns).to_string(),
            "SELECT __quack_t0 AS \"k\", CAST(__quack_t1 AS VARCHAR) AS \"s\" FROM \
             (SELECT 1 AS k, 2::HUGEINT AS s) AS __quack_m (__quack_t0, __quack_t1)"
        );
        let plain = vec![Column { name: "k".into(), data_type: "INTEGER".into() }];
        assert_eq!(wrap_sql("SELECT 1 AS k", &plain), "SELECT 1 AS k");
    }
}
