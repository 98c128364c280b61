//! The partial-aggregate strategy: the map groups by the block's keys and computes mergeable
//! partial states; the reduce groups the partials by the same keys and merges them.
//!
//! Exact merges: count → sum of counts; sum/min/max/bool_and/bool_or/bit_* → the same function
//! over the partials; avg → sum of sums / sum of counts; the variance family → Chan et al.'s
//! parallel merge of (count, mean, M2) with the group mean computed by a window over the partials;
//! DISTINCT aggregates → the argument becomes an extra map group key and the reduce aggregates
//! DISTINCT over it. Anything else is [`RewriteError::Unsupported`] here, and the block ships rows.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Distinct, DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    OrderByKind, Query, SelectItem, SetExpr, Value, VisitMut, VisitorMut,
};

use super::build::{self, column as col, expr_template, fill};
use super::{
    contains_aggregate, is_aggregate_call, names_only, normalized, select_aliases, BlockSplit, Context, LambdaScope,
    RewriteError, Strategy,
};

/// Whether an aggregate call in `query` has a FILTER and arguments constant within a hive
/// partition: no column but the `partition_columns` (names as DuckDB resolves them, without
/// regard to case), e.g. `sum(p)`, `max(7)`, `count(*)`. DuckDB hands such an aggregate a
/// constant vector, which its partition-aware aggregate mishandles under a FILTER
/// (`Planner::filters_leak`).
pub fn constant_filtered_aggregate(query: &Query, partition_columns: &[String]) -> bool {
    struct Find<'a> {
        partition_columns: &'a [String],
    }
    impl sqlparser::ast::Visitor for Find<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Function(f) if f.filter.is_some() && self.constant_arguments(&f.args) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    impl Find<'_> {
        fn constant_arguments(&self, args: &FunctionArguments) -> bool {
            names_only(args, self.partition_columns, |_| false)
        }
    }
    sqlparser::ast::Visit::visit(query, &mut Find { partition_columns }).is_break()
}

/// How one aggregate call is split.
#[derive(Debug, Clone)]
enum Merge {
    /// count(...) / count(*): sum the counts.
    Count,
    /// A function that merges by applying itself to its partials (sum, min, max, bool_and, ...).
    SameFunction(String),
    /// sum and count partials, divided.
    Avg,
    /// Variance family over (count, mean, var_pop) partials.
    Variance { sample: bool, sqrt: bool },
    /// `f(DISTINCT x)`: x is map group key `__quack_d{index}`; `filtered` adds a bool_or partial.
    Distinct { function: String, key: usize, filtered: bool },
    /// The call computed whole by the map, where each group has one partial row.
    Whole,
}

struct Aggregate {
    merge: Merge,
    /// (map expression, partial column name)
    partials: Vec<(Expr, String)>,
}

/// Why a block that does not aggregate is not split by this strategy (not worth reporting).
pub(crate) const NOT_AGGREGATING: &str = "the block does not aggregate";

/// Splits an aggregating block, or says why this strategy does not apply.
pub(crate) fn split(block: &Query, ctx: &Context) -> Result<BlockSplit, RewriteError> {
    split_with(block, ctx, Mode::Partial)
}

/// Splits an aggregating block into a map that computes every aggregate call whole per group
/// (any aggregate, holistic ones too) and a reduce that takes each group's one value: exact
/// when every group's rows reach one map, as a shuffle on the group keys makes them
/// ([`super::stage`]).
pub(crate) fn split_whole(block: &Query, ctx: &Context) -> Result<BlockSplit, RewriteError> {
    split_with(block, ctx, Mode::Whole)
}

/// Splits an aggregating block into a map of mergeable partial states and a reduce that merges
/// them, where the map's rows are partitioned on `key`: every row with a given value of `key`
/// reaches the same map, as a shuffle on `key` makes them ([`super::stage`]). A DISTINCT
/// aggregate over `key` is then computed in the map (`count(DISTINCT key)` per map, summed),
/// instead of shipping a row per distinct value. A DISTINCT aggregate over anything else has no
/// such split.
pub(crate) fn split_partitioned_on(block: &Query, ctx: &Context, key: &Expr) -> Result<BlockSplit, RewriteError> {
    split_with(block, ctx, Mode::PartitionedOn(key))
}

