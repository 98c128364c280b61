//! Moving a top block's ORDER BY, LIMIT and DISTINCT above a second stage: stage 2 computes the
//! block over one bucket's rows, and the query above it orders, limits and deduplicates the
//! union of the buckets.
//!
//! Contract: for a top block `B` (one SELECT over the partials), [`move_upper_clauses`] leaves in
//! `B` its projection, with a leading column `__quack_o<i>` for each ORDER BY expression that is
//! neither an ordinal nor a select alias (its value, computed where its names bind as they do in
//! `B`), and returns the query over stage 2's rows:
//! `SELECT [DISTINCT] * EXCLUDE (__quack_o<i>, ...) FROM __quack_partials__ [ORDER BY ...] [LIMIT ...]`,
//! whose output columns are `B`'s.
//! - [`Mode::Final`]: the upper query orders and limits; a top-N (`ORDER BY ... LIMIT n
//!   [OFFSET m]`, literal numbers) also keeps each bucket's first n+m rows in `B`.
//! - [`Mode::Ranged`]: the buckets are ranges of the first ORDER BY key in output order, so `B`
//!   sorts each bucket and the upper query concatenates them in bucket order, without sorting
//!   again. The first key is returned, as an expression over the partials.
//!
//! An ORDER BY expression that uses a select alias inside a larger expression, or has a COLLATE,
//! is refused: the upper query could not order by the same values.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Distinct, Expr, LimitClause, ObjectName, ObjectNamePart, OrderByExpr, OrderByKind, OrderByOptions, Query,
    SelectItem, SetExpr, Value, Visit, Visitor,
};

use super::{build, is_star_item, select_aliases, template, RewriteError};

/// Stage 2's leading columns that carry ORDER BY values to the upper query: `__quack_o<i>`.
const ORDER_PREFIX: &str = "__quack_o";

fn not(why: impl std::fmt::Display) -> RewriteError {
    RewriteError::unsupported(format!("the reduce's ORDER BY cannot move above a second stage: {why}"))
}

/// Where the final order comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The upper query sorts (stage 2's buckets are not ordered among themselves).
    Final,
    /// Stage 2's buckets are key ranges in output order: each sorts its own rows.
    Ranged,
}

/// The query above stage 2 and, in [`Mode::Ranged`], the first ORDER BY key.
#[derive(Debug, Clone)]
pub(crate) struct Moved {
    pub upper: Query,
    /// The first ORDER BY key as an expression over the partials, with its direction and NULLS.
    pub first_key: Option<(Expr, OrderByOptions)>,
}

