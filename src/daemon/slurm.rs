//! Slurm's commands as the daemon uses them: `sbatch` to submit a run's
//! worker as a batch job, `squeue` (then `sacct`, when accounting is on) to
//! follow jobs, `scancel` to signal and end them. Every argument is passed
//! to the command directly; no shell sees a config value.

use crate::config::SlurmOptions;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// The commands the Slurm executor needs on PATH.
pub const COMMANDS: [&str; 3] = ["sbatch", "squeue", "scancel"];

/// Refuse a Slurm executor on a machine without Slurm's client commands.
pub fn check_commands() -> Result<(), String> {
    let missing: Vec<&str> = COMMANDS
        .iter()
        .copied()
        .filter(|c| find_on_path(c).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "executor = \"slurm\" but {} not found on PATH; run the daemon on a login node with Slurm's client commands, or set executor = \"local\"",
        missing.join(", ")
    ))
}

fn find_on_path(command: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|p| p.is_file())
}

/// What Slurm says about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Slurm's state name: PENDING, RUNNING, COMPLETED, TIMEOUT, ...
    pub state: String,
    /// Why a job pends (Resources, Priority, ...); `None` for "None".
    pub reason: Option<String>,
    /// The node(s) it runs or ran on.
    pub node: Option<String>,
}

impl JobInfo {
    /// The job has ended: no process of it is left to wait for.
    pub fn ended(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "PENDING"
                | "CONFIGURING"
                | "RUNNING"
                | "COMPLETING"
                | "SUSPENDED"
                | "REQUEUED"
                | "REQUEUE_HOLD"
                | "REQUEUE_FED"
                | "RESIZING"
                | "SIGNALING"
                | "STAGE_OUT"
                | "STOPPED"
                | "RESV_DEL_HOLD"
        )
    }
    /// Waiting to start on a node.
    pub fn pending(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "RESV_DEL_HOLD"
        )
    }
    /// Ended because of the cluster, not the run: worth resubmitting from
    /// the checkpoint.
    pub fn ended_by_cluster(&self) -> bool {
        matches!(
            self.state.as_str(),
            "TIMEOUT" | "PREEMPTED" | "NODE_FAIL" | "BOOT_FAIL" | "DEADLINE"
        )
    }
}

/// The batch script of a run: exec the worker, so that Slurm's signals to
/// the batch step reach it directly.
pub fn batch_script(exe: &Path, runs_dir: &Path, run_dir: &Path, run_id: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # scintigan run {run_id}: written by the daemon, which resubmits it from\n\
         # the run's last checkpoint when needed.\n\
         export {}=1\n\
         exec {} --runs-dir {} worker {}\n",
        super::UNDER_DAEMON,
        shell_quote(&exe.to_string_lossy()),
        shell_quote(&runs_dir.to_string_lossy()),
        shell_quote(&run_dir.to_string_lossy()),
    )
}

/// `text` as one POSIX shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Submit `script` (a file in `run_dir`) as a batch job named after the run;
/// its output goes to `run_dir/slurm-<jobid>.log`. Returns the job id.
pub fn submit(
    script: &Path,
    run_dir: &Path,
    run_name: &str,
    options: &SlurmOptions,
) -> Result<String, String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable")
        .arg(format!("--job-name=scintigan-{run_name}"))
        .arg(format!("--chdir={}", run_dir.display()))
        .arg(format!(
            "--output={}",
            run_dir.join("slurm-%j.log").display()
        ))
        .arg("--open-mode=append")
        // The daemon resubmits from the checkpoint itself, counting retries.
        .arg("--no-requeue")
        .args(options.sbatch_args())
        .arg(script);
    let out = run(&mut cmd)?;
    // `--parsable` prints "jobid" or "jobid;cluster".
    let id = out
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "sbatch printed '{}' instead of a job id",
            out.trim()
        ));
    }
    Ok(id)
}

