//! `runs/.daemon/daemon.toml`: the daemon's own settings, all optional.
//!
//! ```toml
//! cpu_slots = 1          # runs at a time on the CPU (0: queue only, start nothing)
//! gpu_slots = 1          # runs at a time on each GPU
//! gpus = 2               # GPUs to use; default: those the NVIDIA driver lists
//! max_retries = 2        # times a worker that died is restarted from its checkpoint
//! stall_seconds = 120    # a running worker silent this long is shown as stalled
//! settle_ms = 750        # a config file is read once unchanged this long
//! executor = "local"     # or "slurm": workers run as Slurm batch jobs
//! slurm_poll_seconds = 5 # how often squeue is asked about our jobs
//! slurm_cancel_grace_seconds = 120  # after `cancel`, scancel a job still alive this long
//! on_finish = ["notify-send", "run ended"]  # run (no shell) when a run ends; see on_finish.rs
//! on_finish_timeout_seconds = 60            # then it is killed
//! [slurm]                # job requests for every run (a run's [slurm] overrides)
//! partition = "gpu"
//! gres = "gpu:1"
//! time = "1-00:00:00"
//! ```
//!
//! The `[slurm]` keys are those of a run config's `[slurm]` table
//! (`crate::config::slurm`).

use crate::config::{Executor, SlurmOptions};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub cpu_slots: usize,
    pub gpu_slots: usize,
    pub gpus: Option<usize>,
    pub max_retries: u32,
    pub stall_seconds: f64,
    pub settle_ms: u64,
    pub executor: Executor,
    pub slurm: SlurmOptions,
    pub slurm_poll_seconds: f64,
    pub slurm_cancel_grace_seconds: f64,
    /// A program and its arguments to run when a run ends (empty: none).
    pub on_finish: Vec<String>,
    pub on_finish_timeout_seconds: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cpu_slots: 1,
            gpu_slots: 1,
            gpus: None,
            max_retries: 2,
            stall_seconds: 120.0,
            settle_ms: 750,
            executor: Executor::Local,
            slurm: SlurmOptions::default(),
            slurm_poll_seconds: 5.0,
            slurm_cancel_grace_seconds: 120.0,
            on_finish: Vec::new(),
            on_finish_timeout_seconds: 60.0,
        }
    }
}

impl Settings {
    /// The settings in `path`, defaults when it does not exist; an invalid
    /// file is an error naming the file, line and column.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let settings: Self = toml::from_str(&text).map_err(|e| {
            let file = path.to_string_lossy();
            let src = crate::config::Source {
                file: &file,
                text: &text,
            };
            let (line, col) = e.span().map_or((1, 1), |s| src.line_col(s.start));
            format!(
                "{}:{line}:{col}: {}; expected the keys cpu_slots, gpu_slots, gpus, max_retries, stall_seconds, settle_ms, executor, slurm_poll_seconds, slurm_cancel_grace_seconds, on_finish, on_finish_timeout_seconds and a [slurm] table",
                path.display(),
                e.message().lines().next().unwrap_or("invalid TOML")
            )
        })?;
        if let Some((field, problem)) = settings.slurm.problems().into_iter().next() {
            return Err(format!("{}: slurm.{field}: {problem}", path.display()));
        }
        if settings.slurm_poll_seconds.is_nan() || settings.slurm_poll_seconds < 0.2 {
            return Err(format!(
                "{}: slurm_poll_seconds = {}; expected at least 0.2",
                path.display(),
                settings.slurm_poll_seconds
            ));
        }
        if settings
            .on_finish
            .first()
            .is_some_and(|p| p.trim().is_empty())
        {
            return Err(format!(
                "{}: on_finish starts with an empty program name; expected [\"program\", \"arg\", ...]",
                path.display()
            ));
        }
        let timeout = settings.on_finish_timeout_seconds;
        if !timeout.is_finite() || !(0.1..=86_400.0).contains(&timeout) {
            return Err(format!(
                "{}: on_finish_timeout_seconds = {timeout}; expected 0.1 to 86400",
                path.display()
            ));
        }
        Ok(settings)
    }

    /// GPUs the daemon may hand out: the setting, else the count the NVIDIA
    /// driver lists under /proc (the daemon never initialises CUDA itself).
    pub fn gpu_count(&self) -> usize {
        self.gpus.unwrap_or_else(|| {
            std::fs::read_dir("/proc/driver/nvidia/gpus")
                .map(|d| d.flatten().count())
                .unwrap_or(0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_finish_is_a_program_and_its_arguments_with_a_timeout() {
        let dir = std::env::temp_dir().join(format!("scintigan-onfinish-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("daemon.toml");
        std::fs::write(&path, "on_finish = [\"notify-send\", \"ended\"]\n").unwrap();
        let s = Settings::load(&path).unwrap();
        assert_eq!(s.on_finish, ["notify-send", "ended"]);
        assert_eq!(s.on_finish_timeout_seconds, 60.0);
        std::fs::write(&path, "on_finish = \"notify-send ended\"\n").unwrap();
        let err = Settings::load(&path).unwrap_err();
        assert!(
            err.contains("daemon.toml:1:13:") && err.contains("expected a sequence"),
            "{err}"
        );
        std::fs::write(&path, "on_finish = [\"\", \"x\"]\n").unwrap();
        let err = Settings::load(&path).unwrap_err();
        assert!(err.contains("empty program name"), "{err}");
        std::fs::write(&path, "on_finish_timeout_seconds = 0\n").unwrap();
        let err = Settings::load(&path).unwrap_err();
        assert!(
            err.contains("on_finish_timeout_seconds = 0; expected 0.1 to 86400"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_keys_are_reported_with_their_place() {
        let dir = std::env::temp_dir().join(format!("scintigan-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("daemon.toml");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        std::fs::write(&path, "cpu_slots = 2\ncpu_slot = 3\n").unwrap();
        let err = Settings::load(&path).unwrap_err();
        assert!(
            err.contains("daemon.toml:2:1: unknown field `cpu_slot`"),
            "{err}"
        );
        std::fs::write(&path, "cpu_slots = 0\nmax_retries = 5\n").unwrap();
        let s = Settings::load(&path).unwrap();
        assert_eq!((s.cpu_slots, s.max_retries), (0, 5));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
