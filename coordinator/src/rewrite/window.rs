//! Shuffling a reduce whose work is window functions: when every window of the block that reads
//! the partials is partitioned by a common set of keys, the rows can be shuffled on those keys
//! through an exchange, so that each stage-2 task gets every row of its window partitions and
//! computes the block (windows, QUALIFY) whole. DuckDB evaluates a window partition by partition,
//! so the block over a bucket's rows gives exactly the rows the block over all rows gives for the
//! partitions in that bucket.
//!
//! Contract: for a reduce `R` over [`PARTIALS_TABLE`], [`split`] finds the block `B` of `R` that
//! reads the partials (its only reference to them) and gives a [`StageSplit`]:
//! - `keys`: the PARTITION BY expressions that every window of `B` has (as [`super::stage`]
//!   hashes them; a COLLATE is refused);
//! - `group`: `B` over one bucket's rows. When `B` is `R`'s top block, its ORDER BY, LIMIT and
//!   DISTINCT move to `upper`; each ORDER BY expression that is neither an ordinal nor a select
//!   alias is computed by `group` as a leading column `__quack_o<i>`, and a top-N
//!   (`ORDER BY ... LIMIT n [OFFSET m]`) also keeps the first n+m rows of each bucket.
//! - `upper`: `R` with `B` replaced by the stage-2 rows; for a top block,
//!   `SELECT [DISTINCT] * EXCLUDE (__quack_o<i>, ...) FROM __quack_partials__ ORDER BY ... LIMIT ...`.
//!
//! A window without PARTITION BY orders every row as one partition: such a block is refused with
//! that reason (it runs in the single reduce), as is anything this module cannot prove exact.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, GroupByExpr, Ident, NamedWindowExpr, Query, Select, SetExpr, TableFactor, Visit, VisitMut, Visitor,
    VisitorMut, WindowSpec, WindowType,
};

use super::stage::StageSplit;
use super::PARTIALS_TABLE;
use super::{contains_aggregate, contains_window, normalized, template, upper, Context, RewriteError};

fn not(why: impl std::fmt::Display) -> RewriteError {
    RewriteError::unsupported(format!("the reduce's windows cannot be shuffled: {why}"))
}

/// Splits `reduce` on the partition keys of its windows, or says why it cannot.
pub fn split(reduce: &Query, columns: &[String], ctx: &Context) -> Result<StageSplit, RewriteError> {
    let mut finder = BlockFinder { found: Vec::new(), reads: 0 };
    let _ = reduce.visit(&mut finder);
    let ([block], 1) = (finder.found.as_slice(), finder.reads) else {
        return Err(not("the partials are read in more than one block"));
    };
    let top = block == reduce;
    let SetExpr::Select(select) = block.body.as_ref() else { unreachable!("found blocks are SELECTs") };
    let alias = match select.from.as_slice() {
        [from] if from.joins.is_empty() => match &from.relation {
            TableFactor::Table { alias, args: None, .. } => {
                if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                    return Err(not("its partials are renamed"));
                }
                alias.as_ref().map(|a| a.name.clone())
            }
            _ => return Err(not("it reads more than the partials")),
        },
        _ => return Err(not("it reads more than the partials")),
    };
    if block.with.is_some() {
        return Err(not("the block that reads the partials has a WITH clause"));
    }
    if select.top.is_some() || !select.sort_by.is_empty() || block.fetch.is_some() {
        return Err(not("TOP, SORT BY or FETCH"));
    }
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if grouped || select.having.is_some() || contains_aggregate(&select.projection, ctx) {
        return Err(not("the block aggregates"));
    }
    if block.order_by.as_ref().is_some_and(|o| contains_aggregate(o, ctx))
        || select.qualify.as_ref().is_some_and(|q| contains_aggregate(q, ctx))
    {
        return Err(not("the block aggregates"));
    }
    if !contains_window(block) {
        return Err(not("the block has no window function"));
    }
    let keys = common_partition(select, block, alias.as_ref())?;

    let mut group = block.clone();
    let upper = if top {
        upper::move_upper_clauses(&mut group, upper::Mode::Final, columns)?.upper
    } else {
        if block.order_by.is_some() || block.limit_clause.is_some() || select.distinct.is_some() {
            return Err(not("a nested block with ORDER BY, LIMIT or DISTINCT"));
        }
        let mut upper = reduce.clone();
        let _ = VisitMut::visit(&mut upper, &mut Replace);
        upper
    };
    Ok(StageSplit { keys, alias, group, upper, unit: "window partitions", range: None })
}

/// Collects the blocks (queries whose body is one SELECT) that read [`PARTIALS_TABLE`] directly,
/// and counts every reference to it (a set operation's branch is not a block of its own).
struct BlockFinder {
    found: Vec<Query>,
    reads: usize,
}

