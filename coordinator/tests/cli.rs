//! The `quack` binary: CSV with a header on stdout, errors on stderr with a non-zero exit,
//! `explain` output.

mod common;

use std::process::Command;

use common::lake;

fn quack(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quack")).args(args).output().expect("quack runs")
}

#[test]
fn query_prints_csv_with_a_header() {
    let sql = format!(
        "SELECT date, count(*) AS n FROM {} WHERE date <= DATE '2024-03-02' GROUP BY 1 ORDER BY 1",
        lake().trips()
    );
    let out = quack(&["query", "--format", "csv", &sql]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "date,n");
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("2024-03-01,"));
}

/// stdout is a stream: `>>` appends, and what an enclosing shell group wrote first stays.
#[test]
fn stdout_appends_and_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    std::fs::write(&path, "existing line\n").unwrap();
    let sql = format!("SELECT count(*) AS n FROM {} WHERE date = DATE '2024-04-01'", lake().trips());
    let bin = env!("CARGO_BIN_EXE_quack");
    for format in ["csv", "json", "table"] {
        let script = format!("\"$0\" query --format {format} \"$1\" >> \"$2\" && (echo header; \"$0\" query --format {format} \"$1\") > \"$2.group\"");
        let status = Command::new("sh").args(["-c", &script, bin, &sql, path.to_str().unwrap()]).status().unwrap();
        assert!(status.success(), "{format}");
        let appended = std::fs::read_to_string(&path).unwrap();
        assert!(appended.starts_with("existing line\n"), "{format}: {appended}");
        let group = std::fs::read_to_string(format!("{}.group", path.display())).unwrap();
        assert!(group.starts_with("header\n") && group.contains('1'), "{format}: {group}");
    }
    let appended = std::fs::read_to_string(&path).unwrap();
    assert!(appended.starts_with("existing line\nn\n1\n[\n\t{\"n\":1}\n]\n"), "{appended}");
}

#[test]
fn json_and_table_formats() {
    let sql = format!("SELECT count(*) AS n FROM {} WHERE date = DATE '2024-04-01'", lake().trips());
    let out = quack(&["query", "--format", "json", &sql]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "[\n\t{\"n\":1}\n]");
    let out = quack(&["query", &sql]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("| n |") && text.contains("| 1 |"), "{text}");
}

#[test]
fn parquet_output_goes_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    let sql = format!("SELECT payment_type, count(*) AS n FROM {} GROUP BY 1", lake().trips());
    let out = quack(&["query", "--format", "parquet", "--output", path.to_str().unwrap(), &sql]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let conn = duckdb::Connection::open_in_memory().unwrap();
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM '{}'", path.display()), [], |r| r.get(0)).unwrap();
    assert!(n >= 4);
}

