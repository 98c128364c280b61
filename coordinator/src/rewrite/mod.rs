//! Rewriting one SQL query into a map query (run per task over that task's files) and a reduce
//! query (run once over the concatenated partial results, in table [`PARTIALS_TABLE`]).
//!
//! Works on the `sqlparser` AST (DuckDB dialect). The fanned-out scan is replaced by a placeholder
//! ([`scan::FAN_PLACEHOLDER`]) that the planner fills with each task's files. The split block is
//! found by [`split`]; its map/reduce pair comes from the first strategy that applies:
//! [`aggregate`] (partial aggregates merged exactly), then [`rows`] (ship the filtered, projected
//! rows and run the block in the reduce). What neither can split is reported as
//! [`RewriteError::Unsplittable`], and the planner runs the whole query as a single task.

pub mod aggregate;
pub(crate) mod build;
pub mod filter;
pub mod gate;
pub mod join;
pub mod order;
pub mod rows;
pub mod scan;
pub mod split;
pub mod stage;
pub(crate) mod upper;
pub mod window;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Cte, Expr, Function, FunctionArguments, Query, SelectItem, SetExpr, Statement, Visit, VisitMut, Visitor,
    VisitorMut, With,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::{Parser, ParserError};

pub use aggregate::constant_filtered_aggregate;
pub use scan::{FanScan, FAN_PLACEHOLDER};

/// Name of the table that holds the concatenated partial results in the reduce.
pub const PARTIALS_TABLE: &str = "__quack_partials__";

/// Binds a query in DuckDB and answers its output column names. The query may read the
/// partitioned table as [`FAN_PLACEHOLDER`]; the binder stands a real scan in for it.
pub type ColumnBinder<'a> = dyn Fn(&Query) -> Result<Vec<String>, String> + Sync + 'a;

/// What the rewriter needs to know beyond the SQL text.
#[derive(Clone, Default)]
pub struct Context<'a> {
    /// Lowercase names that aggregate (from DuckDB's catalog, [`crate::catalog::FunctionCatalog`]).
    pub aggregates: HashSet<String>,
    /// Lowercase column names of the fanned-out table (for GROUP BY alias resolution).
    pub scan_columns: HashSet<String>,
    /// Binds the split block's FROM clause to learn every name it defines ([`gate::check_block`]).
    /// Without one, the FROM clause is taken to define the scan's columns only (unit tests).
    pub binder: Option<&'a ColumnBinder<'a>>,
    /// A second hive-partitioned table that is not fanned out with the first.
    pub companion: Option<Companion>,
}

/// The second hive-partitioned table of a query that reads two: it stays in the SQL as written
/// (the `occurrence`-th fan-out scan in the text, from 0) instead of becoming the placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Companion {
    pub occurrence: usize,
    /// `false`: broadcast, every task reads the whole table (it joins like a dimension table).
    /// `true`: co-partitioned with the fanned-out table, both hash-partitioned on the keys of
    /// the equi-join that joins them directly ([`join`]): a task gets one bucket of each, so the
    /// join of the two is row-local whatever its type (inner, left, right, full).
    pub co_partitioned: bool,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("aggregates", &self.aggregates.len())
            .field("scan_columns", &self.scan_columns)
            .field("binder", &self.binder.is_some())
            .field("companion", &self.companion)
            .finish()
    }
}

impl Context<'_> {
    /// A context knowing the aggregates of the bundled DuckDB's catalog (for tests and tools).
    pub fn with_bundled_aggregates() -> Self {
        Context { aggregates: crate::catalog::FunctionCatalog::bundled().aggregates().clone(), ..Context::default() }
    }
}

/// Why a query could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("SQL parse error: {message}")]
    Parse { message: String },
    #[error("only a single SELECT query is supported, got {what}")]
    NotAQuery { what: String },
    /// The query cannot be split per partition exactly; it can still run as a single task.
    #[error("{reason}")]
    Unsplittable { reason: String },
    /// This strategy does not apply; the next one may.
    #[error("{reason}")]
    Unsupported { reason: String },
}