/// How the map of [`split_with`] sees the rows.
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// Any rows: DISTINCT arguments become extra map keys.
    Partial,
    /// Every group's rows: each aggregate is computed whole.
    Whole,
    /// Every row of each value of this expression: DISTINCT over it is computed in the map.
    PartitionedOn(&'a Expr),
}

fn split_with(block: &Query, ctx: &Context, mode: Mode<'_>) -> Result<BlockSplit, RewriteError> {
    let SetExpr::Select(select) = block.body.as_ref() else {
        return Err(RewriteError::unsupported("the block is not a plain SELECT"));
    };
    if matches!(select.distinct, Some(Distinct::On(_))) {
        return Err(RewriteError::unsupported("DISTINCT ON"));
    }
    if select.top.is_some() || !select.named_window.is_empty() || !select.sort_by.is_empty() {
        return Err(RewriteError::unsupported("TOP, WINDOW or SORT BY clause"));
    }
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    let aggregating = grouped
        || contains_aggregate(&select.projection, ctx)
        || select.having.is_some()
        || block.order_by.as_ref().is_some_and(|o| contains_aggregate(o, ctx));
    if !aggregating {
        return Err(RewriteError::unsupported(NOT_AGGREGATING));
    }
    if select.projection.iter().any(super::is_star_item) {
        return Err(RewriteError::unsupported("a star expression (*, COLUMNS) in an aggregating block"));
    }

    let aliases = select_aliases(&select.projection);
    let keys = group_keys(select, &aliases, ctx)?;

    // Collect every aggregate call of the upper clauses, deduplicated by its SQL text.
    let mut collector = Collector { ctx, calls: Vec::new() };
    let mut upper = select.projection.clone();
    let _ = upper.visit(&mut collector);
    let mut having = select.having.clone();
    let _ = having.visit(&mut collector);
    let mut qualify = select.qualify.clone();
    let _ = qualify.visit(&mut collector);
    let mut order_by = block.order_by.clone();
    let _ = order_by.visit(&mut collector);

    let mut distinct_keys: Vec<Expr> = Vec::new();
    let mut aggregates: Vec<Aggregate> = Vec::new();
    for (index, call) in collector.calls.iter().enumerate() {
        aggregates.push(match mode {
            Mode::Whole => Aggregate {
                merge: Merge::Whole,
                partials: vec![(Expr::Function(call.clone()), format!("__quack_a{index}"))],
            },
            Mode::Partial => plan_aggregate(index, call, &mut distinct_keys, None)?,
            Mode::PartitionedOn(key) => plan_aggregate(index, call, &mut distinct_keys, Some(key))?,
        });
    }

    // Map: keys, distinct keys, partial states, grouped by the keys' ordinals.
    let mut map_items: Vec<SelectItem> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        map_items.push(build::aliased(key.clone(), format!("__quack_k{i}")));
    }
    for (j, key) in distinct_keys.iter().enumerate() {
        map_items.push(build::aliased(key.clone(), format!("__quack_d{j}")));
    }
    for aggregate in &aggregates {
        for (expr, name) in &aggregate.partials {
            map_items.push(build::aliased(expr.clone(), name.clone()));
        }
    }
    if map_items.is_empty() {
        map_items.push(build::aliased(expr_template("count(*)"), "__quack_rows"));
    }
    let group_count = (keys.len() + distinct_keys.len()) as u64;
    let mut map = block.clone();
    {
        let SetExpr::Select(map_select) = map.body.as_mut() else { unreachable!() };
        map_select.projection = map_items;
        map_select.distinct = None;
        map_select.having = None;
        map_select.qualify = None;
        map_select.group_by = build::group_by((1..=group_count).map(build::number).collect());
    }
    map.order_by = None;
    map.limit_clause = None;
    map.fetch = None;

    // Reduce: the block's upper clauses with aggregates merged and keys replaced by __quack_k{i}.
    let mut rewriter = Rewriter {
        ctx,
        keys: &keys,
        aliases: &aliases,
        calls: &collector.calls,
        lambdas: LambdaScope::default(),
        leftover: None,
    };
    let mut reduce = block.clone();
    let has_variance = aggregates.iter().any(|a| matches!(a.merge, Merge::Variance { .. }));
    {
        let SetExpr::Select(reduce_select) = reduce.body.as_mut() else { unreachable!() };
        let mut projection = Vec::with_capacity(reduce_select.projection.len());
        for item in reduce_select.projection.drain(..) {
            projection.push(match item {
                SelectItem::UnnamedExpr(expr) => {
                    let name = column_name(&expr);
                    let mut new = expr.clone();
                    let _ = new.visit(&mut rewriter);
                    match name {
                        Some(name) if new != expr => SelectItem::ExprWithAlias { expr: new, alias: name },
                        _ => SelectItem::UnnamedExpr(new),
                    }
                }
                SelectItem::ExprWithAlias { mut expr, alias } => {
                    let _ = expr.visit(&mut rewriter);
                    SelectItem::ExprWithAlias { expr, alias }
                }
                other => other,
            });
        }
        reduce_select.projection = projection;
        let _ = reduce_select.having.visit(&mut rewriter);
        let _ = reduce_select.qualify.visit(&mut rewriter);
        let key_columns: Vec<Expr> = (0..keys.len()).map(|i| col(format!("__quack_k{i}"))).collect();
        reduce_select.from = if has_variance {
            build::from_partials_with(group_means(&aggregates, &key_columns))
        } else {
            build::from_partials(None)
        };
        reduce_select.selection = None;
        reduce_select.group_by = build::group_by(key_columns);
        reduce_select.prewhere = None;
    }
    if let Some(order_by) = &mut reduce.order_by {
        if let OrderByKind::Expressions(exprs) = &mut order_by.kind {
            for e in exprs.iter_mut() {
                // At the top level of ORDER BY, DuckDB binds a bare name to a select alias
                // before a column (inside an expression, and in HAVING and QUALIFY, the column
                // wins). The reduce keeps every alias, so the name is left for DuckDB to bind
                // the same way, even when it also names a group key's column.
                if let Expr::Identifier(ident) = &e.expr {
                    if aliases.contains_key(&ident.value.to_ascii_lowercase()) {
                        continue;
                    }
                }
                let _ = e.expr.visit(&mut rewriter);
            }
        }
    }
    if let Some(column) = rewriter.leftover.take() {
        return Err(RewriteError::unsupported(format!("`{column}` is neither grouped nor aggregated")));
    }
    // Substitute each aggregate placeholder by its merge expression.
    let merges: Vec<Expr> = aggregates.iter().enumerate().map(|(i, a)| merge_expr(i, a)).collect();
    let _ = reduce.visit(&mut Substitute { merges: &merges });
    Ok(BlockSplit {
        strategy: Strategy::PartialAggregate,
        map,
        reduce,
        top_n_pushdown: false,
        distinct_keys: !distinct_keys.is_empty(),
    })
}

