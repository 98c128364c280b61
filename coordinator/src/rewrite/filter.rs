//! Extracting the partition predicate: the part of the WHERE clause of the block that reads the
//! fanned-out scan which only depends on partition columns, weakened soundly so that every row
//! passing the WHERE clause lies in a partition passing the predicate.
//!
//! `a AND b` keeps whichever sides qualify; `a OR b` qualifies only if both sides do; `NOT a`
//! only if `a` is entirely about partition columns. Subqueries, aggregates, windows and volatile
//! functions never qualify.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, Query, Select, TableFactor, UnaryOperator, Visit, VisitMut, Visitor, VisitorMut,
};

use super::scan::is_placeholder;

const VOLATILE: &[&str] = &["random", "gen_random_uuid", "uuid", "nextval", "currval", "setseed"];

/// The partition predicate of the block that reads the placeholder scan, as SQL over the
/// partition columns (unqualified), or `None` when nothing can be pruned.
pub fn partition_predicate(query: &Query, partition_columns: &[String], scan_alias: Option<&str>) -> Option<String> {
    let select = scan_block(query)?;
    let selection = select.selection.as_ref()?;
    let columns: HashSet<String> = partition_columns.iter().map(|c| c.to_ascii_lowercase()).collect();
    let alias = scan_alias.map(|a| a.to_ascii_lowercase());
    let mut part = partition_part(selection, &columns, alias.as_deref())?;
    let _ = VisitMut::visit(&mut part, &mut Unqualify);
    Some(part.to_string())
}

/// The SELECT whose FROM reads the placeholder scan directly.
fn scan_block(query: &Query) -> Option<Select> {
    struct Finder(Option<Select>);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let sqlparser::ast::SetExpr::Select(select) = query.body.as_ref() {
                let direct = select.from.iter().any(|twj| {
                    std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)).any(is_direct)
                });
                if direct {
                    self.0 = Some(select.as_ref().clone());
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    fn is_direct(factor: &TableFactor) -> bool {
        is_placeholder(factor)
            || matches!(factor, TableFactor::NestedJoin { table_with_joins, .. }
                if std::iter::once(&table_with_joins.relation).chain(table_with_joins.joins.iter().map(|j| &j.relation)).any(is_direct))
    }
    let mut finder = Finder(None);
    let _ = query.visit(&mut finder);
    finder.0
}

fn partition_part(expr: &Expr, columns: &HashSet<String>, alias: Option<&str>) -> Option<Expr> {
    match expr {
        Expr::Nested(inner) => partition_part(inner, columns, alias).map(|e| Expr::Nested(Box::new(e))),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            match (partition_part(left, columns, alias), partition_part(right, columns, alias)) {
                (Some(l), Some(r)) => {
                    Some(Expr::BinaryOp { left: Box::new(l), op: BinaryOperator::And, right: Box::new(r) })
                }
                (Some(one), None) | (None, Some(one)) => Some(one),
                (None, None) => None,
            }
        }
        Expr::BinaryOp { left, op: BinaryOperator::Or, right } => {
            let l = partition_part(left, columns, alias)?;
            let r = partition_part(right, columns, alias)?;
            Some(nested(Expr::BinaryOp {
                left: Box::new(nested(l)),
                op: BinaryOperator::Or,
                right: Box::new(nested(r)),
            }))
        }
        Expr::UnaryOp { op: UnaryOperator::Not, .. } => {
            only_partition_columns(expr, columns, alias).then(|| expr.clone())
        }
        other => only_partition_columns(other, columns, alias).then(|| other.clone()),
    }
}

/// `expr` in parentheses (once), so precedence survives recombination.
fn nested(expr: Expr) -> Expr {
    match expr {
        Expr::Nested(_) => expr,
        other => Expr::Nested(Box::new(other)),
    }
}