impl RewriteError {
    pub(crate) fn unsplittable(reason: impl Into<String>) -> Self {
        RewriteError::Unsplittable { reason: reason.into() }
    }
    pub(crate) fn unsupported(reason: impl Into<String>) -> Self {
        RewriteError::Unsupported { reason: reason.into() }
    }
}

/// How the split block is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Map computes partial aggregates per group; reduce merges them.
    PartialAggregate,
    /// Map filters and projects rows (pushing ORDER BY + LIMIT down where exact); reduce runs
    /// the block over them.
    ShipRows,
}

impl Rewritten {
    /// The map query as SQL (placeholder included).
    pub fn map_sql(&self) -> String {
        self.map.to_string()
    }
}

impl Strategy {
    pub fn describe(self) -> &'static str {
        match self {
            Strategy::PartialAggregate => {
                "partial aggregate (map computes mergeable partial states, reduce merges them)"
            }
            Strategy::ShipRows => "ship rows (map filters and projects rows, reduce runs the block over them)",
        }
    }
}

/// The map/reduce pair for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub strategy: Strategy,
    /// Why a simpler strategy was not used, when one was tried.
    pub note: Option<String>,
    /// The map query, with [`FAN_PLACEHOLDER`] where the task's scan goes
    /// ([`scan::substitute_scan`] puts it there).
    pub map: Query,
    /// Reduce SQL over [`PARTIALS_TABLE`]; the whole original query above the split block.
    pub reduce_sql: String,
    /// The reduce as a tree (`reduce_sql` is its text).
    pub reduce: Query,
    /// Whether the map pushes ORDER BY + LIMIT down (top-N).
    pub top_n_pushdown: bool,
    /// Whether the map also groups by the arguments of DISTINCT aggregates, so that its
    /// partials hold a row per distinct value: up to one per input row, shipped as ship rows
    /// ships them.
    pub distinct_keys: bool,
}

/// Parses DuckDB SQL.
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParserError> {
    Parser::parse_sql(&DuckDbDialect {}, sql)
}

/// Parses SQL the rewriter generated. Generated text embeds displayed user expressions, which
/// do not always parse again (an unquoted keyword used as an identifier); that is an error for
/// the strategy at hand, never a panic.
pub(crate) fn parse_expr(sql: &str) -> Result<Expr, RewriteError> {
    Parser::new(&DuckDbDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| RewriteError::unsupported(format!("generated SQL does not parse ({e}): {sql}")))
}

/// Parses a generated query; see [`parse_expr`].
pub(crate) fn parse_query(sql: &str) -> Result<Query, RewriteError> {
    let not_a_query = || RewriteError::unsupported(format!("generated SQL is not one query: {sql}"));
    let mut statements =
        parse(sql).map_err(|e| RewriteError::unsupported(format!("generated SQL does not parse ({e}): {sql}")))?;
    if statements.len() != 1 {
        return Err(not_a_query());
    }
    match statements.remove(0) {
        Statement::Query(q) => Ok(*q),
        _ => Err(not_a_query()),
    }
}

/// An expression in a form to compare structurally: identifiers and function names are
/// case-insensitive in DuckDB, quoted or not, so they are lowercased and unquoted.
pub(crate) fn normalized(expr: &Expr) -> Expr {
    struct Lower;
    fn lower(ident: &mut sqlparser::ast::Ident) {
        ident.value = ident.value.to_ascii_lowercase();
        ident.quote_style = None;
    }
    impl VisitorMut for Lower {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(ident) => lower(ident),
                Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(lower),
                Expr::Function(f) => {
                    for part in f.name.0.iter_mut() {
                        if let sqlparser::ast::ObjectNamePart::Identifier(ident) = part {
                            lower(ident);
                        }
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut copy = expr.clone();
    let _ = VisitMut::visit(&mut copy, &mut Lower);
    copy
}

/// A query parsed from constant SQL of the rewriter's own (always valid). Each constant is
/// parsed once per process and cloned after that: task SQL is built from templates once per
/// task, and a fan-out has thousands of tasks.
pub(crate) fn template(sql: &'static str) -> Query {
    static PARSED: std::sync::Mutex<Option<HashMap<&'static str, Query>>> = std::sync::Mutex::new(None);
    let mut parsed = PARSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    parsed
        .get_or_insert_with(HashMap::new)
        .entry(sql)
        .or_insert_with(|| parse_query(sql).expect("constant template SQL parses"))
        .clone()
}

pub(crate) fn query_of_body(body: SetExpr) -> Query {
    let mut query = template("SELECT 1");
    *query.body = body;
    query
}

/// Select-list aliases of a block (lowercased) with the expressions they name.
pub(crate) fn select_aliases(projection: &[SelectItem]) -> HashMap<String, Expr> {
    projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } => Some((alias.value.to_ascii_lowercase(), expr.clone())),
            _ => None,
        })
        .collect()
}

