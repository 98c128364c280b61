//! Locating the split block: the query block whose result is computed by map tasks and a reduce.
//!
//! Starting from the fanned-out scan, the split point moves up through *row-local* blocks
//! (projections and filters, joins that keep every row of the scan on the preserved side) as long
//! as the parent reads them in its FROM. The first block that is not row-local (it aggregates,
//! orders with a limit, deduplicates, windows) is the split block; everything above it runs in the
//! reduce over that block's exact result. Single-use CTEs that read the scan are inlined first, so
//! they are just derived tables here.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Cte, Distinct, GroupByExpr, JoinOperator, Query, Select, SetExpr, TableFactor, TableWithJoins, Visit, VisitMut,
    Visitor, VisitorMut,
};

use super::scan::is_placeholder;
use super::{Context, RewriteError};

/// What a visit found below a node.
pub(super) enum Status {
    /// The scan is not below this node.
    NotFound,
    /// The scan is below, reachable through row-local blocks only: the parent may absorb this node.
    Pending,
    /// The split block was chosen below and already replaced by its reduce query.
    Split,
}

/// Called once with the chosen split block; turns it into its reduce query in place and
/// remembers the map side. `scope` holds the CTEs visible to the block.
pub(super) trait Splitter {
    fn split(&mut self, block: &mut Query, scope: &[Cte]) -> Result<(), RewriteError>;
}

/// True when `node` contains the placeholder scan.
pub(super) fn contains_fan<V: Visit>(node: &V) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if is_placeholder(factor) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    node.visit(&mut Finder).is_break()
}

/// Names of tables (relations) referenced anywhere in `node`, lowercased.
pub(super) fn referenced_relations<V: Visit>(node: &V) -> HashSet<String> {
    let mut names = HashSet::new();
    let _ = sqlparser::ast::visit_relations(node, |name| {
        if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
            names.insert(last.value.to_ascii_lowercase());
        }
        ControlFlow::<()>::Continue(())
    });
    names
}

/// Visits a query: inlines the CTEs that read the scan, then the body.
pub(super) fn visit_query(
    query: &mut Query,
    scope: &[Cte],
    ctx: &Context,
    splitter: &mut dyn Splitter,
) -> Result<Status, RewriteError> {
    if !contains_fan(query) {
        return Ok(Status::NotFound);
    }
    inline_fan_ctes(query)?;
    let mut inner_scope = scope.to_vec();
    if let Some(with) = &query.with {
        inner_scope.extend(with.cte_tables.iter().cloned());
    }
    let status = match query.body.as_mut() {
        SetExpr::Select(select) => visit_select(select, &inner_scope, ctx, splitter)?,
        SetExpr::Query(inner) => match visit_query(inner, &inner_scope, ctx, splitter)? {
            Status::Pending => {
                splitter.split(inner, &inner_scope)?;
                Status::Split
            }
            other => other,
        },
        SetExpr::SetOperation { left, right, .. } => {
            for side in [left, right] {
                if contains_fan(side.as_ref()) {
                    return split_set_operand(side, &inner_scope, ctx, splitter);
                }
            }
            Status::NotFound
        }
        _ => return Err(RewriteError::unsplittable("the partitioned table is read inside an unsupported construct")),
    };
    match status {
        Status::Pending if !block_is_row_local(query, ctx) => {
            splitter.split(query, scope)?;
            Ok(Status::Split)
        }
        other => Ok(other),
    }
}

/// An operand of UNION/EXCEPT/INTERSECT that reads the scan becomes the split block itself.
fn split_set_operand(
    side: &mut Box<SetExpr>,
    scope: &[Cte],
    ctx: &Context,
    splitter: &mut dyn Splitter,
) -> Result<Status, RewriteError> {
    let mut wrapped = super::query_of_body(std::mem::replace(side.as_mut(), *super::template("SELECT 1").body));
    let status = visit_query(&mut wrapped, scope, ctx, splitter)?;
    if let Status::Pending = status {
        splitter.split(&mut wrapped, scope)?;
    }
    **side = SetExpr::Query(Box::new(wrapped));
    Ok(Status::Split)
}

