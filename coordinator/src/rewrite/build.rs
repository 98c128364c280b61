//! Building the rewriter's own SQL as trees: generated names, numbers, clauses and merge
//! expressions are sqlparser AST nodes, never text that is formatted and parsed again.
//!
//! Fixed shapes (a merge formula, `FROM __quack_partials__`) come from constant templates of
//! the rewriter's own, parsed once per use; their holes are identifiers named `__quack_hole_*`
//! that [`fill`] replaces by trees. User expressions are only ever inserted as trees, so their
//! text is never re-read, and no user name can fill a hole.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, GroupByExpr, Ident, LimitClause, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, TableAlias,
    TableFactor, TableWithJoins, Value, VisitMut, VisitorMut, WindowType,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

use super::template;

/// A bare column reference (`__quack_k0`).
pub(crate) fn column(name: impl Into<String>) -> Expr {
    Expr::Identifier(Ident::new(name))
}

/// An integer literal (an ordinal, a LIMIT).
pub(crate) fn number(n: u64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// `expr AS name`.
pub(crate) fn aliased(expr: Expr, name: impl Into<String>) -> SelectItem {
    SelectItem::ExprWithAlias { expr, alias: Ident::new(name) }
}

/// `GROUP BY` the given expressions (none: no GROUP BY clause).
pub(crate) fn group_by(exprs: Vec<Expr>) -> GroupByExpr {
    GroupByExpr::Expressions(exprs, vec![])
}

/// `*`, as a select list.
pub(crate) fn star() -> Vec<SelectItem> {
    select_of(template("SELECT *")).projection
}

/// `LIMIT n`.
pub(crate) fn limit(n: u64) -> LimitClause {
    LimitClause::LimitOffset { limit: Some(number(n)), offset: None, limit_by: vec![] }
}

/// `FROM __quack_partials__ [AS alias]`.
pub(crate) fn from_partials(alias: Option<Ident>) -> Vec<TableWithJoins> {
    let mut from = select_of(template("SELECT 1 FROM __quack_partials__")).from;
    if let (Some(alias), Some(TableFactor::Table { alias: slot, .. })) =
        (alias, from.first_mut().map(|t| &mut t.relation))
    {
        *slot = Some(TableAlias { explicit: true, name: alias, columns: vec![], at: None });
    }
    from
}

/// `FROM (SELECT *, <items> FROM __quack_partials__) AS __quack_p`.
pub(crate) fn from_partials_with(items: Vec<SelectItem>) -> Vec<TableWithJoins> {
    let mut outer = select_of(template("SELECT 1 FROM (SELECT * FROM __quack_partials__) AS __quack_p"));
    if let Some(TableWithJoins { relation: TableFactor::Derived { subquery, .. }, .. }) = outer.from.first_mut() {
        if let SetExpr::Select(inner) = subquery.body.as_mut() {
            inner.projection.extend(items);
        }
    }
    outer.from
}

/// An expression of the rewriter's own, from constant SQL with holes (`__quack_hole_x`).
pub(crate) fn expr_template(sql: &'static str) -> Expr {
    static PARSED: std::sync::Mutex<Option<std::collections::HashMap<&'static str, Expr>>> =
        std::sync::Mutex::new(None);
    let mut parsed = PARSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    parsed
        .get_or_insert_with(std::collections::HashMap::new)
        .entry(sql)
        .or_insert_with(|| {
            Parser::new(&DuckDbDialect {})
                .try_with_sql(sql)
                .and_then(|mut p| p.parse_expr())
                .unwrap_or_else(|e| panic!("constant expression template {sql:?} does not parse: {e}"))
        })
        .clone()
}

/// `template` with each hole `__quack_hole_<name>` replaced by its tree from `holes`. The
/// inserted trees are not visited again.
pub(crate) fn fill(mut template: Expr, holes: &[(&str, Expr)]) -> Expr {
    struct Filler<'a>(&'a [(&'a str, Expr)]);
    impl VisitorMut for Filler<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Identifier(ident) = expr {
                if let Some(name) = ident.value.strip_prefix("__quack_hole_") {
                    let (_, tree) = self.0.iter().find(|(hole, _)| *hole == name).expect("every hole is filled");
                    *expr = tree.clone();
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = template.visit(&mut Filler(holes));
    template
}

/// Sets `PARTITION BY partition` on every window of `expr` (templates write `OVER ()`).
pub(crate) fn partition_windows(mut expr: Expr, partition: &[Expr]) -> Expr {
    struct Partition<'a>(&'a [Expr]);
    impl VisitorMut for Partition<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = expr {
                if let Some(WindowType::WindowSpec(spec)) = &mut f.over {
                    spec.partition_by = self.0.to_vec();
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = expr.visit(&mut Partition(partition));
    expr
}

/// The same call under another function name (`avg(x) FILTER (...)` → `sum(x) FILTER (...)`).
pub(crate) fn renamed(call: &sqlparser::ast::Function, name: &str) -> Expr {
    let mut call = call.clone();
    call.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]);
    Expr::Function(call)
}

fn select_of(query: Query) -> sqlparser::ast::Select {
    match *query.body {
        SetExpr::Select(select) => *select,
        _ => unreachable!("templates are plain SELECTs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::PARTIALS_TABLE;

    #[test]
    fn templates_name_the_partials_table() {
        assert_eq!(PARTIALS_TABLE, "__quack_partials__");
    }

    #[test]
    fn holes_take_trees_and_user_names_never_fill_them() {
        let user = super::super::parse_expr("\"__quack_hole_a\" + n").unwrap();
        let filled = fill(expr_template("sum(__quack_hole_a) / count(__quack_hole_a)"), &[("a", user)]);
        // The inserted tree is not visited again: its own `__quack_hole_a` stays a column.
        assert_eq!(filled.to_string(), "sum(\"__quack_hole_a\" + n) / count(\"__quack_hole_a\" + n)");
    }

    #[test]
    fn partials_sources() {
        let mut q = template("SELECT 1");
        let SetExpr::Select(s) = q.body.as_mut() else { unreachable!() };
        s.from = from_partials(Some(Ident::new("t")));
        assert_eq!(q.to_string(), "SELECT 1 FROM __quack_partials__ AS t");
        let SetExpr::Select(s) = q.body.as_mut() else { unreachable!() };
        let g = partition_windows(expr_template("sum(x) OVER ()"), &[column("__quack_k0")]);
        s.from = from_partials_with(vec![aliased(g, "__quack_a0_g")]);
        assert_eq!(
            q.to_string(),
            "SELECT 1 FROM (SELECT *, sum(x) OVER (PARTITION BY __quack_k0) AS __quack_a0_g FROM __quack_partials__) AS __quack_p"
        );
        assert_eq!(limit(12).to_string(), " LIMIT 12");
    }
}
