//! Sorting through the exchange: a reduce that is one block ordering rows without a LIMIT (every
//! row is in the answer, in order) is range-partitioned on its first ORDER BY key. Stage 1 puts
//! each row in the bucket of the key's range, numbered in output order; stage 2 sorts each bucket
//! by the whole ORDER BY; the reduce concatenates the buckets in order, without sorting again.
//!
//! Contract: [`split`] gives a [`StageSplit`] whose `keys` is the first ORDER BY key (over the
//! partial columns) and whose `range` says how it orders. The planner samples the key to choose
//! the bounds ([`Range::bounds`]); any bounds give the exact answer, since a bucket holds every
//! row whose key lies in its range and the buckets' ranges follow the output order: with bounds
//! `b1 <= ... <= b(n-1)` (as DuckDB compares the key's type), a non-NULL key's bucket is the
//! number of bounds at or below it (counted from the end for DESC), and NULL keys go to the first
//! or the last bucket, where DuckDB's ORDER BY puts NULLs. Rows with equal keys share a bucket.

use sqlparser::ast::{Expr, GroupByExpr, OrderByKind, OrderByOptions, OrderBySort, Query};

use super::stage::StageSplit;
use super::upper::{move_upper_clauses, Mode};
use super::{contains_aggregate, contains_window, Context, RewriteError};

fn not(why: impl std::fmt::Display) -> RewriteError {
    RewriteError::unsupported(format!("the reduce's sort cannot be range-partitioned: {why}"))
}

/// How the range-partitioned key orders, and the bounds between its buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// The first ORDER BY item's direction and NULLS placement, as written.
    pub options: OrderByOptions,
    /// Whether DuckDB puts NULL keys first under `options` (the planner asks DuckDB).
    pub nulls_first: bool,
    /// Ascending bounds, typed literals of the key's type; `n - 1` of them for `n` buckets.
    pub bounds: Vec<Expr>,
}

impl Range {
    pub fn descending(&self) -> bool {
        matches!(self.options.sort, Some(OrderBySort::Desc))
    }
}

