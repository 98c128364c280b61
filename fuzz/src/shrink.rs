//! Shrinking a failing query to a minimal one, on its parse tree: repeatedly try each one-step
//! reduction (drop a select item, a WHERE / HAVING / QUALIFY clause, the LIMIT, an ORDER BY,
//! a GROUP BY key, a join, one side of AND / OR) and keep the first that still fails, until none
//! does. Every reduction keeps a deterministic query deterministic: an order is never made partial.

use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, GroupByExpr, Query, SetExpr, Statement, VisitMut, VisitorMut};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

/// The smallest query reachable from `sql` by one-step reductions for which `fails` holds,
/// trying at most `budget` candidates.
pub fn shrink(sql: &str, budget: usize, mut fails: impl FnMut(&str) -> bool) -> String {
    let mut current = sql.to_string();
    let mut tried = 0;
    'outer: loop {
        for candidate in candidates(&current) {
            if tried >= budget {
                break 'outer;
            }
            tried += 1;
            if candidate.len() < current.len() && fails(&candidate) {
                current = candidate;
                continue 'outer;
            }
        }
        break;
    }
    current
}

/// Every one-step reduction of `sql` (empty when it does not parse).
pub fn candidates(sql: &str) -> Vec<String> {
    let Ok(statements) = Parser::parse_sql(&DuckDbDialect {}, sql) else {
        return Vec::new();
    };
    let [Statement::Query(query)] = statements.as_slice() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for target in 0.. {
        let mut copy = query.clone();
        let mut editor = Editor { target, seen: 0, done: false };
        let _ = copy.visit(&mut editor);
        if !editor.done {
            break;
        }
        out.push(copy.to_string());
    }
    out
}

/// Applies the `target`-th reduction site met in a visit.
struct Editor {
    target: usize,
    seen: usize,
    done: bool,
}

impl Editor {
    fn site(&mut self) -> bool {
        let hit = !self.done && self.seen == self.target;
        self.seen += 1;
        if hit {
            self.done = true;
        }
        hit
    }
}

impl VisitorMut for Editor {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if query.limit_clause.is_some() && self.site() {
            query.limit_clause = None;
            return ControlFlow::Break(());
        }
        // An ORDER BY stays whole, and so do the items its ordinals count: the generator's orders
        // are total, and a shorter one would let ties fall either way (a false mismatch). Without
        // a LIMIT the whole ORDER BY may go; the judge then compares the rows as a multiset.
        if query.order_by.is_some() && query.limit_clause.is_none() && self.site() {
            query.order_by = None;
            return ControlFlow::Break(());
        }
        if let SetExpr::Select(select) = query.body.as_mut() {
            for i in 0..select.projection.len() {
                if query.order_by.is_none() && select.projection.len() > 1 && self.site() {
                    select.projection.remove(i);
                    return ControlFlow::Break(());
                }
            }
            if select.selection.is_some() && self.site() {
                select.selection = None;
                return ControlFlow::Break(());
            }
            if select.having.is_some() && self.site() {
                select.having = None;
                return ControlFlow::Break(());
            }
            if select.qualify.is_some() && self.site() {
                select.qualify = None;
                return ControlFlow::Break(());
            }
            if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
                for i in 0..exprs.len() {
                    if self.site() {
                        exprs.remove(i);
                        return ControlFlow::Break(());
                    }
                }
            }
            for twj in select.from.iter_mut() {
                for i in 0..twj.joins.len() {
                    if self.site() {
                        twj.joins.remove(i);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } = expr {
            for keep_left in [true, false] {
                if self.site() {
                    *expr = if keep_left { (**left).clone() } else { (**right).clone() };
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_to_what_still_fails() {
        let sql = "SELECT a, b, c FROM t WHERE x > 1 AND y < 2 ORDER BY a, b LIMIT 3";
        let small = shrink(sql, 500, |s| s.contains("b") && s.contains("y < 2"));
        assert_eq!(small, "SELECT b FROM t WHERE y < 2");
    }

    #[test]
    fn never_makes_an_order_partial() {
        let sql = "SELECT a, b FROM t ORDER BY 1, 2 LIMIT 3";
        for candidate in candidates(sql) {
            let limited = candidate.contains("LIMIT");
            assert!(!limited || candidate.contains("ORDER BY 1, 2"), "{candidate}");
            assert!(!candidate.contains("ORDER BY") || candidate.starts_with("SELECT a, b "), "{candidate}");
        }
    }
}