/// The block's grouping keys with GROUP BY ALL, ordinals and select aliases resolved.
fn group_keys(
    select: &sqlparser::ast::Select,
    aliases: &HashMap<String, Expr>,
    ctx: &Context,
) -> Result<Vec<Expr>, RewriteError> {
    let item_expr = |item: &SelectItem| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e.clone()),
        _ => None,
    };
    let mut keys: Vec<Expr> = Vec::new();
    match &select.group_by {
        GroupByExpr::All(modifiers) => {
            if !modifiers.is_empty() {
                return Err(RewriteError::unsupported("GROUP BY modifiers"));
            }
            for item in &select.projection {
                let expr = item_expr(item).ok_or_else(|| RewriteError::unsupported("wildcard with GROUP BY ALL"))?;
                // DuckDB groups by the items that neither aggregate nor lack a column
                // reference: `SELECT 'a', count(*) ... GROUP BY ALL` is one global group, one
                // row even over no rows.
                if !contains_aggregate(&expr, ctx) && references_a_column(&expr) {
                    keys.push(expr);
                }
            }
        }
        GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return Err(RewriteError::unsupported("GROUP BY modifiers (ROLLUP, CUBE, GROUPING SETS)"));
            }
            for expr in exprs {
                let resolved = match expr {
                    Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_) => {
                        return Err(RewriteError::unsupported("ROLLUP, CUBE or GROUPING SETS"))
                    }
                    Expr::Value(v) => match &v.value {
                        Value::Number(n, _) => {
                            let position: usize =
                                n.parse().map_err(|_| RewriteError::unsupported("GROUP BY a non-integer constant"))?;
                            select.projection.get(position.wrapping_sub(1)).and_then(item_expr).ok_or_else(|| {
                                RewriteError::unsupported(format!("GROUP BY {position} is out of range"))
                            })?
                        }
                        _ => expr.clone(),
                    },
                    Expr::Identifier(ident) => {
                        let name = ident.value.to_ascii_lowercase();
                        match aliases.get(&name) {
                            Some(aliased) if !ctx.scan_columns.contains(&name) => aliased.clone(),
                            _ => expr.clone(),
                        }
                    }
                    other => other.clone(),
                };
                if contains_aggregate(&resolved, ctx) {
                    return Err(RewriteError::unsupported("GROUP BY an aggregate"));
                }
                keys.push(resolved);
            }
        }
    }
    let mut unique: Vec<Expr> = Vec::new();
    for key in keys {
        if !unique.iter().any(|k| normalized(k) == normalized(&key)) {
            unique.push(key);
        }
    }
    Ok(unique)
}