fn reads_partials(query: &Query) -> bool {
    match query.body.as_ref() {
        SetExpr::Select(select) => select.from.iter().any(|from| {
            std::iter::once(&from.relation)
                .chain(from.joins.iter().map(|j| &j.relation))
                .any(|f| matches!(f, TableFactor::Table { name, .. } if name.to_string() == PARTIALS_TABLE))
        }),
        _ => false,
    }
}

impl Visitor for BlockFinder {
    type Break = ();
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if reads_partials(query) {
            self.found.push(query.clone());
        }
        ControlFlow::Continue(())
    }
    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if matches!(factor, TableFactor::Table { name, .. } if name.to_string() == PARTIALS_TABLE) {
            self.reads += 1;
        }
        ControlFlow::Continue(())
    }
}

/// Replaces the block that reads the partials by `SELECT * FROM __quack_partials__`.
struct Replace;

impl VisitorMut for Replace {
    type Break = ();
    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if reads_partials(query) {
            *query = template("SELECT * FROM __quack_partials__");
        }
        ControlFlow::Continue(())
    }
}

/// The PARTITION BY expressions that every window of the block shares, in the first window's
/// order.
fn common_partition(select: &Select, block: &Query, alias: Option<&Ident>) -> Result<Vec<Expr>, RewriteError> {
    // `t.k` and `k` name one column when `t` is the partials' name in the block.
    let relation = alias.map_or(PARTIALS_TABLE.to_string(), |a| a.value.to_ascii_lowercase());
    let key = |expr: &Expr| match normalized(expr) {
        Expr::CompoundIdentifier(mut parts) if parts.len() == 2 && parts[0].value == relation => {
            Expr::Identifier(parts.remove(1))
        }
        other => other,
    };
    let mut collector = WindowCollector { specs: Vec::new(), error: None, select };
    let _ = select.projection.visit(&mut collector);
    let _ = select.qualify.visit(&mut collector);
    let _ = block.order_by.visit(&mut collector);
    if let Some(error) = collector.error {
        return Err(error);
    }
    let mut specs = collector.specs.into_iter();
    let Some(first) = specs.next() else { return Err(not("the block has no window function")) };
    let mut keys: Vec<Expr> = first.partition_by.clone();
    for spec in specs {
        let theirs: Vec<Expr> = spec.partition_by.iter().map(key).collect();
        keys.retain(|k| theirs.contains(&key(k)));
    }
    if keys.is_empty() {
        return Err(not(
            "a window without PARTITION BY (or windows with no PARTITION BY key in common) orders all rows as one \
             partition, which one process must see whole",
        ));
    }
    if keys.iter().any(|k| contains_window(k) || super::stage::has_collation(k) || has_subquery(k)) {
        return Err(not("a PARTITION BY key has a COLLATE, a window or a subquery"));
    }
    let mut seen = HashSet::new();
    keys.retain(|k| seen.insert(key(k).to_string()));
    Ok(keys)
}

struct WindowCollector<'a> {
    specs: Vec<WindowSpec>,
    error: Option<RewriteError>,
    select: &'a Select,
}

impl WindowCollector<'_> {
    fn named(&self, name: &Ident, depth: usize) -> Result<WindowSpec, RewriteError> {
        let definition = self
            .select
            .named_window
            .iter()
            .find(|d| d.0.value.eq_ignore_ascii_case(&name.value))
            .ok_or_else(|| not(format!("window {name} is not defined in the block")))?;
        match &definition.1 {
            NamedWindowExpr::WindowSpec(spec) if spec.window_name.is_none() => Ok(spec.clone()),
            NamedWindowExpr::NamedWindow(other) if depth < 8 => self.named(other, depth + 1),
            _ => Err(not("a window that extends another window")),
        }
    }
}

