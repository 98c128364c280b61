//! The preconditions of splitting: what the rewriter must be sure of before its name-based
//! reasoning gives the same answer as DuckDB's binder. A query that fails one is not split; it
//! runs by a strategy that is exact by definition (one task over all files), and `quack explain`
//! says which precondition failed.
//!
//! * **Reserved names.** Every name the rewriter generates starts with [`RESERVED_PREFIX`]; a query
//!   that itself uses an identifier with that prefix is not split, so generated names can never
//!   capture or be captured by the user's.
//! * **Samples.** `TABLESAMPLE` / `USING SAMPLE` drawn per task is not the sample of the table.
//! * **CTE names defined twice** (a nested `WITH` shadowing an outer CTE): inlining by name could
//!   pick the wrong definition.
//! * **Ambiguous names in the split block.** DuckDB resolves a bare name that is both a select
//!   alias and a column of the FROM clause differently per clause (GROUP BY and expressions prefer
//!   the column, HAVING and a bare ORDER BY key prefer the alias). The block is split only when
//!   no such name is referenced, except as a whole ORDER BY key (DuckDB's rule there is the alias,
//!   which is also what the rewriter does) or inside the alias's own expression (which can only
//!   mean the column). Then every name has one meaning, whatever the precedence.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, OrderByKind, Query, Select, SelectItem, SetExpr,
    TableAlias, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::{LambdaScope, RewriteError};

/// The prefix of every name the rewriter generates (columns, tables, placeholders).
pub const RESERVED_PREFIX: &str = "__quack";

/// Whole-query preconditions, checked on the query as the user wrote it.
pub(crate) fn check_query(query: &Query) -> Result<(), RewriteError> {
    let text = query.to_string();
    let tokens = Tokenizer::new(&DuckDbDialect {}, &text)
        .tokenize()
        .map_err(|e| RewriteError::unsplittable(format!("the query does not tokenize again ({e})")))?;
    for token in &tokens {
        if let Token::Word(word) = token {
            if word.value.to_ascii_lowercase().starts_with(RESERVED_PREFIX) {
                return Err(RewriteError::unsplittable(format!(
                    "the name `{}` uses quack's reserved prefix `{RESERVED_PREFIX}`",
                    word.value
                )));
            }
            if word.quote_style.is_none()
                && (word.value.eq_ignore_ascii_case("tablesample") || word.value.eq_ignore_ascii_case("sample"))
            {
                return Err(RewriteError::unsplittable(
                    "the query samples rows (TABLESAMPLE / USING SAMPLE): a sample drawn per task is not a sample \
                     of the whole table",
                ));
            }
        }
    }
    let mut names = HashSet::new();
    let mut duplicate = None;
    let _ = query.visit(&mut CteNames { names: &mut names, duplicate: &mut duplicate });
    if let Some(name) = duplicate {
        return Err(RewriteError::unsplittable(format!(
            "the CTE name `{name}` is defined more than once (a nested WITH shadows it)"
        )));
    }
    Ok(())
}

struct CteNames<'a> {
    names: &'a mut HashSet<String>,
    duplicate: &'a mut Option<String>,
}

impl Visitor for CteNames<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        for cte in query.with.iter().flat_map(|w| &w.cte_tables) {
            if !self.names.insert(cte.alias.name.value.to_ascii_lowercase()) && self.duplicate.is_none() {
                *self.duplicate = Some(cte.alias.name.value.clone());
            }
        }
        ControlFlow::Continue(())
    }
}