/// Splits `reduce` into a ranged sort, or says why it cannot be.
pub fn split(reduce: &Query, columns: &[String], ctx: &Context) -> Result<StageSplit, RewriteError> {
    let not = |why: &str| not(why);
    let (select, alias) = super::stage::partials_block(reduce, &not)?;
    match &reduce.order_by {
        Some(o) if matches!(&o.kind, OrderByKind::Expressions(items) if !items.is_empty()) => {}
        _ => return Err(not("it has no ORDER BY expressions")),
    }
    if reduce.limit_clause.is_some() || reduce.fetch.is_some() {
        return Err(not("it has a LIMIT (a top-N needs no range)"));
    }
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if grouped
        || select.having.is_some()
        || select.qualify.is_some()
        || select.top.is_some()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || contains_aggregate(reduce, ctx)
        || contains_window(reduce)
    {
        return Err(not("it groups, aggregates or computes windows"));
    }
    let mut group = reduce.clone();
    let moved = move_upper_clauses(&mut group, Mode::Ranged, columns)?;
    let (key, options) = moved.first_key.ok_or_else(|| not("no first key"))?;
    if super::window::has_subquery(&key) {
        return Err(not("the first ORDER BY key has a subquery"));
    }
    Ok(StageSplit {
        keys: vec![key],
        alias,
        group,
        upper: moved.upper,
        unit: "key range (sorted)",
        range: Some(Range { options, nulls_first: false, bounds: Vec::new() }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_sql(sql: &str) -> Result<StageSplit, RewriteError> {
        let columns = ["a", "b"].map(String::from);
        split(&super::super::parse_query(sql).unwrap(), &columns, &Context::with_bundled_aggregates())
    }

    #[test]
    fn a_sort_is_ranged_on_its_first_key_and_concatenated() {
        let s = split_sql("SELECT a, b * 2 AS c FROM __quack_partials__ AS t ORDER BY t.b + 1 DESC NULLS FIRST, c, 1")
            .unwrap();
        assert_eq!(s.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(), ["t.b + 1"]);
        let range = s.range.unwrap();
        assert!(range.descending());
        assert_eq!(range.options.nulls_first, Some(true));
        assert_eq!(
            s.group.to_string(),
            "SELECT t.b + 1 AS __quack_o0, a, b * 2 AS c FROM __quack_partials__ AS t \
             ORDER BY __quack_o0 DESC NULLS FIRST, c, 2"
        );
        assert_eq!(s.upper.to_string(), "SELECT * EXCLUDE (__quack_o0) FROM __quack_partials__");
        let s = split_sql("SELECT a, b * 2 AS c FROM __quack_partials__ ORDER BY c").unwrap();
        assert_eq!(s.keys[0].to_string(), "b * 2");
        assert_eq!(s.upper.to_string(), "SELECT * FROM __quack_partials__");
        let s = split_sql("SELECT a, b FROM __quack_partials__ ORDER BY 2 DESC").unwrap();
        assert_eq!(s.keys[0].to_string(), "b");
    }

    /// Sorting rows by (bucket, key) gives DuckDB's own order by the key, for each direction and
    /// NULL placement, with bounds that fall on values, between them, and repeat.
    #[test]
    fn buckets_follow_the_output_order() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let values =
            "(CAST(3.5 AS DOUBLE)), (NULL), ('nan'), (-1.0), (3.5), (0.0), (-0.0), ('inf'), (10.25), (NULL), (2.0)";
        let key = super::super::parse_expr("x").unwrap();
        for order in ["x", "x DESC", "x NULLS FIRST", "x DESC NULLS FIRST", "x ASC NULLS LAST", "x DESC NULLS LAST"] {
            let split = split_sql(&format!("SELECT a AS x FROM __quack_partials__ ORDER BY {order}")).unwrap();
            let mut range = split.range.unwrap();
            let probe = crate::rewrite::stage::nulls_probe(&range.options).to_string();
            range.nulls_first = conn.query_row(&probe, [], |r| r.get::<_, String>(0)).unwrap() == "true";
            for bounds in [vec![], vec!["3.5"], vec!["-1.0", "0.0", "3.5", "3.5", "nan"], vec!["1.5", "5"]] {
                range.bounds = bounds.iter().map(|b| crate::rewrite::stage::typed_literal(b, "DOUBLE")).collect();
                let bucket = crate::rewrite::stage::range_bucket_expr(&key, &range);
                let rows = |sql: String| -> Vec<Option<f64>> {
                    let mut stmt = conn.prepare(&sql).unwrap();
                    let got = stmt.query_map([], |r| r.get::<_, Option<f64>>(0)).unwrap();
                    got.map(|v| v.unwrap()).collect()
                };
                let truth = rows(format!("SELECT x FROM (VALUES {values}) AS t(x) ORDER BY {order}"));
                let staged = rows(format!(
                    "SELECT x FROM (SELECT x, {bucket} AS b FROM (VALUES {values}) AS t(x)) ORDER BY b, {order}"
                ));
                // -0.0 and 0.0 are equal keys: their order among themselves is not the answer's.
                let text = |v: &[Option<f64>]| {
                    v.iter().map(|x| format!("{:?}", x.map(|x| if x == 0.0 { 0.0 } else { x }))).collect::<Vec<_>>()
                };
                assert_eq!(text(&staged), text(&truth), "ORDER BY {order} with bounds {bounds:?}: {bucket}");
            }
        }
    }

    #[test]
    fn refuses_what_is_not_a_plain_sort() {
        for (sql, why) in [
            ("SELECT a FROM __quack_partials__ ORDER BY a LIMIT 3", "LIMIT"),
            ("SELECT a FROM __quack_partials__", "no ORDER BY"),
            ("SELECT a FROM __quack_partials__ ORDER BY ALL", "no ORDER BY expressions"),
            ("SELECT a, count(*) FROM __quack_partials__ GROUP BY a ORDER BY a", "groups"),
            ("SELECT a, rank() OVER (PARTITION BY a) FROM __quack_partials__ ORDER BY a", "windows"),
            ("SELECT DISTINCT a FROM __quack_partials__ ORDER BY a", "DISTINCT"),
            ("SELECT * FROM __quack_partials__ ORDER BY 2", "first ORDER BY key"),
            ("SELECT a FROM __quack_partials__ ORDER BY a COLLATE nocase", "COLLATE"),
        ] {
            let error = split_sql(sql).unwrap_err().to_string();
            assert!(error.contains(why), "{sql}: {error}");
        }
    }
}
