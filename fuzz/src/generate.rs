//! Random, deterministic queries over the fuzz lake ([`crate::lake`]), in the spirit of SQLsmith:
//! each query is valid far more often than not and, when DuckDB accepts it, has one answer
//! (every LIMIT follows an ORDER BY that is a total order; no order-sensitive aggregate without
//! its own ORDER BY). The shapes cover what the rewriter splits and what it must decline:
//! aggregates with every GROUP BY form (ordinals, aliases, ALL, ROLLUP, CUBE, GROUPING SETS),
//! FILTER, DISTINCT aggregates, HAVING, QUALIFY, windows (also only in ORDER BY), ORDER BY with
//! ordinals, aliases and expressions, LIMIT/OFFSET, star expressions (`* EXCLUDE`, `* REPLACE`,
//! `COLUMNS`), DISTINCT and DISTINCT ON, joins with the dimension table, derived tables, CTEs
//! (also shadowed by a nested WITH), UNION, IN and scalar subqueries, samples, aggregating
//! macros, partition-column predicates, aliases that shadow columns or look like the
//! rewriter's internal names, and quoted mixed-case names.

use crate::lake::{FuzzLake, Kind, DIM_COLUMNS, FACT_COLUMNS};

/// A query generator for one lake and seed.
pub struct Generator {
    rng: fastrand::Rng,
    /// The fact table scan of the query being generated.
    fact: String,
    /// The fact table scan with the first file's schema, and with `union_by_name`.
    facts: [String; 2],
    dim: String,
}

/// Where a block reads its rows from.
struct Source {
    /// CTE definitions the source needs (`name AS (...)`).
    with: Option<String>,
    from: String,
    columns: Vec<(String, Kind)>,
    /// A unique, non-NULL row key: the last ORDER BY key that makes an order total.
    row_key: String,
    /// Whether a star expands to columns with unambiguous names (not a join).
    single: bool,
}

/// One select item: its SQL and whether it aggregates.
struct Item {
    sql: String,
    alias: Option<String>,
}

impl Item {
    fn render(&self) -> String {
        match &self.alias {
            Some(alias) => format!("{} AS {alias}", self.sql),
            None => self.sql.clone(),
        }
    }
}

/// Whether an aggregate's value may differ in its last bits with the order partials merge in:
/// float arithmetic over many rows (the typed calls, `::`, are exact or not numeric).
fn noisy(sql: &str) -> bool {
    const FLOAT_PRONE: [&str; 8] =
        ["sum(", "avg(", "stddev", "var", "median(", "quantile_cont(", "geomean(", "weighted_avg("];
    FLOAT_PRONE.iter().any(|f| sql.starts_with(f)) && !sql.contains("::")
}

/// Whether `alias` names one item only and no column, as DuckDB compares names
/// (case-insensitively, quoted or not): `total` and `"Total"` are the same name, and inside an
/// ORDER BY expression DuckDB binds a name to a column before an alias (`sum(a) AS p` and
/// `CAST(p AS FLOAT)` orders by the column `p`).
fn unique_alias(alias: &str, items: &[&Item]) -> bool {
    let name = |a: &str| a.trim_matches('"').to_lowercase();
    let column = FACT_COLUMNS.iter().chain(DIM_COLUMNS).any(|(c, _)| name(c) == name(alias));
    !column && items.iter().filter(|item| item.alias.as_deref().is_some_and(|a| name(a) == name(alias))).count() == 1
}

/// Whether `sql` is a bare name that some item's alias also names (up to case and quotes).
fn shadowed_by_alias(sql: &str, items: &[&Item]) -> bool {
    let name = |a: &str| a.trim_matches('"').to_lowercase();
    let bare = !sql.is_empty() && sql.trim_matches('"').chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    bare && items.iter().any(|item| item.alias.as_deref().is_some_and(|a| name(a) == name(sql)))
}

