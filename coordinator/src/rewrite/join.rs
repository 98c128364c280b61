//! Joins of two hive-partitioned tables read in one query. Each can be fanned out with the other
//! when the two are co-partitioned: both hash-partitioned on the keys of the equi-join that joins
//! them, so that every pair of rows the join can match lies in one bucket.
//!
//! Contract of [`co_partition`]: it answers `Ok` only when the query reads exactly two fan-out
//! scans, and they are the first two relations of one FROM item (`A a <join> B b ...`, in that
//! order in the text, so A is fan-out occurrence 0 and B occurrence 1), joined by an inner, left,
//! right, full, semi or anti join whose constraint is `USING (..)` or an `ON` whose top-level
//! conjunction holds at least one `a.x = b.y` between a column of each side. Joining bucket `i`
//! of A with bucket `i` of B, for every `i`, and concatenating, then gives the join of A and B:
//! rows with different keys never match, and a row that matches nothing is kept (or dropped) in
//! its own bucket exactly as over the whole tables. The caller checks that the keys are columns
//! of each table and hashes them as one type on both sides.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, JoinConstraint, JoinOperator, Query,
    Select, SetExpr, TableAlias, TableFactor, TableWithJoins, Visit, VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::scan::fan_scan_of;

/// Replaces each reference to a CTE of `query`'s own WITH that is exactly `SELECT * FROM
/// <fan-out scan>` and is used more than once by the scan itself, under the reference's alias
/// (or the CTE's name), and drops the CTE: `WITH l AS (SELECT * FROM read_parquet(..)) ..
/// FROM l AS a JOIN l AS b` reads the table twice, as DuckDB does, and is a self-join that can
/// be co-partitioned. A CTE with a column list, a recursive WITH, or a name that a nested WITH
/// shadows is left alone.
pub fn inline_scan_ctes(query: &mut Query) {
    struct Uses<'a> {
        name: &'a str,
        references: usize,
        definitions: usize,
    }
    impl Visitor for Uses<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                self.definitions +=
                    with.cte_tables.iter().filter(|c| c.alias.name.value.eq_ignore_ascii_case(self.name)).count();
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if names(factor, self.name) {
                self.references += 1;
            }
            ControlFlow::Continue(())
        }
    }
    struct Replace<'a> {
        name: &'a str,
        scan: &'a TableFactor,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if names(factor, self.name) {
                let TableFactor::Table { alias, .. } = factor else { unreachable!("names() matched a table") };
                let alias = alias.clone().unwrap_or_else(|| TableAlias {
                    explicit: true,
                    name: Ident::with_quote('"', self.name),
                    columns: vec![],
                    at: None,
                });
                let mut scan = self.scan.clone();
                if let TableFactor::Table { alias: scan_alias, .. } = &mut scan {
                    *scan_alias = Some(alias);
                }
                *factor = scan;
            }
            ControlFlow::Continue(())
        }
    }
    fn names(factor: &TableFactor, name: &str) -> bool {
        matches!(factor, TableFactor::Table { name: n, args: None, .. }
            if n.0.len() == 1 && n.0[0].as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case(name)))
    }
    let mut index = 0;
    while let Some(with) = &query.with {
        if with.recursive || index >= with.cte_tables.len() {
            return;
        }
        let cte = &with.cte_tables[index];
        let scan = scan_cte_factor(cte);
        let Some(scan) = scan.filter(|_| cte.alias.columns.is_empty()) else {
            index += 1;
            continue;
        };
        let name = cte.alias.name.value.clone();
        let mut uses = Uses { name: &name, references: 0, definitions: 0 };
        let _ = Visit::visit(&*query, &mut uses);
        if uses.references < 2 || uses.definitions != 1 {
            index += 1;
            continue;
        }
        let with = query.with.as_mut().expect("checked above");
        with.cte_tables.remove(index);
        if with.cte_tables.is_empty() {
            query.with = None;
        }
        let _ = query.visit(&mut Replace { name: &name, scan: &scan });
    }
}

