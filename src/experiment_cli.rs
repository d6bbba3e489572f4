//! `scintigan experiment TABLE`: queue one of the paper's experiments
//! through the daemon, wait for its runs, write the report.

use anyhow::{Context, Result, bail};
use scintigan::daemon::Paths;
use scintigan::daemon::client::Client;
use scintigan::daemon::protocol::{Reply, Request};
use scintigan::experiment::{self, DataChoice, Options, Plan, Scale, Table, report};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// table3 (SSIM, ACGAN vs MU-ACGAN), table4 (ResNet34 on training sets
    /// 1-5), table5 (ImageNet weights vs from scratch), table6 (multi-scale vs
    /// its backbones), table7 (multi-scale vs other classifiers), table8
    /// (multi-scale on sets 4 and 5).
    pub table: String,
    /// Bone scans: `phantom` (in-memory phantoms), an ingested folder (with
    /// manifest.csv) or a folder of class subfolders.
    #[arg(long, default_value = "phantom")]
    pub data: String,
    /// Chest X-rays for MU-ACGAN pretraining: `phantom` or the COVID-19
    /// Radiography Database folder.
    #[arg(long, default_value = "phantom")]
    pub pretrain_data: String,
    /// smoke (seconds a run), demo (minutes on 2 CPU cores) or paper (the
    /// paper's settings, for a GPU).
    #[arg(long, default_value = "demo")]
    pub scale: String,
    /// Repeat every row with seeds 0..N (weights, data order, patient split).
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Folder of `<arch>.safetensors` ImageNet weights (`scintigan weights import`).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Only (re)write a report from its runs: the last invocation's, or the
    /// one with this tag (its folder's name under runs/experiments/TABLE/).
    #[arg(
        long,
        value_name = "TAG",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "latest"
    )]
    pub report: Option<String>,
    /// Queue and return without waiting (`--report` later writes the report).
    #[arg(long)]
    pub no_wait: bool,
}

/// `runs/experiments/<table>/`: one folder per invocation, named by its
/// tag, and `latest` naming the newest.
fn table_dir(runs_dir: &Path, table: Table) -> PathBuf {
    runs_dir.join("experiments").join(table.name())
}