/// Moves `group`'s ORDER BY, LIMIT and DISTINCT into the returned upper query (see the module's
/// contract). `group` is a top block whose body is one SELECT.
pub(crate) fn move_upper_clauses(group: &mut Query, mode: Mode, columns: &[String]) -> Result<Moved, RewriteError> {
    let columns: std::collections::HashSet<String> = columns.iter().map(|c| c.to_ascii_lowercase()).collect();
    let SetExpr::Select(select) = group.body.as_mut() else {
        return Err(not("the block is not one SELECT"));
    };
    let distinct = match select.distinct.take() {
        None => false,
        Some(Distinct::Distinct) => true,
        Some(_) => return Err(not("DISTINCT ON")),
    };
    let aliases = select_aliases(&select.projection);
    let mut alias_counts: HashMap<String, usize> = HashMap::new();
    for name in select.projection.iter().filter_map(|i| match i {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_ascii_lowercase()),
        _ => None,
    }) {
        *alias_counts.entry(name).or_default() += 1;
    }
    let projection = select.projection.clone();
    let order_by = group.order_by.take();
    let limit = group.limit_clause.take();
    if mode == Mode::Ranged && (limit.is_some() || distinct) {
        return Err(not("a ranged sort with LIMIT or DISTINCT"));
    }

    let mut hidden: Vec<SelectItem> = Vec::new();
    let mut upper_order = order_by.clone();
    let mut group_order: Option<Vec<OrderByExpr>> = None;
    let mut first_key = None;
    if let Some(order_by) = &mut upper_order {
        match &mut order_by.kind {
            OrderByKind::All(_) if mode == Mode::Ranged => return Err(not("ORDER BY ALL in a ranged sort")),
            OrderByKind::All(_) => {}
            OrderByKind::Expressions(items) => {
                let mut in_group = Vec::new();
                let mut ordinals = Vec::new();
                for item in items.iter_mut() {
                    if item.with_fill.is_some() {
                        return Err(not("ORDER BY ... WITH FILL"));
                    }
                    if super::stage::has_collation(&item.expr) {
                        return Err(not("an ORDER BY expression has a COLLATE"));
                    }
                    let mut for_group = item.clone();
                    // The item's value as an expression over the partials (for the first key).
                    let value = match &item.expr {
                        Expr::Value(v) if matches!(v.value, Value::Number(..)) => {
                            ordinals.push(in_group.len());
                            literal(&item.expr)
                                .and_then(|n| usize::try_from(n).ok())
                                .filter(|&n| {
                                    n >= 1 && projection[..n.min(projection.len())].iter().all(|i| !is_star_item(i))
                                })
                                .and_then(|n| projection.get(n - 1))
                                .and_then(|i| match i {
                                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                                        Some(e.clone())
                                    }
                                    _ => None,
                                })
                        }
                        Expr::Identifier(name) if aliases.contains_key(&name.value.to_ascii_lowercase()) => {
                            let key = name.value.to_ascii_lowercase();
                            if alias_counts.get(&key).copied().unwrap_or(0) > 1 {
                                return Err(not(format!("ORDER BY {name} names two select items")));
                            }
                            aliases.get(&key).cloned()
                        }
                        expr if projection_position(expr, &projection).is_some() && !references_any(expr, &aliases) => {
                            // The value of a select item: ordered by its position.
                            let position = projection_position(expr, &projection).expect("checked");
                            let value = expr.clone();
                            item.expr = build::number(position as u64 + 1);
                            for_group.expr = build::number(position as u64 + 1);
                            ordinals.push(in_group.len());
                            Some(value)
                        }
                        expr => {
                            // A select alias inside a larger expression stands for its select
                            // item, as DuckDB's ORDER BY binds it, unless it also names a column.
                            let expr = &substitute_aliases(expr, &aliases, &columns)?;
                            if distinct {
                                return Err(not("SELECT DISTINCT with ORDER BY an expression"));
                            }
                            let value = expr.clone();
                            let name = format!("{ORDER_PREFIX}{}", hidden.len());
                            hidden.push(build::aliased(expr.clone(), name.clone()));
                            item.expr = build::column(name.clone());
                            for_group.expr = build::column(name);
                            Some(value)
                        }
                    };
                    if first_key.is_none() && in_group.is_empty() {
                        first_key = Some(value.map(|v| (v, item.options.clone())));
                    }
                    in_group.push(for_group);
                }
                // Ordinals in stage 2 count its leading ORDER BY columns.
                for i in ordinals {
                    let shifted = literal(&in_group[i].expr).and_then(|n| n.checked_add(hidden.len() as u64));
                    match shifted {
                        Some(n) => in_group[i].expr = build::number(n),
                        None => return Err(not("an ORDER BY ordinal is not a whole number")),
                    }
                }
                group_order = Some(in_group);
            }
        }
    }
    let first_key = match (mode, first_key) {
        (Mode::Final, _) => None,
        (Mode::Ranged, Some(Some(key))) => Some(key),
        (Mode::Ranged, _) => return Err(not("the first ORDER BY key is not an expression over the rows")),
    };
    let SetExpr::Select(select) = group.body.as_mut() else { unreachable!("checked above") };
    if !hidden.is_empty() {
        let mut projection = hidden.clone();
        projection.append(&mut select.projection);
        select.projection = projection;
    }

    let group_clause = |order: Vec<OrderByExpr>| {
        let mut clause = template("SELECT 1 ORDER BY 1").order_by.expect("the template has an ORDER BY");
        clause.kind = OrderByKind::Expressions(order);
        clause
    };
    match mode {
        Mode::Final => {
            // Per-bucket top-N: the first n+m rows of each bucket in the final order hold the answer's.
            let top_n = match (&limit, &group_order, distinct) {
                (Some(LimitClause::LimitOffset { limit: Some(n), offset, limit_by }), Some(order), false)
                    if limit_by.is_empty() =>
                {
                    let m = match offset {
                        None => Some(0),
                        Some(o) => literal(&o.value),
                    };
                    literal(n).zip(m).and_then(|(n, m)| n.checked_add(m)).map(|total| (order.clone(), total))
                }
                _ => None,
            };
            if let Some((order, total)) = top_n {
                group.order_by = Some(group_clause(order));
                group.limit_clause = Some(build::limit(total));
            }
        }
        Mode::Ranged => {
            group.order_by = group_order.map(group_clause);
            upper_order = None;
        }
    }

    let mut upper = if hidden.is_empty() {
        template("SELECT * FROM __quack_partials__")
    } else {
        let mut upper = template("SELECT * EXCLUDE (__quack_x) FROM __quack_partials__");
        if let SetExpr::Select(s) = upper.body.as_mut() {
            if let Some(SelectItem::Wildcard(options)) = s.projection.first_mut() {
                options.opt_exclude = Some(sqlparser::ast::ExcludeSelectItem::Multiple(
                    hidden
                        .iter()
                        .filter_map(|item| match item {
                            SelectItem::ExprWithAlias { alias, .. } => {
                                Some(ObjectName(vec![ObjectNamePart::Identifier(alias.clone())]))
                            }
                            _ => None,
                        })
                        .collect(),
                ));
            }
        }
        upper
    };
    if distinct {
        if let SetExpr::Select(s) = upper.body.as_mut() {
            s.distinct = Some(Distinct::Distinct);
        }
    }
    upper.order_by = upper_order;
    upper.limit_clause = limit;
    Ok(Moved { upper, first_key })
}

