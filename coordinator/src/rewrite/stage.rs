//! Splitting a reduce into a second stage: when the reduce is one aggregating block with group
//! keys, its rows can be shuffled on those keys through an exchange, so that each stage-2 task
//! gets every row of its groups and computes them whole. Only one row per group then reaches the
//! coordinator. A reduce whose windows share PARTITION BY keys is shuffled on those instead
//! ([`super::window`]).
//!
//! Contract: for a grouping reduce `R` over [`PARTIALS_TABLE`], [`split_reduce`] gives
//! - `keys`: R's group keys, as expressions over the partial columns. Stage 1 adds
//!   `hash(keys) % buckets` to each row. DuckDB's `hash` gives equal values equal hashes, as
//!   GROUP BY compares them (`-0.0` and `0.0`, every NaN). Keys under a COLLATE are refused,
//!   because a collation groups values whose hashes differ;
//! - `group`: over one bucket's rows (as [`PARTIALS_TABLE`]), one row per group: the keys, then
//!   each aggregate call of R computed whole ([`super::aggregate::split_whole`]);
//! - `upper`: over all the stage-2 rows, R's upper clauses (SELECT, HAVING, QUALIFY, ORDER BY,
//!   LIMIT, DISTINCT), each aggregate taking its group's one value.
//!
//! `upper` over the union of `group` over the buckets equals R over all rows, as long as no
//! group spans two buckets.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, Query, SelectItem, SetExpr, TableAlias,
    TableAliasColumnDef, TableFactor, Visit, Visitor,
};

use super::{aggregate, build, names_only, scan, template, Context, RewriteError, PARTIALS_TABLE};
use crate::engine::Column;

/// A reduce split into a shuffled stage and the final reduce.
#[derive(Debug, Clone)]
pub struct StageSplit {
    /// The group keys over the partial columns (stage 1 hashes them into buckets).
    pub keys: Vec<Expr>,
    /// The alias the reduce reads the partials under, for evaluating `keys` over stage 1's rows.
    pub alias: Option<sqlparser::ast::Ident>,
    /// Stage 2 over one bucket's rows, read as [`PARTIALS_TABLE`].
    pub group: Query,
    /// The final reduce over the stage-2 rows, read as [`PARTIALS_TABLE`].
    pub upper: Query,
    /// What a stage-2 task computes whole from its bucket ("groups", "window partitions").
    pub unit: &'static str,
    /// `None`: rows are hashed on `keys`. `Some`: `keys` is one sort key and the buckets are its
    /// ranges in output order ([`super::order`]); the planner fills in the bounds.
    pub range: Option<super::order::Range>,
}

/// Splits `reduce` (a query over [`PARTIALS_TABLE`] whose columns are `partial_columns`), or says
/// why it cannot be shuffled.
pub fn split_reduce(reduce: &Query, partial_columns: &[String], ctx: &Context) -> Result<StageSplit, RewriteError> {
    let grouped = match split_grouped(reduce, partial_columns, ctx) {
        Ok(split) => return Ok(split),
        Err(grouped) => grouped,
    };
    if let Some(key) = (!is_grouping(reduce)).then(|| distinct_argument(reduce, ctx)).flatten() {
        return split_distinct(reduce, key, partial_columns, ctx);
    }
    if super::contains_window(reduce) {
        return super::window::split(reduce, partial_columns, ctx);
    }
    match super::order::split(reduce, partial_columns, ctx) {
        Ok(split) => Ok(split),
        Err(ordered) if reduce.order_by.is_some() && !is_grouping(reduce) => Err(ordered),
        Err(_) => Err(grouped),
    }
}

/// True when `reduce`'s top block has GROUP BY.
fn is_grouping(reduce: &Query) -> bool {
    matches!(reduce.body.as_ref(), SetExpr::Select(s)
        if !matches!(&s.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty()))
}