/// True when `expr` names a column (a lambda's parameters do not count).
fn references_a_column(expr: &Expr) -> bool {
    struct Finder(LambdaScope);
    impl sqlparser::ast::Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            self.0.enter(expr);
            match expr {
                Expr::Identifier(_) if self.0.binds(expr) => ControlFlow::Continue(()),
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
        fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            self.0.leave(expr);
            ControlFlow::Continue(())
        }
    }
    sqlparser::ast::Visit::visit(expr, &mut Finder(LambdaScope::default())).is_break()
}

/// The output name DuckDB gives an unaliased bare column reference.
fn column_name(expr: &Expr) -> Option<Ident> {
    match expr {
        Expr::Identifier(ident) => Some(ident.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().cloned(),
        _ => None,
    }
}

/// `expr` without a table qualifier on a column reference (`t.x` → `x`), normalized.
fn unqualified(expr: &Expr) -> Expr {
    match expr {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => normalized(&Expr::Identifier(parts[1].clone())),
        other => normalized(other),
    }
}

struct Collector<'a> {
    ctx: &'a Context<'a>,
    calls: Vec<Function>,
}

impl VisitorMut for Collector<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            if is_aggregate_call(f, self.ctx) && !self.calls.iter().any(|c| c == f) {
                self.calls.push(f.clone());
            }
        }
        ControlFlow::Continue(())
    }
}

fn function_name(call: &Function) -> String {
    call.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()).unwrap_or_default()
}

