//! The ship-rows strategy: the map runs the block's FROM and WHERE and projects the column
//! references the rest of the block uses; the reduce runs the block's upper clauses (SELECT,
//! GROUP BY, HAVING, QUALIFY, ORDER BY, LIMIT) unchanged over those rows. Exact for any block,
//! including aggregates with no mergeable state (median, quantile, mode, ordered string_agg).
//!
//! Pushdowns that stay exact: ORDER BY + LIMIT n OFFSET m becomes a per-task top-(n+m) in the map
//! for blocks without aggregates, windows or DISTINCT; SELECT DISTINCT without aggregates
//! deduplicates in the map too.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, Ident, LimitClause, OrderByKind, Query, SelectItem, SetExpr, TableFactor,
    UnaryOperator, Value, VisitMut, VisitorMut,
};

use super::scan::is_placeholder;
use super::{
    build, has_aggregate_or_window, normalized, select_aliases, BlockSplit, Context, LambdaScope, RewriteError,
    Strategy,
};

/// Splits `block` by shipping its rows.
pub(crate) fn split(block: &Query, ctx: &Context) -> Result<BlockSplit, RewriteError> {
    let SetExpr::Select(select) = block.body.as_ref() else {
        return Err(RewriteError::unsplittable("the split block is not a plain SELECT"));
    };
    if select.top.is_some() || !select.sort_by.is_empty() || block.fetch.is_some() {
        return Err(RewriteError::unsplittable("TOP, SORT BY or FETCH in the block that reads the partitioned table"));
    }
    let aliases = select_aliases(&select.projection);
    let star = select.projection.iter().any(super::is_star_item);

    // Reduce: the block over the partials, column references renamed (or kept, with `*`).
    let mut reduce = block.clone();
    let mut refs = RefCollector {
        aliases: &aliases,
        refs: Vec::new(),
        lambdas: LambdaScope::default(),
        subquery: false,
        rename: !star,
    };
    {
        let SetExpr::Select(reduce_select) = reduce.body.as_mut() else { unreachable!() };
        let _ = reduce_select.projection.visit(&mut refs);
        let _ = reduce_select.group_by.visit(&mut refs);
        let _ = reduce_select.having.visit(&mut refs);
        let _ = reduce_select.qualify.visit(&mut refs);
        let _ = reduce_select.named_window.visit(&mut refs);
        if let Some(Distinct::On(exprs)) = &mut reduce_select.distinct {
            let _ = exprs.visit(&mut refs);
        }
    }
    let _ = reduce.order_by.visit(&mut refs);
    if refs.subquery {
        return Err(RewriteError::unsplittable(
            "a subquery above the scan's filters in the block that reads the partitioned table",
        ));
    }
    if has_grouping_sets(select) {
        // DuckDB binds `t.x` and `x` to one column and groups them as one key; shipped as two
        // columns, ROLLUP/CUBE/GROUPING SETS would treat them as two keys.
        let mut seen: HashMap<String, &Expr> = HashMap::new();
        for reference in &refs.refs {
            let Some(name) = last_name(reference) else { continue };
            if let Some(other) = seen.insert(name.value.to_ascii_lowercase(), reference) {
                return Err(RewriteError::unsplittable(format!(
                    "ROLLUP, CUBE or GROUPING SETS over references {other} and {reference}, which may name one column"
                )));
            }
        }
    }
    let reduce_alias = if star { star_alias(select)? } else { None };
    {
        let SetExpr::Select(reduce_select) = reduce.body.as_mut() else { unreachable!() };
        reduce_select.from = build::from_partials(reduce_alias);
        reduce_select.selection = None;
        reduce_select.prewhere = None;
        // Keep output names: an unaliased bare column reference renamed to __quack_r{i} gets its name back.
        for item in reduce_select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(Expr::Identifier(ident)) = item {
                if let Some(original) = refs.original_name(&ident.value) {
                    *item = SelectItem::ExprWithAlias { expr: Expr::Identifier(ident.clone()), alias: original };
                }
            }
        }
    }

    // Map: FROM + WHERE, projecting the references (or everything).
    let aggregating = has_aggregate_or_window(&select.projection, ctx)
        || !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        || select.having.is_some()
        || select.qualify.is_some()
        || block.order_by.as_ref().is_some_and(|o| super::contains_aggregate(o, ctx));
    let items = if star {
        build::star()
    } else if refs.refs.is_empty() {
        vec![build::aliased(Expr::value(Value::Boolean(true)), "__quack_row")]
    } else {
        refs.refs.iter().enumerate().map(|(i, r)| build::aliased(r.clone(), format!("__quack_r{i}"))).collect()
    };
    let dedupe = !aggregating && matches!(select.distinct, Some(Distinct::Distinct));
    let mut map = block.clone();
    {
        let SetExpr::Select(map_select) = map.body.as_mut() else { unreachable!() };
        map_select.projection = items;
        map_select.distinct = dedupe.then_some(Distinct::Distinct);
        map_select.group_by = GroupByExpr::Expressions(vec![], vec![]);
        map_select.having = None;
        map_select.qualify = None;
        map_select.named_window = vec![];
    }
    map.order_by = None;
    map.limit_clause = None;
    let mut top_n_pushdown = false;
    // A window anywhere in the block (even only in ORDER BY) sees all rows: no top-N per task.
    let windowed = super::contains_window(block);
    if !aggregating && !windowed && select.distinct.is_none() {
        if let Some(limit) = pushed_limit(block) {
            map.limit_clause = Some(limit);
            map.order_by = pushed_order_by(block, select, &aliases);
            top_n_pushdown = map.order_by.is_some() || block.order_by.is_none();
            if !top_n_pushdown {
                map.limit_clause = None;
            }
        }
    }
    Ok(BlockSplit { strategy: Strategy::ShipRows, map, reduce, top_n_pushdown, distinct_keys: false })
}