/// The fan-out scan `cte` is, when its body is exactly `SELECT * FROM <scan>` (any alias of the
/// scan inside is dropped: it is not visible outside the CTE).
fn scan_cte_factor(cte: &sqlparser::ast::Cte) -> Option<TableFactor> {
    let SetExpr::Select(select) = cte.query.body.as_ref() else { return None };
    let [twj] = select.from.as_slice() else { return None };
    fan_scan_of(&twj.relation)?;
    let mut scan = twj.relation.clone();
    if let TableFactor::Table { alias, .. } = &mut scan {
        *alias = None;
    }
    let mut expected = super::template("SELECT * FROM __quack_x");
    if let SetExpr::Select(expected_select) = expected.body.as_mut() {
        expected_select.from[0].relation = twj.relation.clone();
    }
    (*cte.query == expected).then_some(scan)
}

/// One side of a co-partitioned join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The scan's alias as written (`None`: unaliased, only with `USING`).
    pub alias: Option<String>,
    /// Its key columns, as written, in key order.
    pub keys: Vec<String>,
}

/// The two sides of a join that co-partitioning splits, in fan-out occurrence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoPartition {
    pub sides: [Side; 2],
    /// The join as written, for `explain` (`LEFT JOIN ... ON ...`).
    pub join: String,
    /// Whether every row of side 0 reaches the join's output (inner, left, semi, anti joins):
    /// then a WHERE clause on side 0's partition columns prunes its partitions soundly, since no
    /// row of the output is side 0 NULL-extended.
    pub keeps_side_0: bool,
}

/// Whether a join of this type, over two tables hash-partitioned alike on its keys, is the
/// concatenation of the joins of their buckets.
pub fn co_partitionable(op: &JoinOperator) -> bool {
    constraint(op).is_some()
}

fn constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    keyed_constraint(op).filter(|c| matches!(c, JoinConstraint::On(_) | JoinConstraint::Using(_)))
}

/// The constraint of an inner, outer, semi or anti join (of any kind: ON, USING, NATURAL, none).
pub(super) fn keyed_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c) => Some(c),
        _ => None,
    }
}

/// The co-partitioned join of `query`'s two fan-out scans, or why they cannot be split that way.
/// `columns[i]` names the columns of fan-out scan `i`: an unqualified name in `ON` is a key of
/// the one side that has such a column (as DuckDB binds it; a name both sides have is ambiguous
/// to DuckDB and no key here).
pub fn co_partition(query: &Query, columns: &[Vec<String>; 2]) -> Result<CoPartition, String> {
    struct Finder {
        found: Vec<TableWithJoins>,
        scans: usize,
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            collect(query.body.as_ref(), &mut self.found);
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if fan_scan_of(factor).is_some() {
                self.scans += 1;
            }
            ControlFlow::Continue(())
        }
    }
    fn collect(body: &SetExpr, found: &mut Vec<TableWithJoins>) {
        match body {
            SetExpr::Select(select) => {
                for twj in &select.from {
                    let first_two_are_scans = fan_scan_of(&twj.relation).is_some()
                        && twj.joins.first().is_some_and(|j| fan_scan_of(&j.relation).is_some());
                    if first_two_are_scans {
                        found.push(twj.clone());
                    }
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                collect(left, found);
                collect(right, found);
            }
            _ => {}
        }
    }
    let mut finder = Finder { found: Vec::new(), scans: 0 };
    let _ = query.visit(&mut finder);
    if finder.scans != 2 {
        return Err(format!("the query reads {} hive-partitioned tables, not two", finder.scans));
    }
    let [twj] = finder.found.as_slice() else {
        return Err(
            "the two hive-partitioned tables are not joined to each other directly (FROM a JOIN b ON ..)".into()
        );
    };
    let join = &twj.joins[0];
    let Some(constraint) = constraint(&join.join_operator) else {
        return Err("the two tables are not joined by an inner, outer, semi or anti join with ON or USING".into());
    };
    let alias_of = |factor: &TableFactor| -> Result<Option<String>, String> {
        match factor {
            TableFactor::Table { alias: Some(alias), .. } if !alias.columns.is_empty() => {
                Err("a joined table renames its columns in its alias".into())
            }
            TableFactor::Table { alias, .. } => Ok(alias.as_ref().map(|a| a.name.value.clone())),
            _ => Err("a joined table is not a plain scan".into()),
        }
    };
    let aliases = [alias_of(&twj.relation)?, alias_of(&join.relation)?];
    let mut keys: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    match constraint {
        JoinConstraint::Using(names) => {
            for name in names {
                let [part] = name.0.as_slice() else { return Err(format!("USING names {name}, not a column")) };
                let column = part.as_ident().ok_or_else(|| format!("USING names {name}, not a column"))?.value.clone();
                keys[0].push(column.clone());
                keys[1].push(column);
            }
        }
        JoinConstraint::On(on) => {
            if let [Some(left), Some(right)] = &aliases {
                if left.eq_ignore_ascii_case(right) {
                    return Err("both joined tables have the same alias".into());
                }
            }
            for conjunct in conjuncts(on) {
                if let Some((l, r)) = equated_columns(conjunct, &aliases, columns) {
                    keys[0].push(l);
                    keys[1].push(r);
                }
            }
        }
        _ => unreachable!("constraint() returns ON or USING only"),
    }
    if keys[0].is_empty() {
        return Err("the join has no equality between a column of each table (a.x = b.y) to partition both on".into());
    }
    let [k0, k1] = keys;
    let [a0, a1] = aliases;
    let keeps_side_0 = matches!(
        join.join_operator,
        JoinOperator::Join(_)
            | JoinOperator::Inner(_)
            | JoinOperator::Left(_)
            | JoinOperator::LeftOuter(_)
            | JoinOperator::Semi(_)
            | JoinOperator::LeftSemi(_)
            | JoinOperator::Anti(_)
            | JoinOperator::LeftAnti(_)
    );
    Ok(CoPartition {
        sides: [Side { alias: a0, keys: k0 }, Side { alias: a1, keys: k1 }],
        join: join.to_string(),
        keeps_side_0,
    })
}