/// `reduce`'s one SELECT block when it reads only the partials, not renamed, and has no WITH,
/// with the alias it reads them under; else `not(why)`.
pub(crate) fn partials_block<'a>(
    reduce: &'a Query,
    not: &dyn Fn(&str) -> RewriteError,
) -> Result<(&'a sqlparser::ast::Select, Option<Ident>), RewriteError> {
    if reduce.with.is_some() {
        return Err(not("it has a WITH clause"));
    }
    let SetExpr::Select(select) = reduce.body.as_ref() else {
        return Err(not("it is not one SELECT block"));
    };
    let alias = match select.from.as_slice() {
        [from] if from.joins.is_empty() => match &from.relation {
            TableFactor::Table { name, alias, args: None, .. } if name.to_string() == PARTIALS_TABLE => {
                if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                    return Err(not("its partials are renamed"));
                }
                alias.as_ref().map(|a| a.name.clone())
            }
            _ => return Err(not("it reads more than the partials")),
        },
        _ => return Err(not("it reads more than the partials")),
    };
    Ok((select, alias))
}

/// The argument of the reduce's DISTINCT aggregate calls when it has some (the first one's).
fn distinct_argument(reduce: &Query, ctx: &Context) -> Option<Expr> {
    struct Finder<'a>(&'a Context<'a>, Option<Expr>);
    impl Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(call) = expr {
                if let FunctionArguments::List(list) = &call.args {
                    if matches!(list.duplicate_treatment, Some(sqlparser::ast::DuplicateTreatment::Distinct))
                        && super::is_aggregate_call(call, self.0)
                    {
                        if let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_slice() {
                            self.1 = Some(arg.clone());
                            return ControlFlow::Break(());
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(ctx, None);
    let _ = reduce.visit(&mut finder);
    finder.1
}

/// A reduce without GROUP BY whose DISTINCT aggregates all take one argument `x` (`SELECT
/// count(DISTINCT x), count(*) FROM partials`): shuffled on `x`. Each stage-2 task sees every
/// row of its values of `x`, so it computes the DISTINCT aggregates over its bucket and every
/// other aggregate's partial state, one row per bucket ([`aggregate::split_partitioned_on`]);
/// the final reduce merges those rows (a sum of per-bucket distinct counts).
fn split_distinct(
    reduce: &Query,
    key: Expr,
    partial_columns: &[String],
    ctx: &Context,
) -> Result<StageSplit, RewriteError> {
    let not = |why: &str| RewriteError::unsupported(format!("the reduce cannot be shuffled: {why}"));
    let (_, alias) = partials_block(reduce, &not)?;
    if !reads_only(&key, partial_columns) {
        return Err(not("its DISTINCT argument is not computed from the map's columns alone"));
    }
    if has_collation(&key) {
        return Err(not("its DISTINCT argument has a COLLATE, which equates values whose hashes differ"));
    }
    let scoped = over_partials(ctx, partial_columns);
    let split = aggregate::split_partitioned_on(reduce, &scoped, &key).map_err(|e| not(&e.to_string()))?;
    Ok(StageSplit {
        keys: vec![key],
        alias,
        group: split.map,
        upper: split.reduce,
        unit: "distinct values",
        range: None,
    })
}

/// The context of a reduce's block, whose only table is the partials (`partial_columns`).
fn over_partials<'a>(ctx: &Context<'a>, partial_columns: &[String]) -> Context<'a> {
    Context {
        aggregates: ctx.aggregates.clone(),
        scan_columns: partial_columns.iter().map(|c| c.to_ascii_lowercase()).collect(),
        binder: None,
        companion: None,
    }
}

/// A reduce that is one grouping block: shuffled on its group keys.
fn split_grouped(reduce: &Query, partial_columns: &[String], ctx: &Context) -> Result<StageSplit, RewriteError> {
    let not = |why: &str| RewriteError::unsupported(format!("the reduce cannot be shuffled: {why}"));
    let (select, alias) = partials_block(reduce, &not)?;
    let grouped = matches!(&select.group_by, GroupByExpr::Expressions(e, m) if !e.is_empty() && m.is_empty())
        || matches!(&select.group_by, GroupByExpr::All(m) if m.is_empty());
    if !grouped {
        return Err(not("it has no GROUP BY keys to shuffle on"));
    }
    let scoped = over_partials(ctx, partial_columns);
    let split = aggregate::split_whole(reduce, &scoped).map_err(|e| not(&e.to_string()))?;
    let SetExpr::Select(group_select) = split.map.body.as_ref() else { unreachable!("the map is a SELECT") };
    let key_count = match &group_select.group_by {
        GroupByExpr::Expressions(e, _) => e.len(),
        GroupByExpr::All(_) => 0,
    };
    let keys: Vec<Expr> = group_select.projection[..key_count]
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => Some(expr.clone()),
            _ => None,
        })
        .collect();
    if keys.is_empty() || keys.len() != key_count {
        return Err(not("it has no GROUP BY keys to shuffle on"));
    }
    if keys.iter().any(has_collation) {
        return Err(not("a group key has a COLLATE, which groups values whose hashes differ"));
    }
    let mut group = split.map;
    // Each group is whole in its bucket, so R's HAVING already holds there: stage 2 keeps only
    // the groups that pass it (a HAVING count(*) > 1 over nearly unique keys then sends few rows
    // to the coordinator). `upper` applies it again, to the same values.
    if let (Some(having), SetExpr::Select(group_select)) = (&select.having, group.body.as_mut()) {
        if reads_only(having, partial_columns) {
            group_select.having = Some(having.clone());
        }
    }
    Ok(StageSplit { keys, alias, group, upper: split.reduce, unit: "groups", range: None })
}

