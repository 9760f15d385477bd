//! `crew-bench`: starts the release `crewd` next to this executable and a
//! fast local HTTP worker, runs the benchmark scenarios over loopback, and
//! prints a table (median and spread of several runs per figure).
//!
//! ```sh
//! cargo build --release --bins && ./target/release/crew-bench
//! ```
//!
//! Options: `--runs N` (default 3), `--scale-runs N` (default 2),
//! `--only a,b` (of `throughput`, `fanin`, `chain`, `continuations`,
//! `scale`, `floor`), `--tasks N` (throughput size, default 10000), `--scale-tasks N`
//! and `--scale-incomplete N` (default 1000000 and 100000),
//! `--stream-clients a,b` (stream clients attached during the throughput
//! runs, one row each; default 0,100).

use anyhow::{bail, Context};
use crew_tests::bench::daemon::Daemon;
use crew_tests::bench::scenarios::{self, fmt_num, Row};
use crew_tests::bench::{floor, load_average, machine, scale, worker, Api};

struct Options {
    runs: usize,
    scale_runs: usize,
    only: Option<Vec<String>>,
    tasks: usize,
    scale_tasks: usize,
    scale_incomplete: usize,
    stream_clients: Vec<usize>,
}

impl Options {
    fn parse() -> anyhow::Result<Options> {
        let mut o = Options {
            runs: 3,
            scale_runs: 2,
            only: None,
            tasks: 10_000,
            scale_tasks: 1_000_000,
            scale_incomplete: 100_000,
            stream_clients: vec![0, 100],
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--runs" => o.runs = value()?.parse()?,
                "--scale-runs" => o.scale_runs = value()?.parse()?,
                "--only" => o.only = Some(value()?.split(',').map(str::to_string).collect()),
                "--tasks" => o.tasks = value()?.parse()?,
                "--scale-tasks" => o.scale_tasks = value()?.parse()?,
                "--scale-incomplete" => o.scale_incomplete = value()?.parse()?,
                "--stream-clients" => {
                    o.stream_clients = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?
                }
                "-h" | "--help" => {
                    println!(
                        "crew-bench [--runs N] [--scale-runs N] [--only throughput,fanin,chain,continuations,scale,floor] \
                         [--tasks N] [--scale-tasks N] [--scale-incomplete N] [--stream-clients 0,100]"
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown option {other:?} (try --help)"),
            }
        }
        if o.runs == 0 || o.scale_runs == 0 || o.scale_incomplete > o.scale_tasks {
            bail!("runs must be positive and --scale-incomplete at most --scale-tasks");
        }
        Ok(o)
    }

    fn wants(&self, s: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|x| x == s))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Options::parse()?;
    crew_tests::bench::daemon::crewd_binary()?;
    let started = std::time::Instant::now();
    let load_before = load_average();
    let worker = worker::start().await?;
    let dir = tempfile::tempdir()?;
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    if o.wants("throughput") || o.wants("fanin") || o.wants("chain") || o.wants("continuations") {
        let d = Daemon::start(&dir.path().join("bench.redb"), worker.addr).await?;
        let api = Api::new(d.api());
        if o.wants("throughput") {
            eprintln!("throughput...");
            for &clients in &o.stream_clients {
                rows.push(scenarios::throughput(&api, &d, o.tasks, clients, o.runs).await?);
            }
        }
        if o.wants("fanin") {
            eprintln!("fan-in...");
            rows.push(scenarios::fan_in(&api, &d, 1000, o.runs).await?);
        }
        if o.wants("chain") {
            eprintln!("chain...");
            rows.extend(scenarios::chain(&api, &d, &worker, 1000, o.runs).await?);
        }
        if o.wants("continuations") {
            eprintln!("continuations...");
            rows.push(scenarios::continuations(&api, 1000, o.runs).await?);
        }
    }
    if o.wants("scale") {
        eprintln!(
            "scale: building {} tasks ({} incomplete)...",
            o.scale_tasks, o.scale_incomplete
        );
        let db = dir.path().join("scale.redb");
        let (total, incomplete) = (o.scale_tasks, o.scale_incomplete);
        let db2 = db.clone();
        let secs =
            tokio::task::spawn_blocking(move || scale::build(&db2, total, incomplete)).await??;
        let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        notes.push(format!(
            "scale store: {total} tasks built offline in {secs:.1} s, file {:.0} MiB",
            size as f64 / (1024.0 * 1024.0)
        ));
        eprintln!("scale: restarting...");
        rows.extend(scale::measure(&worker, &db, incomplete, o.scale_runs).await?);
    }

    if o.wants("floor") {
        eprintln!("floor: the worker calls and the journal's sync alone...");
        let (calls, runs) = (o.tasks, o.runs);
        rows.extend(floor::measure(worker.addr, dir.path(), calls, runs).await?);
    }

    print_table(&rows);
    println!();
    println!("machine: {}", machine());
    println!(
        "load average: {load_before} before, {} after; {:.0} s in all",
        load_average(),
        started.elapsed().as_secs_f64()
    );
    for n in notes {
        println!("{n}");
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    let header = [
        "figure",
        "unit",
        "median",
        "min .. max",
        "runs",
        "target",
        "met",
    ];
    let body: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let med = r.samples.median();
            let (lo, hi) = r.samples.range();
            [
                r.name.clone(),
                r.unit.to_string(),
                fmt_num(med),
                format!("{} .. {}", fmt_num(lo), fmt_num(hi)),
                r.samples.0.len().to_string(),
                r.target.map(|t| t.describe()).unwrap_or_default(),
                match r.target {
                    Some(t) if t.met(med) => "yes".into(),
                    Some(_) => "NO".into(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for b in &body {
        for (w, c) in widths.iter_mut().zip(b) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(&header.map(String::from));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for b in &body {
        line(b);
    }
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("{}: {}", r.name, r.note);
    }
}