/// The fact table's columns, qualified by `qualifier` when given.
fn fact_columns(qualifier: Option<&str>) -> Vec<(String, Kind)> {
    FACT_COLUMNS
        .iter()
        .map(|(c, k)| (qualifier.map(|q| format!("{q}.{c}")).unwrap_or_else(|| c.to_string()), *k))
        .collect()
}

const ALIASES: &[&str] = &[
    "n",
    "total",
    "x1",
    "\"Total\"",
    "a",
    "b",
    "s",
    "p",
    "q",
    "id",
    "name",
    "k0",
    "k1",
    "r0",
    "r1",
    "d0",
    "a0",
    "a0_s",
    "a1_n",
    "c0",
    "w",
];

impl Generator {
    pub fn new(seed: u64, lake: &FuzzLake) -> Self {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            fact: lake.fact(false),
            facts: [lake.fact(false), lake.fact(true)],
            dim: lake.dim(),
        }
    }

    /// The next query.
    pub fn query(&mut self) -> String {
        self.fact = self.facts[usize::from(self.chance(20))].clone();
        match self.rng.u32(0..100) {
            0..=34 => {
                let source = self.source();
                self.aggregate(&source)
            }
            35..=59 => {
                let source = self.source();
                self.rows(&source)
            }
            60..=67 => {
                let source = self.source();
                self.distinct(&source)
            }
            68..=77 => {
                let source = self.source();
                self.window(&source)
            }
            _ => self.composite(),
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(0..items.len())]
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.u32(0..100) < percent
    }

    fn source(&mut self) -> Source {
        match self.rng.u32(0..100) {
            0..=39 => self.plain_source(),
            40..=54 => {
                let mut columns = fact_columns(Some("t"));
                columns.extend(fact_columns(None).into_iter().filter(|_| self.rng.bool()));
                Source {
                    with: None,
                    from: format!("{} AS t", self.fact),
                    columns,
                    row_key: "t.id".into(),
                    single: true,
                }
            }
            55..=74 => {
                let kind = *self.pick(&["JOIN", "LEFT JOIN", "INNER JOIN"]);
                let mut columns: Vec<(String, Kind)> = fact_columns(Some("t"))
                    .into_iter()
                    .chain(DIM_COLUMNS.iter().map(|(c, k)| (format!("d.{c}"), *k)))
                    .collect();
                columns.extend([("name".to_string(), Kind::Text), ("w".to_string(), Kind::Number)]);
                Source {
                    with: None,
                    from: format!("{} t {kind} {} d ON t.a = d.a", self.fact, self.dim),
                    columns,
                    row_key: "t.id".into(),
                    single: false,
                }
            }
            75..=87 => {
                let filter = self.plain_predicate();
                Source {
                    with: None,
                    from: format!("(SELECT * FROM {} WHERE {filter}) AS sub", self.fact),
                    columns: fact_columns(None),
                    row_key: "id".into(),
                    single: true,
                }
            }
            _ => {
                let filter = self.plain_predicate();
                Source {
                    with: Some(format!("base AS (SELECT * FROM {} WHERE {filter})", self.fact)),
                    from: "base".into(),
                    columns: fact_columns(None),
                    row_key: "id".into(),
                    single: true,
                }
            }
        }
    }

    fn plain_source(&self) -> Source {
        Source { with: None, from: self.fact.clone(), columns: fact_columns(None), row_key: "id".into(), single: true }
    }

    /// A predicate over the fact table's unqualified columns.
    fn plain_predicate(&mut self) -> String {
        let source = self.plain_source();
        self.predicate(&source, 1)
    }

    fn column(&mut self, source: &Source, kind: Option<Kind>) -> String {
        let candidates: Vec<&(String, Kind)> =
            source.columns.iter().filter(|(_, k)| kind.is_none_or(|want| *k == want)).collect();
        self.pick(&candidates).0.clone()
    }

    fn number(&mut self, source: &Source, depth: u32) -> String {
        if depth == 0 || self.chance(45) {
            return if self.chance(85) {
                self.column(source, Some(Kind::Number))
            } else {
                self.pick(&["1", "2", "-3", "0.5", "10", "NULL::INTEGER"]).to_string()
            };
        }
        let (x, y) = (self.number(source, depth - 1), self.number(source, depth - 1));
        match self.rng.u32(0..10) {
            // The session's time zone decides which hour a TIMESTAMP is in as a TIMESTAMPTZ.
            9 => format!("extract(hour FROM {}::TIMESTAMPTZ)", self.column(source, Some(Kind::Time))),
            0 => format!("({x} + {y})"),
            1 => format!("({x} - {y})"),
            2 => format!("({x} * 2)"),
            3 => format!("abs({x})"),
            4 => format!("coalesce({x}, 0)"),
            5 => format!("({x} % 3)"),
            6 => format!("CASE WHEN {} THEN {x} ELSE {y} END", self.predicate(source, 0)),
            7 => format!("length({})", self.text(source, 0)),
            _ => format!("extract(hour FROM {})", self.column(source, Some(Kind::Time))),
        }
    }

    fn text(&mut self, source: &Source, depth: u32) -> String {
        if depth == 0 || self.chance(50) {
            return if self.chance(85) { self.column(source, Some(Kind::Text)) } else { "'a'".to_string() };
        }
        let x = self.text(source, depth - 1);
        match self.rng.u32(0..6) {
            5 => format!("strftime({}::TIMESTAMPTZ, '%Y-%m-%d %H:%M %z')", self.column(source, Some(Kind::Time))),
            0 => format!("lower({x})"),
            1 => format!("upper({x})"),
            2 => format!("({x} || '-')"),
            3 => format!("coalesce({x}, 'none')"),
            _ => format!("strftime({}, '%Y-%m-%d')", self.column(source, Some(Kind::Time))),
        }
    }

    fn predicate(&mut self, source: &Source, depth: u32) -> String {
        let simple = match self.rng.u32(0..10) {
            0 | 1 => {
                let op = *self.pick(&["<", ">", "=", "<>", ">=", "<="]);
                format!("{} {op} {}", self.number(source, 1), self.pick(&["1", "3", "5", "50", "2.5"]))
            }
            2 => format!("{} IS NULL", self.column(source, None)),
            3 => format!("{} IS NOT NULL", self.column(source, None)),
            4 => format!("{} IN ('a', 'B', 'x', 'zone 3')", self.text(source, 1)),
            5 => {
                let p = self.column_named(source, "p");
                format!("{p} {} {}", self.pick(&["=", "<>", ">", "<=", "IN (1, 3) AND 1 ="]), self.rng.u32(1..5))
            }
            6 => format!("{} = '{}'", self.column_named(source, "q"), self.pick(&["x", "Y", "y"])),
            7 => self.column(source, Some(Kind::Bool)),
            8 => format!("{} BETWEEN 2 AND 7", self.number(source, 0)),
            _ => format!("{} >= TIMESTAMP '2024-03-10'", self.column(source, Some(Kind::Time))),
        };
        if depth == 0 || self.chance(60) {
            return simple;
        }
        let other = self.predicate(source, depth - 1);
        match self.rng.u32(0..3) {
            0 => format!("({simple} AND {other})"),
            1 => format!("({simple} OR {other})"),
            _ => format!("NOT ({simple})"),
        }
    }

    /// `name` as this source spells it (qualified when the source qualifies everything).
    fn column_named(&mut self, source: &Source, name: &str) -> String {
        let candidates: Vec<&(String, Kind)> =
            source.columns.iter().filter(|(c, _)| c == name || c.ends_with(&format!(".{name}"))).collect();
        if candidates.is_empty() {
            name.to_string()
        } else {
            self.pick(&candidates).0.clone()
        }
    }

    fn any_value(&mut self, source: &Source) -> String {
        match self.rng.u32(0..4) {
            0 => self.text(source, 1),
            1 => self.column(source, None),
            _ => self.number(source, 1),
        }
    }

    /// A value of a type that Arrow cannot carry exactly (BIT, ENUM, HUGEINT past 38 digits,
    /// UHUGEINT, BIGNUM) or that loses its offset easily (TIMETZ); aggregated when `aggregate`.
    fn typed(&mut self, source: &Source, aggregate: bool) -> String {
        let a = self.column_named(source, "a");
        let s = self.column_named(source, "s");
        let ts = self.column(source, Some(Kind::Time));
        let value = match self.rng.u32(0..6) {
            0 => format!("{a}::BIT"),
            1 => format!("{s}::ENUM('a', 'B', 'c', 'd d', 'Ünï')"),
            2 => format!("{a}::HUGEINT * 30000000000000000000000000000000000"),
            3 => format!("abs({a})::UHUGEINT * 30000000000000000000000000000000000000"),
            4 => format!("('1' || repeat('7', 40 + coalesce({a}, 0)))::BIGNUM"),
            _ => format!("(strftime({ts}, '%H:%M:%S') || '+05:30')::TIMETZ"),
        };
        if !aggregate {
            return value;
        }
        if value.contains("HUGEINT *") && !value.contains("UHUGEINT") && self.rng.bool() {
            format!("sum({value})") // partial sums past 38 digits
        } else {
            format!("{}({value})", self.pick(&["min", "max"]))
        }
    }

    fn aggregate_call(&mut self, source: &Source) -> String {
        let filter = |g: &mut Self| {
            if g.chance(15) {
                format!(" FILTER (WHERE {})", g.predicate(source, 0))
            } else {
                String::new()
            }
        };
        let n = self.number(source, 1);
        let call = match self.rng.u32(0..23) {
            0 => "count(*)".to_string(),
            1 => format!("count({})", self.column(source, None)),
            2 | 3 => format!("sum({n})"),
            4 => format!("avg({n})"),
            5 => format!("min({})", self.any_value(source)),
            6 => format!("max({})", self.any_value(source)),
            7 => format!("count(DISTINCT {})", self.any_value(source)),
            8 => format!("sum(DISTINCT {n})"),
            9 => format!("{}({n})", self.pick(&["stddev_samp", "var_pop", "stddev", "variance", "var_samp"])),
            10 => format!("bool_and({})", self.predicate(source, 0)),
            11 => format!("bool_or({})", self.predicate(source, 0)),
            12 => format!("median({n})"),
            13 => format!("quantile_cont({n}, 0.25)"),
            14 => {
                let t = self.text(source, 0);
                format!("string_agg({t}, ',' ORDER BY {t})")
            }
            15 => format!("geomean(abs({n}) + 1)"),
            16 => format!("weighted_avg({n}, abs({}) + 1)", self.number(source, 0)),
            17 => format!("count_if({})", self.predicate(source, 0)),
            18 => format!("avg(DISTINCT {n})"),
            19 => format!("max({}) - min({})", n, n),
            // Not rounded: rounding a float sum turns the last bit of merge-order noise into a
            // different fourth decimal (a false mismatch at seed 11); the judge has a tolerance.
            20 => format!("sum({n}) / nullif(count(*), 0)"),
            21 => self.typed(source, true),
            _ => format!("list({n} ORDER BY {n})"),
        };
        let plain = call.starts_with("count(") || call.starts_with("sum(") || call.starts_with("min(");
        if plain && !call.contains(" - ") && !call.contains("DISTINCT") {
            let f = filter(self);
            format!("{call}{f}")
        } else {
            call
        }
    }

    fn alias(&mut self, used: &mut Vec<String>) -> Option<String> {
        if self.chance(40) {
            return None;
        }
        let candidate = if self.chance(2) { "__quack_k0".to_string() } else { self.pick(ALIASES).to_string() };
        if used.iter().any(|u| u.eq_ignore_ascii_case(&candidate)) {
            return None;
        }
        used.push(candidate.clone());
        Some(candidate)
    }

    fn with_prefix(source: &Source, body: String) -> String {
        match &source.with {
            Some(cte) => format!("WITH {cte} {body}"),
            None => body,
        }
    }

    fn limit(&mut self) -> String {
        match self.rng.u32(0..4) {
            0 => format!(" LIMIT {}", self.rng.u32(1..12)),
            1 => format!(" LIMIT {} OFFSET {}", self.rng.u32(1..12), self.rng.u32(0..9)),
            _ => String::new(),
        }
    }

    fn direction(&mut self) -> &'static str {
        const DIRECTIONS: [&str; 4] = ["", " DESC", " ASC NULLS FIRST", " DESC NULLS LAST"];
        DIRECTIONS[self.rng.usize(0..DIRECTIONS.len())]
    }

    /// A grouped query over `source`.
    fn aggregate(&mut self, source: &Source) -> String {
        let mut used = Vec::new();
        let key_count = self.rng.usize(0..4);
        let mut keys: Vec<Item> = Vec::new();
        for _ in 0..key_count {
            let sql = match self.rng.u32(0..8) {
                0 => self.text(source, 1),
                1 => format!("date_trunc('day', {})", self.column(source, Some(Kind::Time))),
                // Time zones (ICU): a day boundary and the text of a TIMESTAMPTZ are the session's.
                6 => format!("date_trunc('day', {}::TIMESTAMPTZ)", self.column(source, Some(Kind::Time))),
                7 => format!("{}::TIMESTAMPTZ", self.column(source, Some(Kind::Time))),
                2 => self.column_named(source, "p"),
                _ => self.column(source, None),
            };
            let alias = self.alias(&mut used);
            keys.push(Item { sql, alias });
        }
        let aggregate_count = self.rng.usize(1..4);
        let mut aggregates: Vec<Item> = Vec::new();
        for _ in 0..aggregate_count {
            let sql = self.aggregate_call(source);
            let alias = self.alias(&mut used);
            aggregates.push(Item { sql, alias });
        }
        let mut items: Vec<&Item> = keys.iter().chain(aggregates.iter()).collect();
        if !keys.is_empty() && self.chance(40) {
            self.rng.shuffle(&mut items);
        }
        let mut select: Vec<String> = items.iter().map(|i| i.render()).collect();
        let window = !keys.is_empty() && self.chance(10);
        if window {
            // Ranks over exact values only: a float aggregate merged in another order may break
            // a tie differently, and that is not a wrong answer.
            select.push("rank() OVER (ORDER BY count(*) DESC) AS rk".to_string());
        }
        let position = |sql: &str| items.iter().position(|i| i.sql == sql).map(|p| p + 1).unwrap_or(1);
        let group_by = if keys.is_empty() {
            String::new()
        } else {
            let forms: Vec<String> = keys
                .iter()
                .map(|k| match self.rng.u32(0..3) {
                    0 => position(&k.sql).to_string(),
                    1 if k.alias.is_some() => k.alias.clone().unwrap_or_default(),
                    _ => k.sql.clone(),
                })
                .collect();
            match self.rng.u32(0..10) {
                0 | 1 => " GROUP BY ALL".to_string(),
                2 => format!(" GROUP BY ROLLUP ({})", forms.join(", ")),
                3 => format!(" GROUP BY CUBE ({})", forms.join(", ")),
                4 => format!(" GROUP BY GROUPING SETS (({}), ())", forms.join(", ")),
                _ => format!(" GROUP BY {}", forms.join(", ")),
            }
        };
        let filter = if self.chance(50) { format!(" WHERE {}", self.predicate(source, 2)) } else { String::new() };
        let having = if self.chance(25) {
            match aggregates.iter().find(|a| a.alias.is_some()).filter(|_| self.rng.bool()) {
                Some(a) => format!(" HAVING {} IS NOT NULL", a.alias.clone().unwrap_or_default()),
                None => format!(" HAVING count(*) > {}", self.rng.u32(0..40)),
            }
        } else {
            String::new()
        };
        let qualify = if !keys.is_empty() && self.chance(8) {
            format!(" QUALIFY rank() OVER (ORDER BY count(*) DESC) <= {}", self.rng.u32(1..6))
        } else {
            String::new()
        };
        let columns = select.len();
        let order = if self.chance(70) {
            let mut order_keys = Vec::new();
            // The leading key is a group key or a count: exact values, so ties are the same.
            let exact: Vec<&Item> = items
                .iter()
                .copied()
                .filter(|i| keys.iter().any(|k| std::ptr::eq(k, *i)) || i.sql.starts_with("count("))
                .collect();
            if !exact.is_empty() && self.chance(50) {
                let item = exact[self.rng.usize(0..exact.len())];
                let form = match (&item.alias, self.rng.u32(0..3)) {
                    (Some(alias), 0) => alias.clone(),
                    // A bare column that another item's alias names would order by that alias
                    // (DuckDB binds a top-level ORDER BY name to an alias first): the ordinal
                    // says what is meant (seed 17: `p AS r1, geomean(..) AS p ... ORDER BY p`).
                    (_, 1) if !shadowed_by_alias(&item.sql, &items) => item.sql.clone(),
                    _ => position(&item.sql).to_string(),
                };
                let direction = self.direction();
                order_keys.push(format!("{form}{direction}"));
            }
            // Then every column, exact ones (keys, counts) first: a float merged in another order
            // may differ in its last bits and must not decide the order of the rows.
            let mut ordinals: Vec<usize> = (1..=columns).collect();
            ordinals.sort_by_key(|&i| {
                let exact = items
                    .get(i - 1)
                    .is_some_and(|item| keys.iter().any(|k| std::ptr::eq(k, *item)) || item.sql.starts_with("count("));
                !exact
            });
            // A float aggregate (a sum of doubles, avg, geomean, ...) differs in its last bits with the
            // merge order, and so may decide between two rows either way: it orders as a FLOAT
            // (7 significant digits, a relative rounding), so that the next key decides instead.
            for i in ordinals {
                let form = match items.get(i - 1) {
                    Some(item) if noisy(&item.sql) => match &item.alias {
                        // Only an alias no other item shares up to case: DuckDB matches aliases
                        // case-insensitively, quoted or not, and may take the other one.
                        Some(alias) if self.rng.bool() && unique_alias(alias, &items) => {
                            format!("CAST({alias} AS FLOAT)")
                        }
                        _ => format!("CAST({} AS FLOAT)", item.sql),
                    },
                    _ => i.to_string(),
                };
                order_keys.push(format!("{form}{}", if self.chance(20) { " DESC" } else { "" }));
            }
            format!(" ORDER BY {}{}", order_keys.join(", "), self.limit())
        } else {
            String::new()
        };
        let body =
            format!("SELECT {} FROM {}{filter}{group_by}{having}{qualify}{order}", select.join(", "), source.from);
        Self::with_prefix(source, body)
    }

    /// A projection of rows, ordered by a total order when limited.
    fn rows(&mut self, source: &Source) -> String {
        // The row key stays the row key: an alias `id` would make `ORDER BY id` mean the alias.
        let mut used = vec!["id".to_string()];
        let mut items: Vec<String> = Vec::new();
        let mut plain_items: Vec<Item> = Vec::new();
        let mut star = false;
        if source.single && self.chance(30) {
            star = true;
            let prefix = if source.from.ends_with(" AS t") && self.rng.bool() { "t." } else { "" };
            items.push(match self.rng.u32(0..6) {
                0 => format!("{prefix}* EXCLUDE (s)"),
                1 => format!("{prefix}* REPLACE (-a AS a)"),
                2 => "COLUMNS('^[ab]$')".to_string(),
                3 => "COLUMNS('^(a|b)$') + 1".to_string(),
                _ => format!("{prefix}*"),
            });
        }
        for _ in 0..self.rng.usize(usize::from(!star)..4) {
            let sql = match self.rng.u32(0..7) {
                0 | 1 => self.column(source, None),
                2 | 3 => self.number(source, 2),
                4 => self.typed(source, false),
                _ => self.text(source, 1),
            };
            let alias = self.alias(&mut used);
            let item = Item { sql, alias };
            items.push(item.render());
            plain_items.push(item);
        }
        let filter = if self.chance(60) { format!(" WHERE {}", self.predicate(source, 2)) } else { String::new() };
        let order = if self.chance(75) {
            let mut keys = Vec::new();
            for _ in 0..self.rng.usize(0..3) {
                let form = match self.rng.u32(0..6) {
                    0 if !plain_items.is_empty() => {
                        let i = self.rng.usize(0..plain_items.len());
                        plain_items[i].alias.clone().unwrap_or_else(|| plain_items[i].sql.clone())
                    }
                    1 => self.rng.usize(1..=items.len()).to_string(),
                    2 => format!(
                        "row_number() OVER (ORDER BY {} DESC NULLS LAST, {})",
                        self.number(source, 0),
                        source.row_key
                    ),
                    3 if !plain_items.is_empty() => {
                        let i = self.rng.usize(0..plain_items.len());
                        match &plain_items[i].alias {
                            Some(alias) => format!("{alias} || ''"),
                            None => self.number(source, 1),
                        }
                    }
                    _ => self.number(source, 1),
                };
                let direction = self.direction();
                keys.push(format!("{form}{direction}"));
            }
            keys.push(source.row_key.clone());
            format!(" ORDER BY {}{}", keys.join(", "), self.limit())
        } else {
            String::new()
        };
        let body = format!("SELECT {} FROM {}{filter}{order}", items.join(", "), source.from);
        Self::with_prefix(source, body)
    }

    fn distinct(&mut self, source: &Source) -> String {
        let filter = if self.chance(50) { format!(" WHERE {}", self.predicate(source, 1)) } else { String::new() };
        let body = if self.chance(60) {
            let keys: Vec<String> = (0..self.rng.usize(1..3)).map(|_| self.column(source, None)).collect();
            format!("SELECT DISTINCT {} FROM {}{filter} ORDER BY ALL{}", keys.join(", "), source.from, self.limit())
        } else {
            let key = self.column(source, None);
            let value = self.number(source, 1);
            format!(
                "SELECT DISTINCT ON ({key}) {key}, {row}, {value} AS v FROM {}{filter} ORDER BY {key}, {row}{}",
                source.from,
                self.limit(),
                row = source.row_key
            )
        };
        Self::with_prefix(source, body)
    }

    fn window(&mut self, source: &Source) -> String {
        let key = self.column(source, None);
        let row = source.row_key.clone();
        let n = self.number(source, 1);
        let window = match self.rng.u32(0..5) {
            0 => format!("sum({n}) OVER (PARTITION BY {key} ORDER BY {row})"),
            1 => format!("row_number() OVER (PARTITION BY {key} ORDER BY {row})"),
            2 => format!("lag({n}) OVER (ORDER BY {row})"),
            3 => "count(*) OVER ()".to_string(),
            _ => format!("max({n}) OVER (PARTITION BY {key})"),
        };
        let filter = if self.chance(40) { format!(" WHERE {}", self.predicate(source, 1)) } else { String::new() };
        let qualify = if self.chance(30) {
            format!(" QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {row}) <= 2")
        } else {
            String::new()
        };
        let body = format!(
            "SELECT {row}, {key}, {window} AS win FROM {}{filter}{qualify} ORDER BY {row}{}",
            source.from,
            self.limit()
        );
        Self::with_prefix(source, body)
    }

    /// Queries that nest the fact table inside another construct.
    fn composite(&mut self) -> String {
        let plain = self.plain_source();
        let filter = self.predicate(&plain, 1);
        match self.rng.u32(0..9) {
            0 => {
                let inner = if self.rng.bool() { self.aggregate(&plain) } else { self.rows(&plain) };
                format!("SELECT count(*) AS n FROM ({inner}) AS sub")
            }
            1 => {
                let inner = self.aggregate(&plain);
                if inner.starts_with("WITH") {
                    format!("SELECT count(*) AS n FROM ({inner}) AS sub")
                } else {
                    format!("WITH c AS ({inner}) SELECT * FROM c")
                }
            }
            2 => {
                let (x, y) = (self.predicate(&plain, 1), self.predicate(&plain, 1));
                let op = *self.pick(&["UNION ALL", "UNION", "EXCEPT", "INTERSECT"]);
                format!(
                    "SELECT a, s FROM {f} WHERE {x} {op} SELECT a, s FROM {f} WHERE {y} ORDER BY ALL{}",
                    self.limit(),
                    f = self.fact
                )
            }
            3 => format!(
                "SELECT count(*) AS n, sum(w) AS w FROM {} WHERE a IN (SELECT a FROM {} WHERE {filter})",
                self.dim, self.fact
            ),
            4 => format!("SELECT (SELECT max(b) FROM {} WHERE {filter}) AS m, 1 AS one", self.fact),
            5 => format!(
                "WITH c AS (SELECT * FROM {} WHERE {filter}) \
                 SELECT (WITH c AS (SELECT 1 AS a) SELECT count(*) FROM c) AS inner_n, count(*) AS n, sum(a) AS s FROM c",
                self.fact
            ),
            6 => {
                let k = self.rng.u32(1..30);
                if self.rng.bool() {
                    format!("SELECT count(*) AS n FROM (SELECT * FROM {} USING SAMPLE {k} ROWS)", self.fact)
                } else {
                    format!("SELECT count(*) AS n FROM {} TABLESAMPLE {k} ROWS", self.fact)
                }
            }
            7 => format!(
                "SELECT p, count(*) AS n FROM (SELECT a, p FROM {} WHERE {filter}) AS sub GROUP BY p ORDER BY p",
                self.fact
            ),
            _ => {
                let qualified = Source {
                    columns: fact_columns(Some("t")),
                    ..plain
                };
                let on = self.predicate(&qualified, 1);
                format!(
                    "SELECT d.name, count(t.id) AS n FROM {} d LEFT JOIN {} t ON t.a = d.a AND {on} GROUP BY 1 ORDER BY 1",
                    self.dim, self.fact
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the long run (seed 15): `ORDER BY ..., CAST(total AS FLOAT)` with both `total`
    /// and `"Total"` in the select list orders by `"Total"` in DuckDB, so the order was not
    /// total and the judge compared rows that tie. Such an alias is not used as an order key.
    #[test]
    fn an_alias_shared_up_to_case_is_not_unique() {
        let item = |sql: &str, alias: &str| Item { sql: sql.into(), alias: Some(alias.into()) };
        let (total, upper, n) = (item("sum(x)", "total"), item("a", "\"Total\""), item("count(*)", "n"));
        assert!(!unique_alias("total", &[&total, &upper, &n]));
        assert!(unique_alias("total", &[&total, &n]));
        assert!(unique_alias("n", &[&total, &upper, &n]));
        // Found by seed 16: `sum(t.a) AS p` shares its name with the partition column `p`.
        let p = item("sum(t.a)", "p");
        assert!(!unique_alias("p", &[&p, &n]));
    }

    /// Found by seed 17: `p AS r1, geomean(..) AS p ... ORDER BY p` orders by the alias, a float
    /// aggregate, in DuckDB; the generator meant the column and now writes its ordinal.
    #[test]
    fn a_bare_column_named_by_an_alias_is_shadowed() {
        let item = |sql: &str, alias: Option<&str>| Item { sql: sql.into(), alias: alias.map(Into::into) };
        let (column, mean) = (item("p", Some("r1")), item("geomean(t.b)", Some("\"P\"")));
        assert!(shadowed_by_alias("p", &[&column, &mean]));
        assert!(!shadowed_by_alias("t.p", &[&column, &mean]));
        assert!(!shadowed_by_alias("p", &[&column]));
        assert!(!shadowed_by_alias("lower(p)", &[&column, &mean]));
    }
}
