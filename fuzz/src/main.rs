//! `quack-fuzz`: the differential fuzzer's long mode.
//!   quack-fuzz --queries 100000 --seed 7 [--skip N] [--lake DIR] [--packings 3]
//! `--skip N` generates and discards the first N queries of the seed's sequence, so a long run
//! that was stopped resumes on exactly the queries it had not run yet (the generator depends only
//! on the seed and the lake, which the seed also decides).

use anyhow::Context as _;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Random queries through quack and one DuckDB; every mismatch shrunk and printed")]
struct Args {
    /// How many queries to generate.
    #[arg(long, default_value_t = 2000)]
    queries: usize,
    /// Seed of the generator (and of the lake).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the lake (default: a temporary directory).
    #[arg(long)]
    lake: Option<std::path::PathBuf>,
    /// Task packings per query: 1 (one file per task), 2 (+ default packing), 3 (+ one task),
    /// 4 (+ a second stage through a 3-bucket exchange).
    #[arg(long, default_value_t = 3)]
    packings: usize,
    /// Generate and discard this many queries first: resume a stopped run of the same seed.
    #[arg(long, default_value_t = 0)]
    skip: usize,
    /// Print a progress line every this many queries.
    #[arg(long, default_value_t = 1000)]
    every: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let root = args.lake.clone().unwrap_or_else(|| temp.path().join("lake"));
    let lake = quack_fuzz::FuzzLake::generate(&root, args.seed).context("generating the fuzz lake")?;
    let judge = quack_fuzz::Judge::new(args.packings)?.for_lake(&lake);
    let mut generator = quack_fuzz::Generator::new(args.seed, &lake);
    for _ in 0..args.skip {
        generator.query();
    }
    let mut total = quack_fuzz::Report::default();
    let mut done = 0;
    while done < args.queries {
        let batch = args.every.min(args.queries - done);
        let sqls: Vec<String> = (0..batch).map(|_| generator.query()).collect();
        let report = quack_fuzz::run(&judge, sqls, 300);
        for (small, why, original) in &report.mismatches {
            println!("MISMATCH {why}\n  shrunk:   {small}\n  original: {original}");
        }
        total.absorb(report);
        done += batch;
        eprintln!("{} (queries {}..{} of seed {})", total.summary(), args.skip, args.skip + done, args.seed);
    }
    println!("{}", total.summary());
    if !total.mismatches.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