/// The lambda parameters in scope during a visit (`x -> x + 1` binds `x`), so that a visitor
/// does not take them for column references. Call [`LambdaScope::enter`] from `pre_visit_expr`
/// and [`LambdaScope::leave`] from `post_visit_expr`.
#[derive(Debug, Default)]
pub(crate) struct LambdaScope(Vec<String>);

impl LambdaScope {
    pub fn enter(&mut self, expr: &Expr) {
        if let Expr::Lambda(lambda) = expr {
            self.0.extend(lambda.params.iter().map(|p| p.name.value.to_ascii_lowercase()));
        }
    }

    pub fn leave(&mut self, expr: &Expr) {
        if let Expr::Lambda(lambda) = expr {
            self.0.truncate(self.0.len().saturating_sub(lambda.params.len()));
        }
    }

    /// True when `expr` is a bare reference to a lambda parameter in scope.
    pub fn binds(&self, expr: &Expr) -> bool {
        matches!(expr, Expr::Identifier(i) if self.0.contains(&i.value.to_ascii_lowercase()))
    }
}

/// True when `function` is a call of an aggregate (not a window function).
pub(crate) fn is_aggregate_call(function: &Function, ctx: &Context) -> bool {
    function.over.is_none()
        && function
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|name| ctx.aggregates.contains(&name.value.to_ascii_lowercase()))
        && !matches!(function.args, FunctionArguments::None)
}

/// True when any select item contains an aggregate call or a window function.
pub(crate) fn has_aggregate_or_window(items: &[SelectItem], ctx: &Context) -> bool {
    struct Finder<'a>(&'a Context<'a>);
    impl Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Function(f) if f.over.is_some() || is_aggregate_call(f, self.0) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
        fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
            // Aggregates inside a scalar subquery belong to that subquery, but we cannot skip its
            // subtree with this visitor; treating it as aggregating is the safe side.
            ControlFlow::Continue(())
        }
    }
    items.iter().any(|item| item.visit(&mut Finder(ctx)).is_break())
}

/// True for `*`, `t.*` (with any modifier) and any select item with a star expression inside
/// (`COLUMNS(...)`, `*COLUMNS(...)`, `COLUMNS(*)`): items whose output columns depend on the FROM
/// clause's schema.
pub(crate) fn is_star_item(item: &SelectItem) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => ControlFlow::Break(()),
                Expr::Function(f)
                    if f.name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("columns")) =>
                {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    match item {
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => true,
        SelectItem::UnnamedExpr(expr)
        | SelectItem::ExprWithAlias { expr, .. }
        | SelectItem::ExprWithAliases { expr, .. } => expr.visit(&mut Finder).is_break(),
    }
}

/// True when `node` contains a window function (a call with OVER).
pub(crate) fn contains_window<V: Visit>(node: &V) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Function(f) if f.over.is_some() => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    node.visit(&mut Finder).is_break()
}