/// The split block's name preconditions. `from_names` are the names a bare identifier can mean
/// in its FROM clause: every column of every relation, and the relations' names or aliases
/// (a bare table name is the row as a struct), lowercased.
pub(crate) fn check_block(block: &Query, from_names: &HashSet<String>) -> Result<(), RewriteError> {
    let SetExpr::Select(select) = block.body.as_ref() else {
        return Ok(());
    };
    let mut aliases: HashMap<String, usize> = HashMap::new();
    for (i, item) in select.projection.iter().enumerate() {
        if let SelectItem::ExprWithAlias { alias, .. } = item {
            if aliases.insert(alias.value.to_ascii_lowercase(), i).is_some() {
                return Err(RewriteError::unsplittable(format!("the alias `{}` is given twice", alias.value)));
            }
        }
    }
    // A bare column reference's output name is its column name: an alias equal to it names two
    // output columns alike, and which one ORDER BY means is DuckDB's choice, not ours.
    for item in &select.projection {
        let implicit = match item {
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(ident),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last(),
            _ => None,
        };
        if let Some(name) = implicit {
            if aliases.contains_key(&name.value.to_ascii_lowercase()) {
                return Err(RewriteError::unsplittable(format!(
                    "the output name `{}` is given to two columns",
                    name.value
                )));
            }
        }
    }
    let ambiguous: HashSet<&String> = aliases.keys().filter(|a| from_names.contains(*a)).collect();
    if ambiguous.is_empty() {
        return Ok(());
    }
    let refuse = |name: &str| {
        Err(RewriteError::unsplittable(format!(
            "`{name}` is both a select alias and a column of the FROM clause, and DuckDB resolves such a name \
             differently per clause"
        )))
    };
    let mut check = |node: &dyn VisitNode, own: Option<&str>| -> Result<(), RewriteError> {
        let mut finder = BareNames { lambdas: LambdaScope::default(), names: Vec::new() };
        node.visit_with(&mut finder);
        match finder.names.iter().find(|n| ambiguous.contains(n) && Some(n.as_str()) != own) {
            Some(name) => refuse(name),
            None => Ok(()),
        }
    };
    for item in &select.projection {
        match item {
            SelectItem::ExprWithAlias { expr, alias } => check(expr, Some(&alias.value.to_ascii_lowercase()))?,
            SelectItem::UnnamedExpr(expr) => check(expr, None)?,
            other => check(other, None)?,
        }
    }
    check(&select.selection, None)?;
    check(&select.having, None)?;
    check(&select.qualify, None)?;
    check(&select.named_window, None)?;
    check(&select.distinct, None)?;
    check(&select.prewhere, None)?;
    match &select.group_by {
        GroupByExpr::All(_) => {}
        GroupByExpr::Expressions(exprs, _) => check(exprs, None)?,
    }
    check_join_constraints(select, &mut check)?;
    if let Some(order_by) = &block.order_by {
        if let OrderByKind::Expressions(exprs) = &order_by.kind {
            for e in exprs {
                // A whole ORDER BY key that is a bare alias means the alias in DuckDB.
                if !matches!(&e.expr, Expr::Identifier(_)) {
                    check(&e.expr, None)?;
                }
            }
        }
    }
    check(&block.limit_clause, None)?;
    Ok(())
}

/// Checks the bare names of a node, except the alias whose own expression it is.
type NameCheck<'a> = dyn FnMut(&dyn VisitNode, Option<&str>) -> Result<(), RewriteError> + 'a;

/// The ON / USING parts of the block's joins (the relations themselves are their own scopes).
fn check_join_constraints(select: &Select, check: &mut NameCheck<'_>) -> Result<(), RewriteError> {
    for twj in &select.from {
        for join in &twj.joins {
            let constraint = match &join.join_operator {
                JoinOperator::AsOf { constraint, .. } => Some(constraint),
                op => super::join::keyed_constraint(op),
            };
            if let Some(JoinConstraint::On(expr)) = constraint {
                check(expr, None)?;
            }
        }
    }
    Ok(())
}

