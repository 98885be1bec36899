//! The subcommands, each a straight line through the pipeline.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::analysis::{self, curve};
use crate::error::Error;
use crate::events::Silent;
use crate::manifest;
use crate::plan;
use crate::progress::ProgressView;
use crate::report;
use crate::schedule;
use crate::store::{Store, StoredState};

#[derive(Debug, Parser)]
#[command(
    name = "converge",
    version,
    about = "Sweep learning rates declaratively; rank runs by how they converge"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct Target {
    /// A manifest file, or a study folder: every *.toml beneath it.
    pub path: PathBuf,
    /// The results folder (one subfolder per experiment).
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the run matrix and each run's state.
    Plan {
        #[command(flatten)]
        target: Target,
        /// Print JSON (one object per run) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train every run that is not done yet.
    Run {
        #[command(flatten)]
        target: Target,
        /// No progress bar and no per-run lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Rank finished runs by convergence into report/ranking.csv.
    Report {
        #[command(flatten)]
        target: Target,
    },
    /// Measure training steps per second of a manifest's first run (no
    /// evaluation, nothing written); prints one JSON line.
    Bench {
        /// A manifest file.
        manifest: PathBuf,
        #[arg(long, default_value_t = 30)]
        steps: i64,
        #[arg(long, default_value_t = 5)]
        warmup: i64,
        /// CPU threads for libtorch (default: libtorch's choice).
        #[arg(long)]
        threads: Option<i32>,
        /// "cpu", "cuda", "cuda:N" or "auto".
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

pub fn main(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Plan { target, json } => plan_cmd(&target, json),
        Command::Run { target, quiet } => run_cmd(&target, quiet),
        Command::Report { target } => report_cmd(&target),
        Command::Bench {
            manifest,
            steps,
            warmup,
            threads,
            device,
        } => bench_cmd(&manifest, steps, warmup, threads, &device),
    }
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (converge plan | head) is not an error worth a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn plan_cmd(target: &Target, json: bool) -> Result<(), Error> {
    let experiments = manifest::load_all(&target.path)?;
    let store = Store::new(&target.results);
    let mut all = Vec::new();
    let mut text = String::new();
    for exp in &experiments {
        let rows = schedule::plan_rows(&store, exp)?;
        let count = |s: StoredState| rows.iter().filter(|r| r.state == s).count();
        text.push_str(&format!(
            "{} ({}): {} runs: {} new, {} done, {} diverged, {} failed, {} interrupted, {} orphaned\n",
            exp.name,
            exp.path.display(),
            rows.len() - count(StoredState::Orphaned),
            count(StoredState::New),
            count(StoredState::Done),
            count(StoredState::Diverged),
            count(StoredState::Failed),
            count(StoredState::Interrupted),
            count(StoredState::Orphaned),
        ));
        for row in &rows {
            text.push_str(&format!(
                "  {:<11} {}  {}\n",
                row.state.name(),
                row.id,
                row.label
            ));
        }
        all.extend(rows);
    }
    if json {
        out(&(serde_json::to_string_pretty(&all).expect("plan rows serialize") + "\n"));
    } else {
        out(&text);
    }
    Ok(())
}

fn run_cmd(target: &Target, quiet: bool) -> Result<(), Error> {
    let experiments = manifest::load_all(&target.path)?;
    let store = Store::new(&target.results);
    let summary = if quiet {
        schedule::run_study(&store, &experiments, &mut Silent)?
    } else {
        schedule::run_study(&store, &experiments, &mut ProgressView::new())?
    };
    out(&format!(
        "computed {}, reused {}\n",
        summary.computed, summary.reused
    ));
    if summary.diverged > 0 {
        out(&format!(
            "{} run(s) diverged (kept, ranked by their initial loss)\n",
            summary.diverged
        ));
    }
    if summary.failed > 0 {
        return Err(Error::RunsFailed(summary.failed));
    }
    Ok(())
}

fn report_cmd(target: &Target) -> Result<(), Error> {
    let experiments = manifest::load_all(&target.path)?;
    let store = Store::new(&target.results);
    for exp in &experiments {
        let runs = plan::expand(exp);
        let ranking = analysis::rank(&store, &exp.name, &runs, &curve::Params::default())
            .map_err(Error::Analysis)?;
        let path = report::write_ranking(&store, &exp.name, &ranking)?;
        out(&report::table(&exp.name, &ranking));
        out(&format!("wrote {}\n\n", path.display()));
    }
    Ok(())
}

/// Peak resident memory of this process in MiB (Linux), if known.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench_cmd(
    manifest_path: &std::path::Path,
    steps: i64,
    warmup: i64,
    threads: Option<i32>,
    device: &str,
) -> Result<(), Error> {
    let exp = manifest::load(manifest_path)?;
    let run = plan::expand(&exp)
        .into_iter()
        .next()
        .expect("a manifest has at least one run");
    if let Some(t) = threads {
        crate::train::set_threads(t);
    }
    let device = crate::train::device(device).map_err(Error::Device)?;
    let data = crate::data::load(&exp.data, &exp.data_dir, device)?;
    let result = crate::train::benchmark(&run.spec, &data.train, device, warmup, steps);
    let line = serde_json::json!({
        "model": run.spec.model.kind().name(),
        "parameters": result.parameters,
        "batch_size": result.batch_size,
        "threads": crate::train::threads(),
        "device": crate::train::device_name(device),
        "steps": result.steps,
        "seconds": result.seconds,
        "steps_per_sec": result.steps as f64 / result.seconds,
        "peak_rss_mb": peak_rss_mb(),
        "spec": serde_json::from_str::<serde_json::Value>(&run.spec.canonical_json()).expect("canonical JSON"),
    });
    out(&format!("{line}\n"));
    Ok(())
}