fn visit_select(
    select: &mut Select,
    scope: &[Cte],
    ctx: &Context,
    splitter: &mut dyn Splitter,
) -> Result<Status, RewriteError> {
    for twj in select.from.iter_mut() {
        if contains_fan(twj) {
            return visit_from_item(twj, scope, ctx, splitter);
        }
    }
    // The scan is inside an expression of this block (a subquery): that subquery is the split block.
    let mut found = None;
    let _ = select.visit(&mut SubqueryFinder { scope, ctx, splitter, found: &mut found });
    match found {
        Some(result) => result.map(|_| Status::Split),
        None => Ok(Status::NotFound),
    }
}

struct SubqueryFinder<'a> {
    scope: &'a [Cte],
    ctx: &'a Context<'a>,
    splitter: &'a mut dyn Splitter,
    found: &'a mut Option<Result<(), RewriteError>>,
}

impl VisitorMut for SubqueryFinder<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if !contains_fan(query) {
            return ControlFlow::Continue(());
        }
        let result = visit_query(query, self.scope, self.ctx, self.splitter).and_then(|status| match status {
            Status::Pending => self.splitter.split(query, self.scope),
            _ => Ok(()),
        });
        *self.found = Some(result);
        ControlFlow::Break(())
    }
}

/// A FROM item (a table with its joins) that contains the scan.
fn visit_from_item(
    twj: &mut TableWithJoins,
    scope: &[Cte],
    ctx: &Context,
    splitter: &mut dyn Splitter,
) -> Result<Status, RewriteError> {
    let position = (0..=twj.joins.len())
        .find(|&i| {
            let factor = if i == 0 { &twj.relation } else { &twj.joins[i - 1].relation };
            contains_fan(factor)
        })
        .expect("contains_fan(twj) was checked");
    let co_partitioned = ctx.companion.is_some_and(|c| c.co_partitioned);
    let safe = scan_side_is_preserved(twj, position, co_partitioned);
    let factor = if position == 0 { &mut twj.relation } else { &mut twj.joins[position - 1].relation };
    match factor {
        f if is_placeholder(f) => {
            if safe {
                Ok(Status::Pending)
            } else {
                Err(RewriteError::unsplittable(
                    "the partitioned table is on the null-supplying side of an outer, semi or anti join",
                ))
            }
        }
        TableFactor::Derived { lateral, subquery, .. } => match visit_query(subquery, scope, ctx, splitter)? {
            Status::Pending if safe && !*lateral => Ok(Status::Pending),
            Status::Pending => {
                splitter.split(subquery, scope)?;
                Ok(Status::Split)
            }
            other => Ok(other),
        },
        TableFactor::NestedJoin { table_with_joins, .. } => {
            match visit_from_item(table_with_joins, scope, ctx, splitter)? {
                Status::Pending if safe => Ok(Status::Pending),
                Status::Pending => Err(RewriteError::unsplittable(
                    "the partitioned table is on the null-supplying side of an outer join",
                )),
                other => Ok(other),
            }
        }
        _ => Err(RewriteError::unsplittable("the partitioned table is read inside an unsupported table expression")),
    }
}