impl Visitor for WindowCollector<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            let spec = match &f.over {
                None => return ControlFlow::Continue(()),
                Some(WindowType::WindowSpec(spec)) if spec.window_name.is_none() => Ok(spec.clone()),
                Some(WindowType::WindowSpec(_)) => Err(not("a window that extends another window")),
                Some(WindowType::NamedWindow(name)) => self.named(name, 0),
            };
            match spec {
                Ok(spec) => self.specs.push(spec),
                Err(e) => {
                    self.error = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether `expr` contains a subquery anywhere (a key or bound that needs one cannot be
/// computed by a stage over one bucket).
pub(crate) fn has_subquery(expr: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            ControlFlow::Break(())
        }
    }
    expr.visit(&mut Finder).is_break()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_sql(sql: &str) -> Result<StageSplit, RewriteError> {
        let columns = ["k", "v", "d"].map(String::from);
        split(&super::super::parse_query(sql).unwrap(), &columns, &Context::with_bundled_aggregates())
    }

    #[test]
    fn a_top_block_is_computed_per_bucket_and_ordered_after() {
        let s = split_sql(
            "SELECT k, v, row_number() OVER (PARTITION BY k ORDER BY v) AS rn, sum(v) OVER w AS s \
             FROM __quack_partials__ AS t WINDOW w AS (PARTITION BY t.k, v) QUALIFY rn <= 2 \
             ORDER BY k, rn DESC, v + 1 NULLS FIRST, 2 LIMIT 5 OFFSET 1",
        )
        .unwrap();
        assert_eq!(s.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(), ["k"]);
        assert_eq!(s.alias.map(|a| a.value), Some("t".to_string()));
        assert_eq!(
            s.group.to_string(),
            "SELECT v + 1 AS __quack_o0, k, v, row_number() OVER (PARTITION BY k ORDER BY v) AS rn, \
             sum(v) OVER w AS s FROM __quack_partials__ AS t WINDOW w AS (PARTITION BY t.k, v) QUALIFY rn <= 2 \
             ORDER BY 2, rn DESC, __quack_o0 NULLS FIRST, 3 LIMIT 6"
        );
        assert_eq!(
            s.upper.to_string(),
            "SELECT * EXCLUDE (__quack_o0) FROM __quack_partials__ \
             ORDER BY 1, rn DESC, __quack_o0 NULLS FIRST, 2 LIMIT 5 OFFSET 1"
        );
    }

    #[test]
    fn an_alias_inside_an_order_by_expression_stands_for_its_item() {
        let s = split_sql(
            "SELECT k, lag(v) OVER (PARTITION BY k ORDER BY v) AS prev FROM __quack_partials__ \
             ORDER BY v - coalesce(prev, 0) DESC",
        )
        .unwrap();
        assert_eq!(
            s.group.to_string(),
            "SELECT v - coalesce((lag(v) OVER (PARTITION BY k ORDER BY v)), 0) AS __quack_o0, k, \
             lag(v) OVER (PARTITION BY k ORDER BY v) AS prev FROM __quack_partials__"
        );
        assert_eq!(
            s.upper.to_string(),
            "SELECT * EXCLUDE (__quack_o0) FROM __quack_partials__ ORDER BY __quack_o0 DESC"
        );
    }

    #[test]
    fn a_nested_block_is_replaced_by_the_stage_2_rows() {
        let s = split_sql(
            "SELECT k, count(*) FROM (SELECT k, rank() OVER (PARTITION BY k, d ORDER BY v) AS r \
             FROM __quack_partials__) AS x WHERE r = 1 GROUP BY k ORDER BY k",
        )
        .unwrap();
        assert_eq!(s.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(), ["k", "d"]);
        assert_eq!(
            s.group.to_string(),
            "SELECT k, rank() OVER (PARTITION BY k, d ORDER BY v) AS r FROM __quack_partials__"
        );
        assert_eq!(
            s.upper.to_string(),
            "SELECT k, count(*) FROM (SELECT * FROM __quack_partials__) AS x WHERE r = 1 GROUP BY k ORDER BY k"
        );
    }

    #[test]
    fn refuses_what_is_not_exact() {
        for (sql, why) in [
            ("SELECT v, sum(v) OVER (ORDER BY v) FROM __quack_partials__", "without PARTITION BY"),
            ("SELECT sum(v) OVER (PARTITION BY k), sum(v) OVER (PARTITION BY d) FROM __quack_partials__", "in common"),
            ("SELECT k, sum(v), rank() OVER (PARTITION BY k) FROM __quack_partials__ GROUP BY k", "aggregates"),
            ("SELECT k FROM __quack_partials__ ORDER BY k", "no window"),
            ("SELECT DISTINCT ON (k) k, rank() OVER (PARTITION BY k) FROM __quack_partials__", "DISTINCT ON"),
            (
                "SELECT v * 2 AS v, rank() OVER (PARTITION BY k) FROM __quack_partials__ ORDER BY v + 1",
                "both a select alias and a column",
            ),
            ("SELECT rank() OVER (PARTITION BY k COLLATE nocase) FROM __quack_partials__", "COLLATE"),
            ("SELECT * FROM (SELECT rank() OVER (PARTITION BY k) FROM __quack_partials__ LIMIT 3) x", "nested block"),
            (
                "SELECT * FROM (SELECT k, rank() OVER (PARTITION BY k) FROM __quack_partials__) a, \
                 (SELECT k FROM __quack_partials__) b",
                "more than one block",
            ),
        ] {
            let error = split_sql(sql).unwrap_err().to_string();
            assert!(error.contains(why), "{sql}: {error}");
        }
    }
}