/// Six base-36 digits of `secs`.
fn tag_of(secs: u64) -> String {
    let mut n = secs % 36u64.pow(6);
    let mut s = String::new();
    for _ in 0..6 {
        let d = (n % 36) as u32;
        s.insert(0, char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
    }
    s
}

/// A short tag from the clock, so this invocation's run names are new, and
/// its folder under `table_dir`, claimed by creating it: a tag another
/// invocation took (the same second) moves on to the next.
fn claim_invocation(table_dir: &Path) -> Result<(String, PathBuf)> {
    std::fs::create_dir_all(table_dir)
        .with_context(|| format!("{}: cannot create", table_dir.display()))?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for k in 0..1000 {
        let tag = tag_of(secs + k);
        let dir = table_dir.join(&tag);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((tag, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("{}: cannot create", dir.display())),
        }
    }
    bail!("{}: no free invocation tag", table_dir.display())
}

/// The folder of an earlier invocation: `latest` or a tag. Reports written
/// before invocations had folders of their own sit in the table's folder.
fn invocation_dir(table_dir: &Path, which: &str, table: Table) -> Result<PathBuf> {
    let tag = if which == "latest" {
        match std::fs::read_to_string(table_dir.join("latest")) {
            Ok(text) => text.trim().to_string(),
            Err(_) if table_dir.join("plan.json").is_file() => {
                return Ok(table_dir.to_path_buf());
            }
            Err(_) => bail!(
                "{}: no earlier invocation of {} (run `scintigan experiment {}` first)",
                table_dir.display(),
                table.name(),
                table.name()
            ),
        }
    } else {
        which.to_string()
    };
    let dir = table_dir.join(&tag);
    if tag.is_empty() || tag.contains('/') || !dir.join("plan.json").is_file() {
        let known: Vec<String> = std::fs::read_dir(table_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("plan.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        bail!(
            "--report={which}: no invocation '{tag}' of {} in {} (there: {})",
            table.name(),
            table_dir.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(dir)
}

pub fn run(args: &ExperimentArgs, runs_dir: &Path, configs_dir: &Path) -> Result<ExitCode> {
    let table = Table::parse(&args.table).with_context(|| {
        format!(
            "experiment '{}': expected one of {}",
            args.table,
            Table::NAMES.join(", ")
        )
    })?;
    let table_dir = table_dir(runs_dir, table);
    if let Some(which) = &args.report {
        let dir = invocation_dir(&table_dir, which, table)?;
        let plan_path = dir.join("plan.json");
        let plan: Plan =
            serde_json::from_str(&std::fs::read_to_string(&plan_path).with_context(|| {
                format!(
                    "{}: no earlier invocation of {}",
                    plan_path.display(),
                    table.name()
                )
            })?)
            .with_context(|| format!("{}: not a plan written by scintigan", plan_path.display()))?;
        return write(&dir, &plan, runs_dir);
    }
    let scale = Scale::parse(&args.scale).with_context(|| {
        format!(
            "scale '{}': expected one of {}",
            args.scale,
            Scale::NAMES.join(", ")
        )
    })?;
    if args.seeds == 0 || args.seeds > 50 {
        bail!("--seeds {}: expected 1 to 50", args.seeds);
    }
    let resolve = |s: &str| -> Result<DataChoice> {
        match DataChoice::parse(s) {
            DataChoice::Folder(p) => {
                let abs = std::fs::canonicalize(&p)
                    .with_context(|| format!("--data {}: no such folder", p.display()))?;
                Ok(DataChoice::Folder(abs))
            }
            d => Ok(d),
        }
    };
    let opts = Options {
        table,
        data: resolve(&args.data)?,
        pretrain_data: resolve(&args.pretrain_data)?,
        scale,
        seeds: args.seeds,
        weights: match &args.weights {
            Some(w) => Some(
                std::fs::canonicalize(w)
                    .with_context(|| format!("--weights {}: no such folder", w.display()))?,
            ),
            None => None,
        },
        tag: String::new(),
    };
    let (tag, dir) = claim_invocation(&table_dir)?;
    let plan = match experiment::plan(&Options {
        tag: tag.clone(),
        ..opts
    }) {
        Ok(plan) => plan,
        Err(e) => {
            // A plan that fails leaves no folder behind.
            let _ = std::fs::remove_dir(&dir);
            return Err(e.into());
        }
    };
    let plan_path = dir.join("plan.json");
    scintigan::store::write_atomic(&plan_path, serde_json::to_string_pretty(&plan)?.as_bytes())
        .with_context(|| format!("{}: cannot write", plan_path.display()))?;
    let paths = Paths::new(runs_dir, configs_dir);
    let mut client = Client::connect_or_start(&paths)?;
    for c in &plan.configs {
        match client.request(Request::Submit {
            file_name: format!("{}.toml", c.name),
            text: c.text.clone(),
        })? {
            Reply::Ok { .. } => {}
            Reply::Error { message } => {
                bail!("{}: the daemon refused the config: {message}", c.name)
            }
            other => bail!("unexpected reply from the daemon: {other:?}"),
        }
    }
    // Newest once its runs are queued: a refused submit leaves `latest`.
    scintigan::store::write_atomic(&table_dir.join("latest"), format!("{tag}\n").as_bytes())
        .with_context(|| format!("{}: cannot write", table_dir.join("latest").display()))?;
    let rows: usize = plan.rows.iter().map(|r| r.runs.len()).sum();
    println!(
        "{}: queued {} configs ({} runs in {} rows, {} seed(s), scale {}); watch them with `scintigan`",
        table.name(),
        plan.configs.len(),
        rows,
        plan.rows.len(),
        plan.seeds,
        args.scale
    );
    if args.no_wait {
        println!(
            "write the report once they finish: scintigan experiment {} --report={tag}",
            table.name()
        );
        return Ok(ExitCode::SUCCESS);
    }
    wait(&paths, &plan, &tag)?;
    write(&dir, &plan, runs_dir)
}

/// Poll the daemon until every planned config's run has ended.
fn wait(paths: &Paths, plan: &Plan, tag: &str) -> Result<()> {
    let names: Vec<&str> = plan.configs.iter().map(|c| c.name.as_str()).collect();
    let start = Instant::now();
    let mut last_line = String::new();
    let mut unreachable = 0;
    loop {
        let snapshot = match Client::connect_or_start(paths)
            .and_then(|mut c| c.request(Request::List))
        {
            Ok(Reply::List(s)) => {
                unreachable = 0;
                s
            }
            Ok(other) => bail!("unexpected reply from the daemon: {other:?}"),
            Err(e) => {
                unreachable += 1;
                if unreachable >= 30 {
                    bail!(
                        "the daemon did not answer for a minute ({e}); the runs keep their state: `scintigan experiment {} --report={tag}` once they end",
                        plan.table.name()
                    );
                }
                eprintln!("daemon: {e}; retrying");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        for bad in &snapshot.invalid_configs {
            if names
                .iter()
                .any(|n| bad.file.ends_with(&format!("{n}.toml")))
            {
                bail!("{}: {}", bad.file, bad.errors.join("; "));
            }
        }
        let mut states: BTreeMap<&str, usize> = BTreeMap::new();
        let mut running = Vec::new();
        for name in &names {
            let newest = snapshot
                .runs
                .iter()
                .filter(|r| r.name == *name)
                .max_by(|a, b| a.created_at.total_cmp(&b.created_at));
            // A queued run held by a failed or cancelled dependency never
            // starts: it has ended as far as the experiment goes.
            let held = newest.is_some_and(|r| {
                r.state == "queued" && r.reason.as_deref().is_some_and(|x| x.starts_with("held"))
            });
            let state = if held {
                "held"
            } else {
                newest.map_or("waiting", |r| r.state.as_str())
            };
            *states.entry(state).or_default() += 1;
            if let Some(r) = newest.filter(|r| r.state == "running") {
                let stage = r.stage.as_deref().filter(|s| *s != r.name);
                running.push(match stage {
                    Some(s) => format!("{} {s} epoch {}", r.name, r.epoch),
                    None => format!("{} epoch {}", r.name, r.epoch),
                });
            }
        }
        let ended = ["done", "failed", "cancelled", "held"]
            .iter()
            .map(|s| states.get(s).copied().unwrap_or(0))
            .sum::<usize>();
        let summary: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let line = format!(
            "{}/{} ended: {}{}",
            ended,
            names.len(),
            summary.join(", "),
            if running.is_empty() {
                String::new()
            } else {
                format!(" · {}", running.join(", "))
            }
        );
        if line != last_line {
            println!("[{:>5.0} s] {line}", start.elapsed().as_secs_f64());
            last_line = line;
        }
        if ended == names.len() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn write(dir: &Path, plan: &Plan, runs_dir: &Path) -> Result<ExitCode> {
    let results = report::collect(runs_dir, plan);
    let files = report::write_report(dir, plan, &results)
        .with_context(|| format!("{}: cannot write the report", dir.display()))?;
    let text = std::fs::read_to_string(&files[0]).unwrap_or_default();
    // The table, for the terminal.
    for line in text
        .lines()
        .filter(|l| l.starts_with('|') || l.starts_with('#'))
    {
        println!("{line}");
    }
    println!(
        "wrote {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let failed = results
        .iter()
        .flat_map(|r| &r.outcomes)
        .filter(|o| o.state != "done" || o.values.is_empty())
        .count();
    if failed > 0 {
        eprintln!(
            "{failed} run(s) did not finish; their cells are left out (see the report's run list)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