#[test]
fn errors_go_to_stderr_with_a_non_zero_exit() {
    let out = quack(&["query", "--format", "csv", "SELEC 1"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("syntax error at line 1, column 1"), "{err}");
}

/// DuckDB's error ends with the line of SQL it ran: the user's, never quack's wrapping of it
/// (`DESCRIBE`, the `COPY` to a private file), whether the query was split or ran as one.
#[test]
fn errors_show_the_users_sql_not_quacks() {
    let trips = lake().trips();
    for split in ["auto", "always"] {
        for format in ["csv", "table"] {
            let sql = format!("SELECT date,\n  nosuchcol FROM {trips}");
            let out = quack(&["query", "--split", split, "--format", format, &sql]);
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(!out.status.success() && err.contains("nosuchcol"), "{split}, {format}: {err}");
            assert!(err.contains("LINE 2:   nosuchcol FROM"), "{split}, {format}: {err}");
            assert!(!err.contains("COPY") && !err.contains("DESCRIBE") && !err.contains("answer'"), "{err}");
        }
        // A failure while running (here, or in the reduce of a split) loses the line rather
        // than show the COPY around the query or the reduce's SQL.
        for sql in [
            format!("SELECT CAST('x' || fare_amount AS INT) FROM {trips}"),
            format!("SELECT count(*), CAST('x' || max(fare_amount) AS INT) FROM {trips}"),
        ] {
            let out = quack(&["query", "--split", split, "--format", "csv", &sql]);
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(!out.status.success() && err.contains("Conversion Error"), "{split}: {err}");
            assert!(!err.contains("COPY") && !err.contains("answer'") && !err.contains("__quack"), "{split}: {err}");
        }
    }
}

#[test]
fn explain_shows_partitions_tasks_and_sql() {
    let sql = format!(
        "SELECT pickup_location_id, count(*) AS trips FROM {} WHERE date >= DATE '2024-03-20' GROUP BY 1 ORDER BY trips DESC LIMIT 10",
        lake().trips()
    );
    let out = quack(&["explain", "-j", "2", "--split", "always", &sql]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "strategy: partial aggregate",
        "partition columns: date DATE",
        "34 files in 32 partitions",
        "13 of 32 partitions kept, 19 pruned",
        "map SQL (task 0):",
        "reduce SQL:",
        "output columns: pickup_location_id INTEGER, trips BIGINT",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

/// In process, a query runs as one DuckDB query by default (a block that ships its rows, such
/// as a median, and one that merges partial states alike), and splits when asked; through
/// Lambda the same query splits (planned with --dry-run, which invokes nothing).
#[test]
fn ship_rows_blocks_run_as_one_query_in_process_unless_split_always() {
    let sql = format!("SELECT payment_type, median(fare_amount) AS m FROM {} GROUP BY 1 ORDER BY 1", lake().trips());
    let explain = |args: &[&str]| {
        let out = quack(&[&["explain", "-j", "2"], args, &[sql.as_str()]].concat());
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let auto = explain(&[]);
    assert!(auto.contains("strategy: single task over all files: in process, one DuckDB query"), "{auto}");
    assert!(auto.contains("tasks: 1"), "{auto}");
    assert!(auto.contains("run on the coordinator's DuckDB") && !auto.contains("reduce SQL"), "{auto}");
    let mergeable = format!("SELECT payment_type, sum(fare_amount) AS s FROM {} GROUP BY 1", lake().trips());
    let text = String::from_utf8(quack(&["explain", "-j", "2", &mergeable]).stdout).unwrap();
    assert!(text.contains("in process, one DuckDB query over all files with all cores is cheapest"), "{text}");
    let text = String::from_utf8(quack(&["explain", "-j", "2", "--split", "always", &mergeable]).stdout).unwrap();
    assert!(text.contains("strategy: partial aggregate"), "{text}");
    let split = explain(&["--split", "always", "--target-task-bytes", "1"]);
    assert!(split.contains("strategy: ship rows"), "{split}");
    assert!(!split.contains("tasks: 1\n"), "{split}");
    let lambda = explain(&["--backend", "lambda", "--function", "f", "--target-task-bytes", "1"]);
    assert!(lambda.contains("strategy: ship rows"), "{lambda}");
    // A DISTINCT aggregate's map ships a row per distinct value: one query too, by default.
    let distinct = format!("SELECT count(DISTINCT pickup_location_id) AS n FROM {}", lake().trips());
    let text = String::from_utf8(quack(&["explain", "-j", "2", &distinct]).stdout).unwrap();
    assert!(text.contains("in process, one DuckDB query over all files with all cores is cheapest"), "{text}");
    let bad = quack(&["explain", "--split", "sometimes", &sql]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--split"));
    // Both ways give DuckDB's answer.
    for args in [&[][..], &["--split", "always", "--target-task-bytes", "1"]] {
        let out = quack(&[&["query", "--format", "csv"], args, &[sql.as_str()]].concat());
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let got = quack_fuzz::judge::parse_csv(&String::from_utf8(out.stdout).unwrap());
        common::assert_rows("median", &sql, got, common::truth(&sql), true);
    }
}

#[test]
fn explain_says_when_a_query_runs_directly() {
    let sql = format!("SELECT count(*) FROM read_parquet('{}/zones.parquet')", lake().path());
    let text = String::from_utf8(quack(&["explain", &sql]).stdout).unwrap();
    assert!(text.contains("strategy: direct"), "{text}");
}

#[test]
fn dry_run_plans_and_estimates_without_invoking() {
    let sql = format!("SELECT date, count(*) AS n FROM {} GROUP BY 1", lake().trips());
    // A Lambda function that does not exist, at an endpoint nothing listens on: a dry run
    // never calls it.
    let out = Command::new(env!("CARGO_BIN_EXE_quack"))
        .args(["query", "--dry-run", "--backend", "lambda", "--function", "nowhere", &sql])
        .env("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let estimate = text.lines().find(|l| l.starts_with("estimate: ")).unwrap_or_else(|| panic!("{text}"));
    assert!(estimate.contains(" tasks over ") && estimate.contains("Lambda: ") && estimate.contains('$'), "{estimate}");
}

#[test]
fn hostile_numeric_flags_are_clear_errors_not_panics() {
    let sql = format!("SELECT count(*) FROM {}", lake().trips());
    for args in [
        &["--hedge-after", "inf"][..],
        &["-j", "18446744073709551615"],
        &["--deadline", "1e30"],
        &["--task-timeout", "NaN"],
        &["--max-attempts", "0"],
    ] {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.push(&sql);
        let out = quack(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let flag = if args[0] == "-j" { "--concurrency" } else { args[0] };
        assert!(err.contains(flag) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

/// TIMESTAMPTZ is truncated, shown and formatted in the session's time zone, as one DuckDB in
/// that session: the zone of `TZ`, or `--time-zone` when given. The text table shows it too.
#[test]
fn times_are_in_the_session_time_zone() {
    let sql = format!(
        "SELECT date_trunc('day', pickup_at::TIMESTAMPTZ) AS day, count(*) AS n, min(pickup_at::TIMESTAMPTZ) AS first, \
         max(strftime(pickup_at::TIMESTAMPTZ, '%H:%M %z')) AS latest FROM {} GROUP BY 1 ORDER BY 1",
        lake().trips()
    );
    for (tz, flag, offset) in [("America/St_Johns", None, "-03:30"), ("UTC", Some("Asia/Kathmandu"), "+05:45")] {
        let zone = flag.unwrap_or(tz);
        let run = |format: &str| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_quack"));
            command.env("TZ", tz).args(["query", "--format", format, "--target-task-bytes", "1"]);
            if let Some(flag) = flag {
                command.args(["--time-zone", flag]);
            }
            let out = command.arg(&sql).output().expect("quack runs");
            assert!(out.status.success(), "{zone}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        let want = common::truth_in_zone(&sql, zone);
        assert!(want[1][0].ends_with(offset), "{zone}: {want:?}");
        assert_eq!(quack_fuzz::judge::parse_csv(&run("csv")), want, "{zone}");
        let table = run("table");
        let first = &want[1][2];
        assert!(table.contains(&first[..10]) && table.contains(&first[11..16]), "{zone}: not {first:?}:\n{table}");
    }
}

/// `--max-gather-bytes` bounds what the coordinator holds: partial results, or in process an
/// answer it formats as a table; a query that passes it stops with a message that names the
/// flag; under a larger limit, or none, it answers. An answer the engine writes as it comes
/// (CSV, in process) is never held.
#[test]
fn the_gather_limit_stops_a_query_that_would_hold_too_much() {
    let sql = format!("SELECT fare_amount FROM {} WHERE fare_amount > 0", lake().trips());
    let limited = ["--max-gather-bytes", "100000"];
    for args in [&["--format", "table"][..], &["--format", "csv", "--split", "always"]] {
        let out = quack(&[&["query", "-j", "2"], args, &limited, &[sql.as_str()]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} answered");
        assert!(stderr.contains("more than the 100000 bytes --max-gather-bytes lets the coordinator hold"), "{stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: a partial answer was written");
    }
    for args in [&["--max-gather-bytes", "0", "--split", "always"][..], &["--split", "always"], &limited] {
        let out = quack(&[&["query", "-j", "2", "--format", "csv"], args, &[sql.as_str()]].concat());
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Every file costs a task `--file-open-bytes` more than its size: when opening costs more than
/// a task's ceiling, every file is a task of its own; when it costs nothing, small files pack.
#[test]
fn the_cost_of_opening_a_file_spreads_small_files_over_tasks() {
    let sql = format!("SELECT count(*) AS n FROM {}", lake().trips());
    let tasks = |args: &[&str]| -> usize {
        let out = quack(&[&["explain", "-j", "2", "--split", "always"], args, &[sql.as_str()]].concat());
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find_map(|l| l.strip_prefix("tasks: ")).unwrap_or_else(|| panic!("{text}"));
        line.trim().parse().unwrap()
    };
    let per_file = tasks(&["--target-task-bytes", "1"]);
    assert!(per_file > 10, "{per_file}");
    assert_eq!(tasks(&["--file-open-bytes", "1099511627776"]), per_file);
    assert!(tasks(&["--file-open-bytes", "0"]) < per_file);
    let bad = quack(&["explain", "--file-open-bytes", "-5", &sql]);
    assert!(!bad.status.success());
}