/// True when `expr` references at least one column, all of them partition columns, and has no
/// subquery, aggregate, window or volatile function.
fn only_partition_columns(expr: &Expr, columns: &HashSet<String>, alias: Option<&str>) -> bool {
    struct Check<'a> {
        columns: &'a HashSet<String>,
        alias: Option<&'a str>,
        refs: usize,
        ok: bool,
    }
    impl Visitor for Check<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(ident) => {
                    self.refs += 1;
                    self.ok &= self.columns.contains(&ident.value.to_ascii_lowercase());
                }
                Expr::CompoundIdentifier(parts) => {
                    self.refs += 1;
                    self.ok &= parts.len() == 2
                        && self.alias.is_some_and(|a| parts[0].value.eq_ignore_ascii_case(a))
                        && self.columns.contains(&parts[1].value.to_ascii_lowercase());
                }
                Expr::Function(f) => {
                    let name = f.name.to_string().to_ascii_lowercase();
                    self.ok &= f.over.is_none() && f.filter.is_none() && !VOLATILE.contains(&name.as_str());
                }
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } | Expr::Lambda(_) => self.ok = false,
                _ => {}
            }
            if self.ok {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        }
    }
    let mut check = Check { columns, alias, refs: 0, ok: true };
    let _ = expr.visit(&mut check);
    check.ok && check.refs > 0
}

/// `t.date` → `date` (the pruning table has bare partition columns).
struct Unqualify;

impl VisitorMut for Unqualify {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = expr {
            let last: Ident = parts.last().cloned().expect("compound identifiers are not empty");
            *expr = Expr::Identifier(last);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::{parse, scan::collect_fan_scans, single_query};

    fn predicate(sql: &str) -> Option<String> {
        let mut query = single_query(parse(sql).unwrap()).unwrap();
        let scans = collect_fan_scans(&mut query, true);
        partition_predicate(&query, &["date".into(), "hour".into()], scans[0].alias.as_deref())
    }

    const FROM: &str = "FROM read_parquet('l/*/*.parquet', hive_partitioning = true) t";

    #[test]
    fn keeps_partition_conjuncts() {
        assert_eq!(
            predicate(&format!("SELECT 1 {FROM} WHERE t.date >= DATE '2024-03-01' AND fare > 3 AND hour IN (1, 2)")),
            Some("date >= DATE '2024-03-01' AND hour IN (1, 2)".into())
        );
        assert_eq!(
            predicate(&format!("SELECT 1 {FROM} WHERE date BETWEEN DATE '2024-03-01' AND DATE '2024-03-05'")),
            Some("date BETWEEN DATE '2024-03-01' AND DATE '2024-03-05'".into())
        );
    }

    #[test]
    fn weakens_or_soundly() {
        assert_eq!(
            predicate(&format!(
                "SELECT 1 {FROM} WHERE (date = DATE '2024-03-01' AND fare > 1) OR date = DATE '2024-03-09'"
            )),
            Some("((date = DATE '2024-03-01') OR (date = DATE '2024-03-09'))".into())
        );
        assert_eq!(predicate(&format!("SELECT 1 {FROM} WHERE date = DATE '2024-03-01' OR fare > 1")), None);
        assert_eq!(predicate(&format!("SELECT 1 {FROM} WHERE NOT (date = DATE '2024-03-01' AND fare > 1)")), None);
    }

    #[test]
    fn refuses_volatile_and_subqueries() {
        assert_eq!(predicate(&format!("SELECT 1 {FROM} WHERE date > DATE '2024-01-01' + random()::INT")), None);
        assert_eq!(predicate(&format!("SELECT 1 {FROM} WHERE date IN (SELECT d FROM x)")), None);
        assert_eq!(predicate(&format!("SELECT 1 {FROM} WHERE z.date = DATE '2024-03-01'")), None);
    }

    #[test]
    fn finds_the_block_below_derived_tables() {
        assert_eq!(
            predicate(&format!("SELECT count(*) FROM (SELECT * {FROM} WHERE date = DATE '2024-03-02') s")),
            Some("date = DATE '2024-03-02'".into())
        );
    }
}