/// The top-level conjuncts of `expr` (parentheses looked through).
fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Nested(inner) => conjuncts(inner),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut all = conjuncts(left);
            all.extend(conjuncts(right));
            all
        }
        other => vec![other],
    }
}

/// `(x, y)` when `expr` is `x = y` (either way round) with `x` a column of side 0 and `y` one
/// of side 1: qualified by a side's alias, or unqualified and a column of one side only.
fn equated_columns(expr: &Expr, aliases: &[Option<String>; 2], columns: &[Vec<String>; 2]) -> Option<(String, String)> {
    let Expr::BinaryOp { left: l, op: BinaryOperator::Eq, right: r } = expr else { return None };
    let column = |e: &Expr| -> Option<(usize, String)> {
        let mut e = e;
        while let Expr::Nested(inner) = e {
            e = inner;
        }
        match e {
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let side = aliases
                    .iter()
                    .position(|alias| alias.as_ref().is_some_and(|a| a.eq_ignore_ascii_case(&parts[0].value)))?;
                Some((side, parts[1].value.clone()))
            }
            Expr::Identifier(name) => {
                let has = |side: usize| columns[side].iter().any(|c| c.eq_ignore_ascii_case(&name.value));
                match (has(0), has(1)) {
                    (true, false) => Some((0, name.value.clone())),
                    (false, true) => Some((1, name.value.clone())),
                    _ => None,
                }
            }
            _ => None,
        }
    };
    match (column(l)?, column(r)?) {
        ((0, a), (1, b)) | ((1, b), (0, a)) => Some((a, b)),
        _ => None,
    }
}