/// Decides how one aggregate call merges and which partial columns it needs. `partitioned_on`:
/// each map gets every row of each value of this expression (see [`split_partitioned_on`]).
fn plan_aggregate(
    index: usize,
    call: &Function,
    distinct_keys: &mut Vec<Expr>,
    partitioned_on: Option<&Expr>,
) -> Result<Aggregate, RewriteError> {
    let name = function_name(call);
    let unsupported = || RewriteError::unsupported(format!("aggregate `{call}` has no exact split"));
    let FunctionArguments::List(list) = &call.args else {
        return Err(unsupported());
    };
    if !list.clauses.is_empty()
        || !call.within_group.is_empty()
        || call.null_treatment.is_some()
        || !matches!(call.parameters, FunctionArguments::None)
    {
        return Err(unsupported());
    }
    let args: Vec<&FunctionArgExpr> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(e) => Ok(e),
            _ => Err(unsupported()),
        })
        .collect::<Result<_, _>>()?;
    let star = matches!(args.as_slice(), [FunctionArgExpr::Wildcard]);
    let single = match args.as_slice() {
        [FunctionArgExpr::Expr(e)] => Some(e.clone()),
        _ => None,
    };
    let partial = |suffix: &str| format!("__quack_a{index}{suffix}");
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));

    if let (true, Some(key)) = (distinct, partitioned_on) {
        // The maps see disjoint sets of the argument's values, so per-map DISTINCT results
        // add up (count, sum), extend (min, max) or divide (avg as sum and count).
        let arg = single.ok_or_else(unsupported)?;
        if normalized(&arg) != normalized(key) {
            return Err(RewriteError::unsupported(format!(
                "aggregate `{call}` is DISTINCT over another expression than the one the rows are partitioned on"
            )));
        }
        let verbatim = vec![(Expr::Function(call.clone()), partial(""))];
        let (merge, partials) = match name.as_str() {
            "count" => (Merge::Count, verbatim),
            "sum" | "min" | "max" => (Merge::SameFunction(name.clone()), verbatim),
            "avg" | "mean" => (
                Merge::Avg,
                vec![(build::renamed(call, "sum"), partial("_s")), (build::renamed(call, "count"), partial("_c"))],
            ),
            _ => return Err(unsupported()),
        };
        return Ok(Aggregate { merge, partials });
    }
    if distinct {
        let arg = single.ok_or_else(unsupported)?;
        let function = match name.as_str() {
            "count" | "sum" | "avg" | "mean" => name.clone(),
            "min" | "max" => name.clone(),
            _ => return Err(unsupported()),
        };
        let key = match distinct_keys.iter().position(|k| normalized(k) == normalized(&arg)) {
            Some(k) => k,
            None => {
                distinct_keys.push(arg.clone());
                distinct_keys.len() - 1
            }
        };
        let mut partials = Vec::new();
        let filtered = call.filter.is_some();
        if let Some(f) = &call.filter {
            partials.push((fill(expr_template("bool_or(__quack_hole_f)"), &[("f", (**f).clone())]), partial("_f")));
        }
        return Ok(Aggregate { merge: Merge::Distinct { function, key, filtered }, partials });
    }
    let verbatim = || vec![(Expr::Function(call.clone()), partial(""))];
    let (merge, partials) = match name.as_str() {
        "count" | "count_star" if star || single.is_some() || args.is_empty() => (Merge::Count, verbatim()),
        "sum" | "min" | "max" | "bool_and" | "bool_or" | "bit_and" | "bit_or" | "bit_xor" if single.is_some() => {
            (Merge::SameFunction(name.clone()), verbatim())
        }
        "avg" | "mean" if single.is_some() => (
            Merge::Avg,
            vec![(build::renamed(call, "sum"), partial("_s")), (build::renamed(call, "count"), partial("_c"))],
        ),
        "stddev" | "stddev_samp" | "stddev_pop" | "variance" | "var_samp" | "var_pop" if single.is_some() => {
            let sample = !name.ends_with("_pop");
            let sqrt = name.starts_with("stddev");
            (
                Merge::Variance { sample, sqrt },
                vec![
                    (build::renamed(call, "count"), partial("_n")),
                    (build::renamed(call, "avg"), partial("_m")),
                    (build::renamed(call, "var_pop"), partial("_v")),
                ],
            )
        }
        _ => return Err(unsupported()),
    };
    Ok(Aggregate { merge, partials })
}

/// The reduce expression that merges aggregate `index`'s partials.
fn merge_expr(index: usize, aggregate: &Aggregate) -> Expr {
    let a = |suffix: &str| col(format!("__quack_a{index}{suffix}"));
    match &aggregate.merge {
        Merge::Count => fill(expr_template("CAST(coalesce(sum(__quack_hole_a), 0) AS BIGINT)"), &[("a", a(""))]),
        Merge::Whole => fill(expr_template("any_value(__quack_hole_a)"), &[("a", a(""))]),
        Merge::SameFunction(function) => {
            let Expr::Function(call) = expr_template("f(__quack_hole_a)") else { unreachable!() };
            fill(build::renamed(&call, function), &[("a", a(""))])
        }
        Merge::Avg => fill(
            expr_template("(sum(__quack_hole_s) / nullif(sum(__quack_hole_c), 0))"),
            &[("s", a("_s")), ("c", a("_c"))],
        ),
        Merge::Variance { sample, sqrt } => {
            // Chan et al.: M2 = sum(n * var_pop + n * (mean - group mean)^2), over the count
            // less one (sample) or the count (population).
            let m2 = fill(
                expr_template(
                    "sum(__quack_hole_n * __quack_hole_v + __quack_hole_n * (__quack_hole_m - __quack_hole_g) * \
                     (__quack_hole_m - __quack_hole_g))",
                ),
                &[("n", a("_n")), ("m", a("_m")), ("v", a("_v")), ("g", a("_g"))],
            );
            let template = if *sample {
                "CASE WHEN sum(__quack_hole_n) > 1 THEN __quack_hole_m2 / (sum(__quack_hole_n) - 1) END"
            } else {
                "CASE WHEN sum(__quack_hole_n) > 0 THEN __quack_hole_m2 / sum(__quack_hole_n) END"
            };
            let value = fill(expr_template(template), &[("n", a("_n")), ("m2", m2)]);
            if *sqrt {
                fill(expr_template("sqrt(__quack_hole_x)"), &[("x", value)])
            } else {
                Expr::Nested(Box::new(value))
            }
        }
        Merge::Distinct { function, key, filtered } => {
            let Expr::Function(mut call) = expr_template("f(DISTINCT __quack_hole_d)") else { unreachable!() };
            call.filter = filtered.then(|| Box::new(a("_f")));
            let call = fill(build::renamed(&call, function), &[("d", col(format!("__quack_d{key}")))]);
            if function == "count" {
                fill(expr_template("CAST(__quack_hole_x AS BIGINT)"), &[("x", call)])
            } else {
                call
            }
        }
    }
}