/// With `SELECT *`, the reduce reads the partials under the scan's alias so qualified references
/// keep working. Only a single relation can be shipped as `*` (a join could repeat names).
fn star_alias(select: &sqlparser::ast::Select) -> Result<Option<Ident>, RewriteError> {
    match select.from.as_slice() {
        [twj] if twj.joins.is_empty() => match &twj.relation {
            f if is_placeholder(f) => Ok(match f {
                TableFactor::Table { alias, .. } => alias.as_ref().map(|a| a.name.clone()),
                _ => None,
            }),
            TableFactor::Derived { alias, .. } => Ok(alias.as_ref().map(|a| a.name.clone())),
            _ => Err(RewriteError::unsplittable("SELECT * over a join with the partitioned table")),
        },
        _ => Err(RewriteError::unsplittable("SELECT * over a join with the partitioned table")),
    }
}

/// `LIMIT n+m` for the map when the block's LIMIT and OFFSET are integer literals.
fn pushed_limit(block: &Query) -> Option<LimitClause> {
    let literal = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse::<u64>().ok(),
            _ => None,
        },
        _ => None,
    };
    let (limit, offset) = match block.limit_clause.as_ref()? {
        LimitClause::LimitOffset { limit: Some(limit), offset, limit_by } if limit_by.is_empty() => (
            literal(limit)?,
            match offset {
                Some(o) => literal(&o.value)?,
                None => 0,
            },
        ),
        LimitClause::OffsetCommaLimit { offset, limit } => (literal(limit)?, literal(offset)?),
        _ => return None,
    };
    Some(build::limit(limit.checked_add(offset)?))
}