/// Whether every row of the factor at `position` (0 = the first relation, i = the i-th join)
/// survives the joins, so that joining each partition separately and concatenating gives the
/// join over all partitions. With `co_partitioned`, a join of the scan with the co-partitioned
/// companion (the two first relations of the FROM item, hash-partitioned alike on the join's
/// keys: [`super::join`]) gives that too, whatever its type.
fn scan_side_is_preserved(twj: &TableWithJoins, position: usize, co_partitioned: bool) -> bool {
    let keeps_left = |op: &JoinOperator| {
        matches!(
            op,
            JoinOperator::Join(_)
                | JoinOperator::Inner(_)
                | JoinOperator::Left(_)
                | JoinOperator::LeftOuter(_)
                | JoinOperator::CrossJoin(_)
                | JoinOperator::Semi(_)
                | JoinOperator::LeftSemi(_)
                | JoinOperator::Anti(_)
                | JoinOperator::LeftAnti(_)
                | JoinOperator::AsOf { .. }
        )
    };
    let keeps_right = |op: &JoinOperator| {
        matches!(
            op,
            JoinOperator::Join(_)
                | JoinOperator::Inner(_)
                | JoinOperator::Right(_)
                | JoinOperator::RightOuter(_)
                | JoinOperator::CrossJoin(_)
                | JoinOperator::RightSemi(_)
                | JoinOperator::RightAnti(_)
        )
    };
    let with_companion = |i: usize| {
        let factor = if i == 0 { &twj.relation } else { &twj.joins[i - 1].relation };
        super::scan::fan_scan_of(factor).is_some()
    };
    if co_partitioned && position <= 1 && !twj.joins.is_empty() && with_companion(1 - position) {
        return super::join::co_partitionable(&twj.joins[0].join_operator)
            && twj.joins[1..].iter().all(|j| keeps_left(&j.join_operator));
    }
    if position > 0 && !keeps_right(&twj.joins[position - 1].join_operator) {
        return false;
    }
    twj.joins[position..].iter().all(|j| keeps_left(&j.join_operator))
}

/// A block is row-local when each output row depends on one input row only: no aggregation,
/// grouping, DISTINCT, window, ORDER BY, LIMIT or set operation.
fn block_is_row_local(query: &Query, ctx: &Context) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let grouped = match &select.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(exprs, modifiers) => !exprs.is_empty() || !modifiers.is_empty(),
    };
    query.order_by.is_none()
        && query.limit_clause.is_none()
        && query.fetch.is_none()
        && !grouped
        && select.having.is_none()
        && select.qualify.is_none()
        && select.top.is_none()
        && select.named_window.is_empty()
        && matches!(select.distinct, None | Some(Distinct::All))
        && !super::has_aggregate_or_window(&select.projection, ctx)
}

/// Inlines each CTE of `query` that reads the scan as a derived table at its single reference.
/// A CTE that reads the scan and is referenced more than once cannot be split exactly per
/// partition by this planner.
fn inline_fan_ctes(query: &mut Query) -> Result<(), RewriteError> {
    loop {
        let Some(with) = &query.with else {
            return Ok(());
        };
        let Some(index) = with.cte_tables.iter().position(|cte| contains_fan(cte.query.as_ref())) else {
            return Ok(());
        };
        if with.recursive {
            return Err(RewriteError::unsplittable("a recursive CTE reads the partitioned table"));
        }
        let with = query.with.as_mut().expect("checked above");
        let cte = with.cte_tables.remove(index);
        if with.cte_tables.is_empty() {
            query.with = None;
        }
        let name = cte.alias.name.value.to_ascii_lowercase();
        let mut inliner = Inliner { name: &name, cte: &cte, count: 0 };
        let _ = query.visit(&mut inliner);
        if inliner.count > 1 {
            return Err(RewriteError::unsplittable(format!(
                "the CTE `{}` reads the partitioned table and is used {} times",
                cte.alias.name.value, inliner.count
            )));
        }
    }
}

struct Inliner<'a> {
    name: &'a str,
    cte: &'a Cte,
    count: usize,
}

impl VisitorMut for Inliner<'_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: None, alias, .. } = factor {
            let matches =
                name.0.len() == 1 && name.0[0].as_ident().is_some_and(|i| i.value.to_ascii_lowercase() == self.name);
            if matches {
                self.count += 1;
                let mut new_alias = self.cte.alias.clone();
                if let Some(alias) = alias {
                    new_alias.name = alias.name.clone();
                    if !alias.columns.is_empty() {
                        new_alias.columns = alias.columns.clone();
                    }
                }
                *factor = TableFactor::Derived {
                    lateral: false,
                    subquery: self.cte.query.clone(),
                    alias: Some(new_alias),
                    sample: None,
                };
            }
        }
        ControlFlow::Continue(())
    }
}