/// Whether `expr` names no column but the partial columns (no select alias of the reduce) and
/// calls nothing whose value changes from one evaluation to the next, nor a subquery: it
/// evaluates the same in stage 2 as in the final reduce.
fn reads_only(expr: &Expr, partial_columns: &[String]) -> bool {
    names_only(expr, partial_columns, |expr| match expr {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => true,
        Expr::Function(f) => ["random", "uuid", "gen_random_uuid", "nextval", "currval"]
            .iter()
            .any(|name| f.name.to_string().eq_ignore_ascii_case(name)),
        _ => false,
    })
}

/// The column of stage 1's rows that holds their bucket ([`quack_lambda::exchange::BUCKET_COLUMN`]).
pub use quack_lambda::exchange::BUCKET_COLUMN;

impl StageSplit {
    /// Stage 1: `map` with each row's bucket added as the last column,
    /// `SELECT *, CAST(hash(keys) % buckets AS INTEGER) AS __quack_bucket FROM (map) AS alias`.
    pub fn bucketed(&self, map: Query, buckets: u32) -> Query {
        let mut outer = template("SELECT * FROM (SELECT 1) AS __quack_partials__");
        if let SetExpr::Select(select) = outer.body.as_mut() {
            select.projection.push(build::aliased(self.bucket(buckets), BUCKET_COLUMN));
            select.from[0].relation = TableFactor::Derived {
                lateral: false,
                subquery: Box::new(map),
                alias: Some(TableAlias {
                    explicit: true,
                    name: self.alias.clone().unwrap_or_else(|| Ident::new(PARTIALS_TABLE)),
                    columns: vec![],
                    at: None,
                }),
                sample: None,
            };
        }
        outer
    }

    /// A stage-1 row's bucket: `hash(keys) % buckets`, or the key's range.
    pub fn bucket(&self, buckets: u32) -> Expr {
        match &self.range {
            None => bucket_expr(&self.keys, buckets),
            Some(range) => range_bucket_expr(&self.keys[0], range),
        }
    }