/// Ask Slurm about `ids`: `squeue` knows pending, running and recently
/// ended jobs; a job it has forgotten is looked up in `sacct`. Jobs neither
/// knows are left out of the answer.
pub fn query(ids: &[String]) -> Result<BTreeMap<String, JobInfo>, String> {
    let mut found = BTreeMap::new();
    if ids.is_empty() {
        return Ok(found);
    }
    let out = run(Command::new("squeue")
        .arg("--noheader")
        .arg("--states=all")
        .arg(format!("--jobs={}", ids.join(",")))
        .arg("--format=%i|%T|%r|%N"));
    match out {
        Ok(text) => found.extend(parse_squeue(&text)),
        // squeue refuses a list made only of ids it no longer knows.
        Err(e) if e.contains("Invalid job id") => {}
        Err(e) => return Err(e),
    }
    let forgotten: Vec<&String> = ids.iter().filter(|id| !found.contains_key(*id)).collect();
    for id in forgotten {
        if let Some(info) = sacct(id) {
            found.insert(id.clone(), info);
        }
    }
    Ok(found)
}

/// `squeue --format=%i|%T|%r|%N` lines by job id.
pub fn parse_squeue(text: &str) -> BTreeMap<String, JobInfo> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.trim().split('|');
            let id = f.next()?.trim().to_string();
            let state = f.next()?.trim().to_string();
            let reason = f
                .next()
                .map(str::trim)
                .filter(|r| !r.is_empty() && *r != "None");
            let node = f.next().map(str::trim).filter(|n| !n.is_empty());
            (!id.is_empty() && !state.is_empty()).then(|| {
                (
                    id,
                    JobInfo {
                        state,
                        reason: reason.map(String::from),
                        node: node.map(String::from),
                    },
                )
            })
        })
        .collect()
}

/// The final state `sacct` recorded, when accounting is on.
fn sacct(id: &str) -> Option<JobInfo> {
    find_on_path("sacct")?;
    let text = run(Command::new("sacct")
        .args(["--noheader", "--allocations", "--parsable2"])
        .arg(format!("--jobs={id}"))
        .arg("--format=State,NodeList"))
    .ok()?;
    let line = text.lines().next()?;
    let (state, node) = line.split_once('|').unwrap_or((line, ""));
    // "CANCELLED by 1000" -> CANCELLED.
    let state = state.split_whitespace().next()?.to_string();
    Some(JobInfo {
        state,
        reason: None,
        node: (!node.is_empty()).then(|| node.to_string()),
    })
}

/// Send `signal` to the job's batch step (the worker, which the script
/// execs) without ending the job.
pub fn signal_worker(id: &str, signal: &str) -> Result<(), String> {
    run(Command::new("scancel")
        .arg("--batch")
        .arg(format!("--signal={signal}"))
        .arg(id))
    .map(drop)
}

/// End the job: Slurm sends its processes SIGTERM, then SIGKILL after the
/// cluster's KillWait. `kill`: SIGKILL to the worker first, so it ends at
/// once without a checkpoint.
pub fn cancel(id: &str, kill: bool) -> Result<(), String> {
    if kill {
        // A job that has not started has no batch step to signal.
        let _ = signal_worker(id, "KILL");
    }
    run(Command::new("scancel").arg(id)).map(drop)
}

/// Run a Slurm command; its stdout, or its first stderr line as the error.
fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    Err(format!("{shown} failed: {}", first.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse_into_states_reasons_and_nodes() {
        let jobs = parse_squeue(
            "12|PENDING|Resources|\n13|RUNNING|None|gpu07\n14|TIMEOUT|TimeLimit|gpu07\n",
        );
        assert_eq!(jobs["12"].state, "PENDING");
        assert_eq!(jobs["12"].reason.as_deref(), Some("Resources"));
        assert!(jobs["12"].pending() && !jobs["12"].ended());
        assert_eq!(jobs["13"].node.as_deref(), Some("gpu07"));
        assert_eq!(jobs["13"].reason, None);
        assert!(!jobs["13"].ended());
        assert!(jobs["14"].ended() && jobs["14"].ended_by_cluster());
    }

    #[test]
    fn the_batch_script_quotes_every_path_and_execs_the_worker() {
        let s = batch_script(
            Path::new("/opt/sc/bin/scintigan"),
            Path::new("/shared/it's runs"),
            Path::new("/shared/it's runs/r1"),
            "r1",
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains(
            "exec '/opt/sc/bin/scintigan' --runs-dir '/shared/it'\\''s runs' worker '/shared/it'\\''s runs/r1'\n"
        ));
    }
}