/// The position of the select item whose expression is `expr` (structurally, names compared as
/// DuckDB compares them), when no star item comes before it.
fn projection_position(expr: &Expr, projection: &[SelectItem]) -> Option<usize> {
    let wanted = super::normalized(expr);
    for (i, item) in projection.iter().enumerate() {
        if is_star_item(item) {
            return None;
        }
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }
                if super::normalized(e) == wanted =>
            {
                return Some(i)
            }
            _ => {}
        }
    }
    None
}

/// `expr` with each bare name that is a select alias (and not a column of the partials)
/// replaced by the aliased expression; a name that is both is refused as ambiguous.
fn substitute_aliases(
    expr: &Expr,
    aliases: &HashMap<String, Expr>,
    columns: &std::collections::HashSet<String>,
) -> Result<Expr, RewriteError> {
    struct Substitute<'a> {
        aliases: &'a HashMap<String, Expr>,
        columns: &'a std::collections::HashSet<String>,
        ambiguous: Option<String>,
    }
    impl sqlparser::ast::VisitorMut for Substitute<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Identifier(name) = expr {
                let key = name.value.to_ascii_lowercase();
                if let Some(aliased) = self.aliases.get(&key) {
                    if self.columns.contains(&key) {
                        self.ambiguous = Some(name.value.clone());
                        return ControlFlow::Break(());
                    }
                    *expr = Expr::Nested(Box::new(aliased.clone()));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut copy = expr.clone();
    let mut visitor = Substitute { aliases, columns, ambiguous: None };
    let _ = sqlparser::ast::VisitMut::visit(&mut copy, &mut visitor);
    match visitor.ambiguous {
        Some(name) => Err(not(format!("ORDER BY uses {name}, both a select alias and a column"))),
        None => Ok(copy),
    }
}

/// A non-negative integer literal's value.
fn literal(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// True when `expr` has an unqualified name that is one of `aliases`.
fn references_any(expr: &Expr, aliases: &HashMap<String, Expr>) -> bool {
    struct Finder<'a>(&'a HashMap<String, Expr>);
    impl Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(i) if self.0.contains_key(&i.value.to_ascii_lowercase()) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    expr.visit(&mut Finder(aliases)).is_break()
}
