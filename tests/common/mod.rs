//! Helpers shared by the integration tests: a scratch project folder, the
//! built binary, and event-log readers.
#![allow(dead_code)]

use scintigan::store::{Event, EventRecord, RunDir, read_events};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub mod project;
pub mod tmux;

/// The built `scintigan`, pointed at the project-local Slurm (its daemon
/// and the `sbatch` it runs inherit `SLURM_CONF`).
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scintigan"));
    cmd.env("SLURM_CONF", slurm_conf());
    cmd
}

/// The project-local Slurm's configuration, written by
/// `scripts/setup-slurm.sh` (never the system's `/etc/slurm`).
pub fn slurm_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".slurm/slurm.conf")
}

/// A Slurm command (`squeue`, `scancel`...) for the project-local Slurm.
pub fn slurm_command(name: &str) -> Command {
    let mut cmd = Command::new(name);
    cmd.env("SLURM_CONF", slurm_conf());
    cmd
}

/// Whether CI is running this (`CI=true`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether a test can have what it needs: `Ok` is yes. A missing need
/// fails the test under `CI=true` (a test never passes by not running
/// there); elsewhere it is skipped, printing `SKIPPED: reason`.
pub fn needs(what: Result<(), String>) -> bool {
    match what {
        Ok(()) => true,
        Err(reason) if under_ci() => {
            panic!("{reason}; under CI=true this test must run, not skip")
        }
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            false
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A fresh scratch folder under the target directory, removed and remade.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A tiny ACGAN config: 32x16 bone phantoms, 8 per class.
pub fn tiny_gan_config(name: &str, epochs: u32, extra_train: &str) -> String {
    format!(
        r#"name = "{name}"
kind = "gan"
[data]
source = "phantom-bone"
image_size = [32, 16]
per_class = 10
[model]
arch = "acgan"
latent_dim = 8
base_channels = 4
[train]
epochs = {epochs}
batch_size = 4
device = "cpu"
log_every = 1
seed = 3
{extra_train}
"#
    )
}

/// Write `text` to `dir/file` and return the path.
pub fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write file");
    path
}

pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("spawn scintigan")
}

/// `scintigan ARGS` in `dir`, which must succeed (the test fails with the
/// arguments and stderr otherwise).
pub fn run_ok(dir: &Path, args: &[&str]) -> Output {
    let out = run_in(dir, args);
    assert!(
        out.status.success(),
        "scintigan {args:?} in {}: {}",
        dir.display(),
        stderr(&out)
    );
    out
}

/// `scintigan run FILE` in `dir`, stderr captured, once it has logged 5
/// training steps (fails the test after 60 s without them).
pub fn spawn_run_until_training(dir: &Path, file: &str) -> std::process::Child {
    let child = bin()
        .current_dir(dir)
        .args(["run", file])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let runs_dir = dir.join("runs");
    let started = wait_for(60, || {
        scintigan::store::list_runs(&runs_dir)
            .first()
            .is_some_and(|r| gan_losses(&events(r)).len() >= 5)
    });
    assert!(started, "no training steps within 60 s");
    child
}

/// `scintigan ARGS` in `dir`, started in the background, stderr dropped.
pub fn spawn_quiet(dir: &Path, args: &[&str]) -> std::process::Child {
    bin()
        .current_dir(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn scintigan")
}

/// The state of `run`'s latest checkpoint (the test fails without one).
pub fn latest_checkpoint(run: &RunDir) -> scintigan::store::CheckpointState {
    run.checkpoints()
        .latest()
        .expect("checkpoints readable")
        .expect("a checkpoint")
        .1
}

/// Send `sig` (`-INT`, `-KILL`...) to process `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

/// The only run directory under `dir/runs`.
pub fn only_run(dir: &Path) -> RunDir {
    let runs = scintigan::store::list_runs(&dir.join("runs"));
    assert_eq!(runs.len(), 1, "expected one run, found {}", runs.len());
    runs.into_iter().next().expect("one run")
}

pub fn events(run: &RunDir) -> Vec<EventRecord> {
    read_events(&run.events_path())
        .expect("read events")
        .records
}

/// `(step, g_loss)` of every GAN step event.
pub fn gan_losses(records: &[EventRecord]) -> Vec<(u64, f64)> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::GanStep { step, g_loss, .. } => Some((*step, *g_loss)),
            _ => None,
        })
        .collect()
}

/// Kill (SIGKILL) every process but this one whose command line mentions
/// `dir`: a test project's daemon and workers, whatever state they are in.
pub fn kill_processes_mentioning(dir: &Path) {
    let marker = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if pid != std::process::id() && String::from_utf8_lossy(&cmdline).contains(&marker) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Poll `cond` every 20 ms for up to `secs` seconds.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