    /// How stage 1 assigns buckets, for `explain`.
    pub fn describe_partitioning(&self) -> String {
        let keys = self.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
        match &self.range {
            None => format!("by hash({keys})"),
            Some(range) => format!(
                "by range of {keys}{}{} in output order, bounds [{}]",
                range.options,
                if range.nulls_first { " (NULLs in the first bucket)" } else { " (NULLs in the last bucket)" },
                range.bounds.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Stage 2 over `source` (rows with the partial columns) in place of the partials.
    pub fn group_over(&self, source: Query) -> Query {
        let mut group = self.group.clone();
        if let SetExpr::Select(select) = group.body.as_mut() {
            let alias = self.alias.clone().unwrap_or_else(|| Ident::new(PARTIALS_TABLE));
            select.from[0].relation = TableFactor::Derived {
                lateral: false,
                subquery: Box::new(source),
                alias: Some(TableAlias { explicit: true, name: alias, columns: vec![], at: None }),
                sample: None,
            };
        }
        group
    }
}

/// `CAST(hash(keys) % buckets AS INTEGER)`: a row's bucket. DuckDB's `hash` gives values that
/// compare equal (as GROUP BY and an equi-join compare them, within one type) equal hashes.
pub fn bucket_expr(keys: &[Expr], buckets: u32) -> Expr {
    let mut hash = build::expr_template("hash(__quack_hole_k)");
    if let Expr::Function(call) = &mut hash {
        if let FunctionArguments::List(list) = &mut call.args {
            list.args = keys.iter().map(|k| FunctionArg::Unnamed(FunctionArgExpr::Expr(k.clone()))).collect();
        }
    }
    build::fill(
        build::expr_template("CAST(__quack_hole_h % __quack_hole_n AS INTEGER)"),
        &[("h", hash), ("n", build::number(u64::from(buckets)))],
    )
}

/// A ranged sort key's bucket, numbered in output order: for a non-NULL key, how many bounds
/// are at or below it (ascending) or `n -` that (descending), `n` bounds giving `n + 1` buckets;
/// a NULL key goes to the first or the last bucket, where the sort puts NULLs. Equal keys share
/// a bucket, and DuckDB's `>=` orders the allowed key types as its ORDER BY does.
pub fn range_bucket_expr(key: &Expr, range: &super::order::Range) -> Expr {
    let n = range.bounds.len() as u64;
    let mut count = build::number(0);
    for bound in &range.bounds {
        count = build::fill(
            build::expr_template("__quack_hole_a + CAST(__quack_hole_k >= __quack_hole_b AS INTEGER)"),
            &[("a", count), ("k", key.clone()), ("b", bound.clone())],
        );
    }
    let non_null = if range.descending() {
        build::fill(build::expr_template("__quack_hole_n - (__quack_hole_c)"), &[("n", build::number(n)), ("c", count)])
    } else {
        count
    };
    let nulls = build::number(if range.nulls_first { 0 } else { n });
    build::fill(
        build::expr_template(
            "CAST(CASE WHEN __quack_hole_k IS NULL THEN __quack_hole_z ELSE __quack_hole_c END AS INTEGER)",
        ),
        &[("k", key.clone()), ("z", nulls), ("c", non_null)],
    )
}

/// A ranged sort's key over the map's rows: `SELECT key AS __quack_k FROM (map) AS alias`.
pub fn key_source(key: &Expr, alias: Option<Ident>, map: Query) -> Query {
    let mut query = template("SELECT 1 AS __quack_k FROM (SELECT 1) AS __quack_partials__");
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = vec![build::aliased(key.clone(), "__quack_k")];
        select.from[0].relation = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(map),
            alias: Some(TableAlias {
                explicit: true,
                name: alias.unwrap_or_else(|| Ident::new(PARTIALS_TABLE)),
                columns: vec![],
                at: None,
            }),
            sample: None,
        };
    }
    query
}

/// The `buckets - 1` bounds of equal shares of `sampled`'s key (from [`key_source`]), as text:
/// `SELECT CAST(q AS VARCHAR) FROM (SELECT unnest(quantile_disc(__quack_k, [1/n, ...])) AS q FROM (sampled))`.
pub fn quantiles_query(sampled: &Query, buckets: u32) -> Query {
    let mut query =
        template("SELECT CAST(q AS VARCHAR) FROM (SELECT unnest(quantile_disc(__quack_k, [0.5])) AS q FROM (SELECT 1) AS __quack_s)");
    let fractions: Vec<Expr> = (1..buckets.max(2))
        .map(|i| {
            Expr::value(sqlparser::ast::Value::Number(format!("{}", f64::from(i) / f64::from(buckets.max(2))), false))
        })
        .collect();
    struct Fill<'a>(&'a [Expr], &'a Query);
    impl sqlparser::ast::VisitorMut for Fill<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Array(array) = expr {
                array.elem = self.0.to_vec();
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Derived { subquery, alias: Some(alias), .. } = factor {
                if alias.name.value == "__quack_s" {
                    **subquery = self.1.clone();
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = sqlparser::ast::VisitMut::visit(&mut query, &mut Fill(&fractions, sampled));
    query
}

/// Where DuckDB's ORDER BY with `options` puts NULLs: one row, `'true'` when first:
/// `SELECT CAST(x IS NULL AS VARCHAR) FROM (VALUES (1), (NULL)) AS t(x) ORDER BY x <options> LIMIT 1`.
pub fn nulls_probe(options: &sqlparser::ast::OrderByOptions) -> Query {
    let mut query = template("SELECT CAST(x IS NULL AS VARCHAR) FROM (VALUES (1), (NULL)) AS t(x) ORDER BY x LIMIT 1");
    if let Some(order_by) = &mut query.order_by {
        if let sqlparser::ast::OrderByKind::Expressions(items) = &mut order_by.kind {
            items[0].options = options.clone();
        }
    }
    query
}

/// `CAST('text' AS data_type)`: a sampled bound as a constant of the key's type.
pub fn typed_literal(text: &str, data_type: &str) -> Expr {
    scan::cast(Expr::Value(sqlparser::ast::Value::SingleQuotedString(text.to_string()).into()), data_type)
}

/// A co-partitioned join's stage 1 over one task's `scan`: the table's `columns` (those stage 2
/// reads), then each row's bucket,
/// `SELECT "c0", .., CAST(hash(keys) % buckets AS INTEGER) AS __quack_bucket FROM scan`.
pub fn bucketed_scan(scan: TableFactor, columns: &[Column], keys: &[Expr], buckets: u32) -> Query {
    let mut query = template("SELECT 1 FROM __quack_x");
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = columns
            .iter()
            .map(|c| SelectItem::UnnamedExpr(Expr::Identifier(Ident::with_quote('"', &c.name))))
            .collect();
        select.projection.push(build::aliased(bucket_expr(keys, buckets), BUCKET_COLUMN));
        select.from[0].relation = scan;
    }
    query
}

/// Rows of `columns` read from exchange `files` (written with `carried` types, in order):
/// `SELECT CAST(__quack_t0 AS t0) AS "c0", ... FROM read_parquet([files]) AS __quack_x(__quack_t0, ...)`.
pub fn exchange_source(files: &[String], columns: &[(String, String)]) -> Query {
    let position = |i: usize| Ident::new(format!("__quack_t{i}"));
    let mut query = template("SELECT 1 FROM __quack_x");
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = columns
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| SelectItem::ExprWithAlias {
                expr: scan::cast(Expr::Identifier(position(i)), ty),
                alias: Ident::with_quote('"', name),
            })
            .collect();
        let alias = TableAlias {
            explicit: true,
            name: Ident::new("__quack_x"),
            columns: (0..columns.len()).map(|i| TableAliasColumnDef::from_name(position(i).value)).collect(),
            at: None,
        };
        select.from[0].relation = scan::parquet_files(files, Some(alias));
    }
    query
}

/// No rows of `columns`: `SELECT CAST(NULL AS t0) AS "c0", ... WHERE false` (for binding stage 2).
pub fn empty_source(columns: &[(String, String)]) -> Query {
    let mut query = template("SELECT 1 WHERE false");
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = columns
            .iter()
            .map(|(name, ty)| SelectItem::ExprWithAlias {
                expr: scan::cast(Expr::Value(sqlparser::ast::Value::Null.into()), ty),
                alias: Ident::with_quote('"', name),
            })
            .collect();
    }
    query
}