/// The names through which `map` (a co-partitioned join's map, its scans still placeholders) can
/// read columns of its relations: every word of its text, lowercased (identifiers, quoted or
/// not, wherever they stand: expressions, `USING`, window definitions; keywords too, which only
/// keeps more). `None` when the map can read a column without naming it, so that a stage 1
/// writing only the named columns could change the answer:
/// - a star anywhere: `*`, `t.*` with any modifier, `COLUMNS(..)`, a function over `*` other
///   than `count(*)` (`FROM t` alone is `SELECT *`);
/// - a whole row: a bare name that is also a relation's name or alias, or one of `relations`
///   (names the map's placeholders go by): `count(DISTINCT l)` and `to_json(l)` read every
///   column of `l` as a struct;
/// - a NATURAL join (it joins on the columns both sides have), PIVOT and UNPIVOT (PIVOT groups by
///   the columns it does not name);
/// - `#n`, a column by position.
///
/// The caller also binds the map over the named columns and compares its output with the
/// map over all of them; this reading only has to be sound, not complete.
pub fn named_columns(map: &Query, relations: &[&str]) -> Option<HashSet<String>> {
    struct Hazards {
        relations: HashSet<String>,
        found: bool,
    }
    impl Visitor for Hazards {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            fn selects<'a>(body: &'a SetExpr, out: &mut Vec<&'a Select>) {
                match body {
                    SetExpr::Select(select) => out.push(select),
                    SetExpr::SetOperation { left, right, .. } => {
                        selects(left, out);
                        selects(right, out);
                    }
                    _ => {}
                }
            }
            let mut found = Vec::new();
            selects(&query.body, &mut found);
            for select in found {
                if select.projection.is_empty() || select.projection.iter().any(super::is_star_item) {
                    self.found = true;
                }
                let joins = select.from.iter().flat_map(|twj| &twj.joins);
                if joins.into_iter().any(|join| natural(&join.join_operator)) {
                    self.found = true;
                }
            }
            self.stop()
        }
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            match factor {
                TableFactor::Pivot { .. } | TableFactor::Unpivot { .. } => self.found = true,
                TableFactor::NestedJoin { table_with_joins, .. }
                    if table_with_joins.joins.iter().any(|join| natural(&join.join_operator)) =>
                {
                    self.found = true
                }
                _ => {}
            }
            self.stop()
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => self.found = true,
                Expr::Identifier(ident) if self.relations.contains(&ident.value.to_ascii_lowercase()) => {
                    self.found = true
                }
                Expr::Function(f) => {
                    let name = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase());
                    let count = name.as_deref() == Some("count");
                    if name.as_deref() == Some("columns") {
                        self.found = true;
                    }
                    if let FunctionArguments::List(list) = &f.args {
                        let stars = list.args.iter().filter(|arg| {
                            matches!(
                                arg,
                                FunctionArg::Unnamed(FunctionArgExpr::Wildcard | FunctionArgExpr::QualifiedWildcard(_))
                                    | FunctionArg::Named {
                                        arg: FunctionArgExpr::Wildcard | FunctionArgExpr::QualifiedWildcard(_),
                                        ..
                                    }
                                    | FunctionArg::ExprNamed {
                                        arg: FunctionArgExpr::Wildcard | FunctionArgExpr::QualifiedWildcard(_),
                                        ..
                                    }
                            )
                        });
                        let star_count = stars.count();
                        let plain_count_star = count
                            && list.args.len() == 1
                            && matches!(list.args[0], FunctionArg::Unnamed(FunctionArgExpr::Wildcard));
                        if star_count > 0 && !plain_count_star {
                            self.found = true;
                        }
                    }
                }
                _ => {}
            }
            self.stop()
        }
    }
    impl Hazards {
        fn stop(&self) -> ControlFlow<()> {
            if self.found {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    struct Relations(HashSet<String>);
    impl Visitor for Relations {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            for cte in query.with.iter().flat_map(|with| &with.cte_tables) {
                self.0.insert(cte.alias.name.value.to_ascii_lowercase());
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            // A table function's name too: it is the relation's name when it has no alias.
            let (alias, name) = super::gate::factor_names(factor);
            for ident in alias.map(|a| &a.name).into_iter().chain(name.map(|(name, _)| name)) {
                self.0.insert(ident.value.to_ascii_lowercase());
            }
            ControlFlow::Continue(())
        }
    }
    fn natural(op: &JoinOperator) -> bool {
        matches!(keyed_constraint(op), Some(JoinConstraint::Natural))
    }
    let text = map.to_string();
    if text.contains('#') {
        return None;
    }
    let mut relations = Relations(relations.iter().map(|r| r.to_ascii_lowercase()).collect());
    let _ = Visit::visit(map, &mut relations);
    let mut hazards = Hazards { relations: relations.0, found: false };
    let _ = Visit::visit(map, &mut hazards);
    if hazards.found {
        return None;
    }
    let tokens = Tokenizer::new(&DuckDbDialect {}, &text).tokenize().ok()?;
    Some(
        tokens
            .into_iter()
            .filter_map(|token| match token {
                Token::Word(word) => Some(word.value.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sql: &str) -> Result<CoPartition, String> {
        let columns = ["k", "key", "d", "v", "id", "parent", "only_a"].map(String::from).to_vec();
        let mut of_b = columns.clone();
        of_b[6] = "only_b".into();
        co_partition(&super::super::parse_query(sql).unwrap(), &[columns, of_b])
    }

    const A: &str = "read_parquet('l/a/*/*.parquet', hive_partitioning = true)";
    const B: &str = "read_parquet('l/b/*/*.parquet', hive_partitioning = true)";

    #[test]
    fn finds_the_keys_of_a_direct_equi_join() {
        let p = plan(&format!(
            "SELECT count(*) FROM {A} AS x LEFT JOIN {B} y ON (y.k = x.key) AND x.d = y.d AND x.v > 1 GROUP BY x.d"
        ))
        .unwrap();
        assert_eq!(p.sides[0], Side { alias: Some("x".into()), keys: vec!["key".into(), "d".into()] });
        assert_eq!(p.sides[1], Side { alias: Some("y".into()), keys: vec!["k".into(), "d".into()] });
        let using = plan(&format!("SELECT * FROM {A} FULL JOIN {B} USING (k, d)")).unwrap();
        assert_eq!(using.sides[0].keys, ["k", "d"]);
        assert_eq!(using.sides[1].alias, None);
        let self_join = plan(&format!("SELECT * FROM {A} a JOIN {A} b ON a.id = b.parent")).unwrap();
        assert_eq!(self_join.sides[1].keys, ["parent"]);
        assert!(plan(&format!("SELECT * FROM {A} a SEMI JOIN {B} b ON a.k = b.k")).is_ok());
        // Unqualified: a name of one side only is that side's.
        let p = plan(&format!("SELECT * FROM {A} JOIN {B} b ON only_b = only_a AND k = b.k")).unwrap();
        assert_eq!(p.sides[0].keys, ["only_a"]);
        assert_eq!(p.sides[1].keys, ["only_b"]);
    }

    #[test]
    fn names_the_columns_a_map_reads_or_says_it_cannot() {
        let named = |sql: &str| {
            let query = super::super::parse_query(sql).unwrap();
            named_columns(&query, &["read_parquet"]).map(|names| {
                let mut wanted: Vec<&str> =
                    ["k", "v", "w", "d", "only_b"].into_iter().filter(|c| names.contains(*c)).collect();
                wanted.sort_unstable();
                wanted
            })
        };
        // Names anywhere count, quoted or not, in any case: select list, ON, USING, windows,
        // ORDER BY, a correlated subquery.
        assert_eq!(named(&format!("SELECT sum(a.\"V\") FROM {A} a JOIN {B} b ON a.k = b.k")), Some(vec!["k", "v"]));
        assert_eq!(
            named(&format!(
                "SELECT count(*), max(w) OVER win FROM {A} JOIN {B} USING (k) WINDOW win AS (ORDER BY d) \
                 ORDER BY (SELECT only_b)"
            )),
            Some(vec!["d", "k", "only_b", "w"])
        );
        // Reading columns it does not name: no pruning.
        for sql in [
            format!("SELECT * FROM {A} a JOIN {B} b ON a.k = b.k"),
            format!("SELECT a.* EXCLUDE (v) FROM {A} a JOIN {B} b ON a.k = b.k"),
            format!("SELECT count(*) FROM (SELECT DISTINCT * FROM {A} a JOIN {B} b ON a.k = b.k)"),
            format!("SELECT max(COLUMNS(*)) FROM {A} a JOIN {B} b ON a.k = b.k"),
            format!("SELECT count(DISTINCT a) FROM {A} a JOIN {B} b ON a.k = b.k"),
            format!("SELECT to_json(read_parquet) FROM {A} JOIN {B} b ON k = b.k"),
            format!("SELECT hash(*) FROM {A} a JOIN {B} b ON a.k = b.k"),
            format!("SELECT count(*) FROM {A} a JOIN {B} b ON a.k = b.k NATURAL JOIN {B} c"),
            format!("SELECT count(*) FROM {A} a JOIN ({B} b NATURAL JOIN {B} c) ON a.k = b.k"),
        ] {
            assert_eq!(named(&sql), None, "{sql}");
        }
        // count(*) reads no column.
        assert_eq!(named(&format!("SELECT count(*) FROM {A} a JOIN {B} b ON a.k = b.k")), Some(vec!["k"]));
    }

    #[test]
    fn a_cte_that_is_a_scan_used_twice_becomes_two_scans() {
        let inline = |sql: &str| {
            let mut q = super::super::parse_query(sql).unwrap();
            inline_scan_ctes(&mut q);
            q.to_string()
        };
        assert_eq!(
            inline(&format!("WITH l AS (SELECT * FROM {A}) SELECT * FROM l AS a JOIN l ON a.k = l.k")),
            format!("SELECT * FROM {A} AS a JOIN {A} AS \"l\" ON a.k = l.k")
        );
        // Kept: used once, not exactly a scan, a column list, shadowed in a nested WITH.
        for sql in [
            format!("WITH l AS (SELECT * FROM {A}) SELECT * FROM l"),
            format!("WITH l AS (SELECT * FROM {A} WHERE k > 1) SELECT * FROM l a JOIN l b ON a.k = b.k"),
            format!("WITH l AS (SELECT k FROM {A}) SELECT * FROM l a JOIN l b ON a.k = b.k"),
            format!("WITH l AS (SELECT DISTINCT * FROM {A}) SELECT * FROM l a JOIN l b ON a.k = b.k"),
            format!("WITH l(x) AS (SELECT * FROM {A}) SELECT * FROM l a JOIN l b ON a.x = b.x"),
            format!("WITH l AS (SELECT * FROM {A}) SELECT * FROM l a JOIN (WITH l AS (SELECT 1 AS k) SELECT * FROM l) b ON a.k = b.k"),
        ] {
            assert_eq!(inline(&sql), super::super::parse_query(&sql).unwrap().to_string(), "{sql}");
        }
    }

    #[test]
    fn refuses_joins_that_do_not_partition_on_keys() {
        for (sql, why) in [
            (format!("SELECT * FROM {A} a JOIN {B} b ON a.k < b.k"), "no equality"),
            (format!("SELECT * FROM {A} a JOIN {B} b ON a.k = b.k OR a.j = b.j"), "no equality"),
            (format!("SELECT * FROM {A} a, {B} b WHERE a.k = b.k"), "not joined to each other directly"),
            (format!("SELECT * FROM {A} a CROSS JOIN {B} b"), "not joined by"),
            (format!("SELECT * FROM {A} a NATURAL JOIN {B} b"), "not joined by"),
            (format!("SELECT * FROM {A} a JOIN {B} b(x, y) ON a.k = b.x"), "renames its columns"),
            (format!("SELECT * FROM {A} JOIN {B} b ON k = b.k"), "no equality"),
            (format!("SELECT * FROM {A} a JOIN {B} b ON only_a = a.k"), "no equality"),
            (format!("SELECT * FROM {A} a JOIN {B} b ON a.k = c.k"), "no equality"),
            (format!("SELECT * FROM {A} a JOIN {B} A ON a.k = A.k"), "same alias"),
            (format!("SELECT * FROM {A} a JOIN (SELECT * FROM {B}) b ON a.k = b.k"), "not joined to each other"),
            (format!("SELECT * FROM {A} a JOIN {A} b ON a.k = b.k JOIN {B} c ON c.k = a.k"), "not two"),
        ] {
            let error = plan(&sql).unwrap_err();
            assert!(error.contains(why), "{sql}: {error}");
        }
    }
}