/// The block's ORDER BY in terms of the map's FROM (ordinals and aliases replaced by the select
/// expressions), or `None` when it cannot be expressed there.
fn pushed_order_by(
    block: &Query,
    select: &sqlparser::ast::Select,
    aliases: &HashMap<String, Expr>,
) -> Option<sqlparser::ast::OrderBy> {
    let mut order_by = block.order_by.clone()?;
    let OrderByKind::Expressions(exprs) = &mut order_by.kind else {
        return None;
    };
    // Star expressions: ordinals count the expanded columns, and REPLACE / RENAME / COLUMNS(...)
    // give output names that are not the FROM clause's columns. Not pushed down.
    if select.projection.iter().any(super::is_star_item) {
        let renaming = select.projection.iter().any(|item| match item {
            SelectItem::Wildcard(o) | SelectItem::QualifiedWildcard(_, o) => {
                o.opt_replace.is_some() || o.opt_rename.is_some()
            }
            _ => true,
        });
        let ordinal = exprs.iter().any(|e| matches!(&e.expr, Expr::Value(_)));
        if renaming || ordinal {
            return None;
        }
    }
    for e in exprs.iter_mut() {
        let replacement = match &e.expr {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => {
                    let position: usize = n.parse().ok()?;
                    match select.projection.get(position.checked_sub(1)?)? {
                        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => Some(expr.clone()),
                        _ => return None,
                    }
                }
                _ => None,
            },
            Expr::Identifier(ident) => aliases.get(&ident.value.to_ascii_lowercase()).cloned(),
            _ => None,
        };
        if let Some(expr) = replacement {
            e.expr = expr;
        }
    }
    // A key that is a literal orders nothing, and the map would read it as an ordinal (`SELECT
    // d.a, 1 AS q ... ORDER BY 2` must not become the map's `ORDER BY 1`) or refuse it (a string):
    // dropped.
    exprs.retain(|e| !is_literal(&e.expr));
    if exprs.is_empty() {
        return None;
    }
    Some(order_by)
}

/// Whether `expr` is a literal as DuckDB's parser sees one: `1`, `(1)`, `-1`, `'x'`, `NULL`.
fn is_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) => true,
        Expr::Nested(inner) => is_literal(inner),
        Expr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, expr } => is_literal(expr),
        _ => false,
    }
}

/// Collects column references (outside lambdas and not select aliases) and renames them __quack_r{i}.
/// True when the block groups by ROLLUP, CUBE or GROUPING SETS.
fn has_grouping_sets(select: &sqlparser::ast::Select) -> bool {
    match &select.group_by {
        sqlparser::ast::GroupByExpr::Expressions(exprs, modifiers) => {
            !modifiers.is_empty()
                || exprs.iter().any(|e| matches!(e, Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_)))
        }
        sqlparser::ast::GroupByExpr::All(modifiers) => !modifiers.is_empty(),
    }
}

struct RefCollector<'a> {
    aliases: &'a HashMap<String, Expr>,
    /// The original references, by index (`__quack_r{index}`).
    refs: Vec<Expr>,
    lambdas: LambdaScope,
    subquery: bool,
    rename: bool,
}

impl RefCollector<'_> {
    fn original_name(&self, renamed: &str) -> Option<Ident> {
        let index: usize = renamed.strip_prefix("__quack_r")?.parse().ok()?;
        let name = last_name(self.refs.get(index)?)?;
        Some(Ident::with_quote('"', name.value.clone()))
    }
}

impl VisitorMut for RefCollector<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.lambdas.enter(expr);
        match expr {
            Expr::Identifier(ident) => {
                let name = ident.value.to_ascii_lowercase();
                if self.lambdas.binds(expr) || self.aliases.contains_key(&name) {
                    return ControlFlow::Continue(());
                }
                self.rename_ref(expr);
            }
            Expr::CompoundIdentifier(_) => self.rename_ref(expr),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.lambdas.leave(expr);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.subquery = true;
        ControlFlow::Continue(())
    }
}

impl RefCollector<'_> {
    fn rename_ref(&mut self, expr: &mut Expr) {
        let key = normalized(expr);
        let index = match self.refs.iter().position(|r| normalized(r) == key) {
            Some(i) => i,
            None => {
                self.refs.push(expr.clone());
                self.refs.len() - 1
            }
        };
        if self.rename {
            *expr = build::column(format!("__quack_r{index}"));
        }
    }
}

/// The column name a reference ends in (`x` of `t.x`).
fn last_name(reference: &Expr) -> Option<&Ident> {
    match reference {
        Expr::Identifier(ident) => Some(ident),
        Expr::CompoundIdentifier(parts) => parts.last(),
        _ => None,
    }
}