pub(crate) fn has_collation(expr: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Collate { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    expr.visit(&mut Finder).is_break()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sql: &str, columns: &[&str]) -> Result<StageSplit, RewriteError> {
        let query = super::super::parse_query(sql).unwrap();
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        split_reduce(&query, &columns, &Context::with_bundled_aggregates())
    }

    #[test]
    fn a_holistic_aggregate_is_computed_whole_per_group_and_taken_once() {
        let s = split(
            "SELECT k, median(v) AS m, count(DISTINCT v) FROM __quack_partials__ GROUP BY k HAVING count(*) > 1 \
             ORDER BY m DESC LIMIT 3",
            &["k", "v"],
        )
        .unwrap();
        assert_eq!(s.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(), ["k"]);
        assert_eq!(
            s.group.to_string(),
            "SELECT k AS __quack_k0, median(v) AS __quack_a0, count(DISTINCT v) AS __quack_a1, count(*) AS __quack_a2 \
             FROM __quack_partials__ GROUP BY 1 HAVING count(*) > 1"
        );
        assert_eq!(
            s.upper.to_string(),
            "SELECT __quack_k0 AS k, any_value(__quack_a0) AS m, any_value(__quack_a1) FROM __quack_partials__ \
             GROUP BY __quack_k0 HAVING any_value(__quack_a2) > 1 ORDER BY m DESC LIMIT 3"
        );
    }

    #[test]
    fn having_goes_to_stage_2_only_when_it_reads_the_partials_alone() {
        let group = |having: &str| {
            let sql = format!("SELECT k, count(*) AS n FROM __quack_partials__ GROUP BY k HAVING {having}");
            split(&sql, &["k", "v"]).unwrap().group.to_string()
        };
        assert!(group("count(*) > 1 AND max(v) < 9").ends_with("HAVING count(*) > 1 AND max(v) < 9"));
        // An alias of the reduce and a random draw are not stage 2's to evaluate.
        for having in ["n > 1", "random() < 0.5"] {
            assert!(!group(having).contains("HAVING"), "{having}");
        }
    }

    #[test]
    fn distinct_aggregates_without_group_by_are_shuffled_on_their_argument() {
        let s = split(
            "SELECT CAST(count(DISTINCT d) AS BIGINT) AS n, sum(DISTINCT d) FILTER (WHERE f) AS s, avg(DISTINCT d), \
             CAST(coalesce(sum(a), 0) AS BIGINT) AS rows FROM __quack_partials__ HAVING count(DISTINCT d) > 1",
            &["d", "f", "a"],
        )
        .unwrap();
        assert_eq!(s.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(), ["d"]);
        assert_eq!(
            s.group.to_string(),
            "SELECT count(DISTINCT d) AS __quack_a0, sum(DISTINCT d) FILTER (WHERE f) AS __quack_a1, \
             sum(DISTINCT d) AS __quack_a2_s, count(DISTINCT d) AS __quack_a2_c, sum(a) AS __quack_a3 \
             FROM __quack_partials__"
        );
        assert_eq!(
            s.upper.to_string(),
            "SELECT CAST(CAST(coalesce(sum(__quack_a0), 0) AS BIGINT) AS BIGINT) AS n, sum(__quack_a1) AS s, \
             (sum(__quack_a2_s) / nullif(sum(__quack_a2_c), 0)), \
             CAST(coalesce(sum(__quack_a3), 0) AS BIGINT) AS rows FROM __quack_partials__ \
             HAVING CAST(coalesce(sum(__quack_a0), 0) AS BIGINT) > 1"
        );
        // Two DISTINCT arguments cannot both be partitioned on; other holistic aggregates
        // have no partial state.
        for (sql, why) in [
            ("SELECT count(DISTINCT d), count(DISTINCT a) FROM __quack_partials__", "another expression"),
            ("SELECT count(DISTINCT d), median(a) FROM __quack_partials__", "no exact split"),
            ("SELECT count(DISTINCT d COLLATE nocase) FROM __quack_partials__", "COLLATE"),
        ] {
            let error = split(sql, &["d", "a"]).unwrap_err().to_string();
            assert!(error.contains(why), "{sql}: {error}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_shuffled() {
        for (sql, why) in [
            ("SELECT median(v) FROM __quack_partials__", "no GROUP BY keys"),
            ("SELECT k, count(*) FROM __quack_partials__ GROUP BY ROLLUP (k)", "ROLLUP"),
            ("SELECT k FROM __quack_partials__ p JOIN d ON p.k = d.k GROUP BY k", "more than the partials"),
            ("WITH x AS (SELECT 1) SELECT k FROM __quack_partials__ GROUP BY k", "WITH"),
            ("SELECT k COLLATE nocase, count(*) FROM __quack_partials__ GROUP BY 1", "COLLATE"),
            ("SELECT k, v FROM __quack_partials__ GROUP BY k", "neither grouped nor aggregated"),
        ] {
            let error = split(sql, &["k", "v"]).unwrap_err().to_string();
            assert!(error.contains(why), "{sql}: {error}");
        }
    }
}