/// Each variance aggregate's group mean over the partials (`__quack_a{i}_g`), a window over
/// the group's partials, for the reduce's source.
fn group_means(aggregates: &[Aggregate], key_columns: &[Expr]) -> Vec<SelectItem> {
    aggregates
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a.merge, Merge::Variance { .. }))
        .map(|(i, _)| {
            let mean =
                expr_template("sum(__quack_hole_n * __quack_hole_m) OVER () / nullif(sum(__quack_hole_n) OVER (), 0)");
            let mean = fill(mean, &[("n", col(format!("__quack_a{i}_n"))), ("m", col(format!("__quack_a{i}_m")))]);
            build::aliased(build::partition_windows(mean, key_columns), format!("__quack_a{i}_g"))
        })
        .collect()
}

/// Rewrites the block's upper expressions: aggregate calls become placeholders, key expressions
/// become `__quack_k{i}`; remembers a column reference that is neither.
struct Rewriter<'a> {
    ctx: &'a Context<'a>,
    keys: &'a [Expr],
    aliases: &'a HashMap<String, Expr>,
    calls: &'a [Function],
    lambdas: LambdaScope,
    leftover: Option<String>,
}

const PLACEHOLDER_PREFIX: &str = "__quack_agg_";

impl Rewriter<'_> {
    fn key_index(&self, expr: &Expr) -> Option<usize> {
        let text = normalized(expr);
        if let Some(i) = self.keys.iter().position(|k| normalized(k) == text) {
            return Some(i);
        }
        // `t.x` and `x` name the same column when only one key matches that way.
        if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            let bare = unqualified(expr);
            let matches: Vec<usize> = self
                .keys
                .iter()
                .enumerate()
                .filter(|(_, k)| {
                    matches!(k, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) && unqualified(k) == bare
                })
                .map(|(i, _)| i)
                .collect();
            if matches.len() == 1 {
                return Some(matches[0]);
            }
        }
        None
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            if is_aggregate_call(f, self.ctx) {
                let index = self.calls.iter().position(|c| c == f).expect("collected");
                *expr = Expr::Identifier(Ident::new(format!("{PLACEHOLDER_PREFIX}{index}")));
                return ControlFlow::Continue(());
            }
        }
        self.lambdas.enter(expr);
        if matches!(expr, Expr::Lambda(_)) || self.lambdas.binds(expr) {
            return ControlFlow::Continue(());
        }
        if let Some(i) = self.key_index(expr) {
            *expr = Expr::Identifier(Ident::new(format!("__quack_k{i}")));
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Identifier(ident) => {
                let name = ident.value.to_ascii_lowercase();
                if !self.aliases.contains_key(&name) && !name.starts_with(PLACEHOLDER_PREFIX) && self.leftover.is_none()
                {
                    self.leftover = Some(ident.value.clone());
                }
            }
            Expr::CompoundIdentifier(parts) if self.leftover.is_none() => {
                self.leftover = Some(parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join("."));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.lambdas.leave(expr);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        if self.leftover.is_none() {
            self.leftover = Some("a subquery in an aggregating block".into());
        }
        ControlFlow::Continue(())
    }
}

struct Substitute<'a> {
    merges: &'a [Expr],
}

impl VisitorMut for Substitute<'_> {
    type Break = ();
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(ident) = expr {
            if let Some(index) = ident.value.strip_prefix(PLACEHOLDER_PREFIX).and_then(|i| i.parse::<usize>().ok()) {
                *expr = self.merges[index].clone();
            }
        }
        ControlFlow::Continue(())
    }
}