/// Whether every column `node` names is one of `columns` (a name's last part, compared without
/// regard to case, as DuckDB resolves names) and no expression in it is `refused`.
pub(crate) fn names_only<V: Visit>(node: &V, columns: &[String], refused: impl Fn(&Expr) -> bool) -> bool {
    let known = |ident: &sqlparser::ast::Ident| columns.iter().any(|c| c.eq_ignore_ascii_case(&ident.value));
    !sqlparser::ast::visit_expressions(node, |expr| match expr {
        Expr::Identifier(ident) if !known(ident) => ControlFlow::Break(()),
        Expr::CompoundIdentifier(parts) if !parts.last().is_some_and(known) => ControlFlow::Break(()),
        _ if refused(expr) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// True when `node` contains an aggregate call.
pub(crate) fn contains_aggregate<V: Visit>(node: &V, ctx: &Context) -> bool {
    struct Finder<'a>(&'a Context<'a>);
    impl Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Function(f) if is_aggregate_call(f, self.0) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    node.visit(&mut Finder(ctx)).is_break()
}

/// The block-level result of a strategy: the map query (without the CTEs of enclosing scopes)
/// and the reduce query that replaces the block.
pub(crate) struct BlockSplit {
    pub strategy: Strategy,
    pub map: Query,
    pub reduce: Query,
    pub top_n_pushdown: bool,
    /// See [`Rewritten::distinct_keys`].
    pub distinct_keys: bool,
}

struct BlockSplitter<'a> {
    ctx: &'a Context<'a>,
    allow_partial_aggregate: bool,
    out: Option<(BlockSplit, Option<String>, Query)>,
}

impl split::Splitter for BlockSplitter<'_> {
    fn split(&mut self, block: &mut Query, scope: &[Cte]) -> Result<(), RewriteError> {
        if self.out.is_some() {
            return Err(RewriteError::unsplittable("the query reads the partitioned table in more than one place"));
        }
        gate::check_block(block, &from_names(block, scope, self.ctx)?)?;
        let mut note = None;
        let attempt = if self.allow_partial_aggregate {
            aggregate::split(block, self.ctx)
        } else {
            Err(RewriteError::unsupported("partial aggregates do not bind for this query"))
        };
        let result = match attempt {
            Ok(result) => result,
            Err(RewriteError::Unsupported { reason }) => {
                if reason != aggregate::NOT_AGGREGATING {
                    note = Some(reason);
                }
                // Shipping rows is the last split strategy: what it cannot do is unsplittable.
                rows::split(block, self.ctx).map_err(|e| match e {
                    RewriteError::Unsupported { reason } => RewriteError::Unsplittable { reason },
                    other => other,
                })?
            }
            Err(other) => return Err(other),
        };
        let map = with_scope(&result.map, scope);
        *block = result.reduce.clone();
        self.out = Some((result, note, map));
        Ok(())
    }
}

/// Every name a bare identifier can mean in `block`'s FROM clause: its columns (bound by the
/// context's binder) and its relations' names, lowercased.
fn from_names(block: &Query, scope: &[Cte], ctx: &Context) -> Result<HashSet<String>, RewriteError> {
    let SetExpr::Select(select) = block.body.as_ref() else {
        return Ok(HashSet::new());
    };
    let mut names = gate::relation_names(select);
    match &ctx.binder {
        None => names.extend(ctx.scan_columns.iter().cloned()),
        Some(binder) => {
            let mut star = template("SELECT * FROM t");
            let SetExpr::Select(star_select) = star.body.as_mut() else { unreachable!("a SELECT template") };
            star_select.from = select.from.clone();
            let columns = binder(&with_scope(&star, scope)).map_err(|message| {
                RewriteError::unsplittable(format!(
                    "the FROM clause of the block that reads the partitioned table does not bind on its own ({})",
                    message.lines().next().unwrap_or_default()
                ))
            })?;
            names.extend(columns.into_iter().map(|c| c.to_ascii_lowercase()));
        }
    }
    Ok(names)
}

/// `map` prefixed with the enclosing CTEs it references (transitively).
fn with_scope(map: &Query, scope: &[Cte]) -> Query {
    let mut needed: Vec<Cte> = Vec::new();
    let mut names = split::referenced_relations(map);
    loop {
        let before = needed.len();
        for cte in scope.iter().rev() {
            let name = cte.alias.name.value.to_ascii_lowercase();
            if names.contains(&name) && !needed.iter().any(|c| c.alias.name.value.eq_ignore_ascii_case(&name)) {
                needed.push(cte.clone());
                names.extend(split::referenced_relations(cte.query.as_ref()));
            }
        }
        if needed.len() == before {
            break;
        }
    }
    if needed.is_empty() {
        return map.clone();
    }
    // Keep the scope's definition order (a CTE may reference earlier ones).
    let ordered: Vec<Cte> =
        scope.iter().filter(|c| needed.iter().any(|n| n.alias.name == c.alias.name)).cloned().collect();
    let mut wrapped = map.clone();
    match &mut wrapped.with {
        Some(with) => {
            let mut all = ordered;
            all.append(&mut with.cte_tables);
            with.cte_tables = all;
        }
        None => {
            let mut with: With = template("WITH x AS (SELECT 1) SELECT 1").with.expect("template has a WITH");
            with.cte_tables = ordered;
            wrapped.with = Some(with);
        }
    }
    wrapped
}

/// Removes CTEs no longer referenced (the reduce no longer reads the ones the map absorbed).
fn prune_unused_ctes(query: &mut Query) {
    struct Pruner;
    impl VisitorMut for Pruner {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            while let Some(with) = &query.with {
                let mut used = split::referenced_relations(query.body.as_ref());
                if let Some(order_by) = &query.order_by {
                    used.extend(split::referenced_relations(order_by));
                }
                for cte in &with.cte_tables {
                    used.extend(split::referenced_relations(cte.query.as_ref()));
                }
                let with = query.with.as_mut().expect("checked");
                let before = with.cte_tables.len();
                with.cte_tables.retain(|c| used.contains(&c.alias.name.value.to_ascii_lowercase()));
                if with.cte_tables.is_empty() {
                    query.with = None;
                    break;
                }
                if with.cte_tables.len() == before {
                    break;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = query.visit(&mut Pruner);
}

/// The single parsed query of `sql`, or why there is none.
pub fn single_query(statements: Vec<Statement>) -> Result<Query, RewriteError> {
    let mut statements = statements;
    match statements.len() {
        0 => Err(RewriteError::NotAQuery { what: "an empty statement".into() }),
        1 => match statements.remove(0) {
            Statement::Query(q) => Ok(*q),
            other => {
                let text = other.to_string();
                let what = text.split_whitespace().next().unwrap_or("another statement").to_ascii_uppercase();
                Err(RewriteError::NotAQuery { what })
            }
        },
        n => Err(RewriteError::NotAQuery { what: format!("{n} statements") }),
    }
}

/// Rewrites `query` (whose fanned-out scan is the only one; see [`scan::collect_fan_scans`])
/// into map and reduce SQL.
pub fn rewrite(query: &Query, ctx: &Context, allow_partial_aggregate: bool) -> Result<Rewritten, RewriteError> {
    gate::check_query(query)?;
    let mut query = query.clone();
    let scans = scan::collect_fan_scans_except(&mut query, true, ctx.companion.map(|c| c.occurrence));
    if scans.len() != 1 {
        return Err(RewriteError::unsplittable(format!(
            "the query reads {} hive-partitioned tables; one can be split",
            scans.len()
        )));
    }
    let mut splitter = BlockSplitter { ctx, allow_partial_aggregate, out: None };
    match split::visit_query(&mut query, &[], ctx, &mut splitter)? {
        split::Status::Pending => split::Splitter::split(&mut splitter, &mut query, &[])?,
        split::Status::Split => {}
        split::Status::NotFound => return Err(RewriteError::unsplittable("the partitioned table was not found")),
    }
    let (block, note, map) = splitter.out.expect("a split was made");
    prune_unused_ctes(&mut query);
    if split::contains_fan(&query) {
        return Err(RewriteError::unsplittable("the query reads the partitioned table in more than one place"));
    }
    Ok(Rewritten {
        strategy: block.strategy,
        note,
        map,
        reduce_sql: query.to_string(),
        reduce: query,
        top_n_pushdown: block.top_n_pushdown,
        distinct_keys: block.distinct_keys,
    })
}

#[cfg(test)]
mod tests;