/// A relation's alias, and its table's (or table function's) last name part with whether it is
/// a function call (`read_parquet(..)`).
pub(crate) fn factor_names(factor: &TableFactor) -> (Option<&TableAlias>, Option<(&Ident, bool)>) {
    match factor {
        TableFactor::Table { alias, name, args, .. } => {
            (alias.as_ref(), name.0.last().and_then(|p| p.as_ident()).map(|n| (n, args.is_some())))
        }
        TableFactor::Derived { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::NestedJoin { alias, .. } => (alias.as_ref(), None),
        _ => (None, None),
    }
}

/// Lowercased relation names and aliases of a FROM clause, for [`check_block`].
pub(crate) fn relation_names(select: &Select) -> HashSet<String> {
    let mut names = HashSet::new();
    let mut add = |factor: &TableFactor| {
        let (alias, name) = factor_names(factor);
        let name = name.filter(|(_, function)| !function).map(|(name, _)| name);
        if let Some(alias) = alias {
            names.insert(alias.name.value.to_ascii_lowercase());
        } else if let Some(name) = name {
            names.insert(name.value.to_ascii_lowercase());
        }
    };
    for twj in &select.from {
        add(&twj.relation);
        for join in &twj.joins {
            add(&join.relation);
        }
    }
    names
}

/// Bare identifiers referenced in a node (lambda parameters excluded), lowercased.
struct BareNames {
    lambdas: LambdaScope,
    names: Vec<String>,
}

impl Visitor for BareNames {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        self.lambdas.enter(expr);
        if let Expr::Identifier(ident) = expr {
            if !self.lambdas.binds(expr) {
                self.names.push(ident.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        self.lambdas.leave(expr);
        ControlFlow::Continue(())
    }
}

/// Object-safe visiting, so one closure checks nodes of different types.
trait VisitNode {
    fn visit_with(&self, visitor: &mut BareNames);
}

impl<T: Visit> VisitNode for T {
    fn visit_with(&self, visitor: &mut BareNames) {
        let _ = self.visit(visitor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sql: &str) -> Query {
        super::super::single_query(super::super::parse(sql).unwrap()).unwrap()
    }

    fn names(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reserved_names_samples_and_shadowed_ctes_are_not_split() {
        for sql in [
            "SELECT a AS __quack_k0 FROM t",
            "SELECT \"__QUACK_x\" FROM t",
            "SELECT * FROM t TABLESAMPLE 10 ROWS",
            "SELECT * FROM t USING SAMPLE 10%",
            "WITH c AS (SELECT 1) SELECT (WITH c AS (SELECT 2) SELECT * FROM c) FROM c",
        ] {
            let Ok(q) = super::super::parse(sql).map(|s| super::super::single_query(s).unwrap()) else { continue };
            assert!(matches!(check_query(&q), Err(RewriteError::Unsplittable { .. })), "{sql}");
        }
        assert!(check_query(&query("WITH c AS (SELECT 1) SELECT \"sample_size\", 'tablesample' FROM c")).is_ok());
    }

    #[test]
    fn an_alias_that_is_also_a_column_is_refused_where_it_is_referenced() {
        let from = names(&["a", "b", "t"]);
        for sql in [
            "SELECT -a AS a, count(*) FROM t GROUP BY a",
            "SELECT -a AS a, count(*) FROM t GROUP BY ALL HAVING a > 1",
            "SELECT -a AS a FROM t ORDER BY a + 0",
            "SELECT -a AS a, a * 10 AS c FROM t",
            "SELECT -a AS a FROM t WHERE a > 1",
            "SELECT b AS x, a AS x FROM t",
            "SELECT a AS t, t FROM t",
            "SELECT b AS s, t.s FROM t ORDER BY s",
        ] {
            assert!(check_block(&query(sql), &from).is_err(), "{sql}");
        }
        for sql in [
            "SELECT -a AS a FROM t ORDER BY a",
            "SELECT a * 2 AS a, count(*) FROM t GROUP BY 1",
            "SELECT a AS x, count(*) FROM t GROUP BY x ORDER BY x",
            "SELECT list_transform(l, a -> a + 1) AS a FROM t",
        ] {
            assert!(check_block(&query(sql), &from).is_ok(), "{sql}");
        }
    }
}
