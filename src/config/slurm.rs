//! Where a run's worker runs (`executor`) and, on a Slurm cluster, what its
//! job asks for (`[slurm]`). The same table is read from the daemon's
//! `daemon.toml` (defaults for every run) and from a run config (its own
//! overrides, field by field).
//!
//! ```toml
//! executor = "slurm"
//! [slurm]
//! partition = "gpu"
//! account = "nucmed"
//! qos = "normal"
//! gres = "gpu:1"
//! cpus = 8            # --cpus-per-task
//! mem = "32G"
//! time = "1-00:00:00" # Slurm's formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
//! signal_lead = 120   # seconds before the time limit the worker checkpoints (0: off)
//! extra = ["--constraint=a100", "--exclusive"]
//! ```
//!
//! Every value becomes one `sbatch` argument (no shell ever sees it), and
//! `extra` takes only the flags in [`ALLOWED_EXTRA`]: flags that would change
//! what the job runs, where it writes or how it is tracked are refused.

use serde::{Deserialize, Serialize};

/// Where the daemon runs a run's worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    /// A child process of the daemon, on this machine.
    #[default]
    Local,
    /// A Slurm batch job (`sbatch`), on the cluster's nodes.
    Slurm,
}

impl Executor {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "local" => Some(Self::Local),
            "slurm" => Some(Self::Slurm),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Slurm => "slurm",
        }
    }
}

/// `extra` flags a config may pass to `sbatch`, as `--flag` or
/// `--flag=value`.
pub const ALLOWED_EXTRA: &[&str] = &[
    "--constraint",
    "--exclude",
    "--nodelist",
    "--reservation",
    "--exclusive",
    "--gpus",
    "--gpus-per-node",
    "--gpus-per-task",
    "--cpus-per-gpu",
    "--mem-per-gpu",
    "--mem-per-cpu",
    "--licenses",
    "--nice",
    "--comment",
    "--mail-type",
    "--mail-user",
    "--hint",
    "--tmp",
    "--begin",
    "--deadline",
];

/// A job's requests; every field optional (Slurm's own default then).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// Generic resources, e.g. `gpu:1` or `gpu:a100:2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gres: Option<String>,
    /// CPUs per task (`--cpus-per-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory per node, e.g. `32G` or `16000M` (`--mem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Time limit in one of Slurm's formats (`--time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Seconds before the time limit at which Slurm sends the worker
    /// SIGUSR1 so it checkpoints and asks to be resubmitted (0: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_lead: Option<u32>,
    /// Further `sbatch` flags, from [`ALLOWED_EXTRA`] only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

impl SlurmOptions {
    /// These options with every field `over` sets taken from it; `extra`
    /// flags of both, ours first.
    pub fn overridden_by(&self, over: &SlurmOptions) -> SlurmOptions {
        let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
        SlurmOptions {
            partition: pick(&self.partition, &over.partition),
            account: pick(&self.account, &over.account),
            qos: pick(&self.qos, &over.qos),
            gres: pick(&self.gres, &over.gres),
            cpus: over.cpus.or(self.cpus),
            mem: pick(&self.mem, &over.mem),
            time: pick(&self.time, &over.time),
            signal_lead: over.signal_lead.or(self.signal_lead),
            extra: self.extra.iter().chain(&over.extra).cloned().collect(),
        }
    }

    /// Every problem, as (field, what is wrong and what would be right).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let words = [
            ("partition", &self.partition),
            ("account", &self.account),
            ("qos", &self.qos),
            ("gres", &self.gres),
        ];
        for (field, value) in words {
            if let Some(v) = value
                && !is_plain_value(v)
            {
                out.push((
                    field,
                    format!(
                        "'{v}' is not a plain Slurm value; expected letters, digits and . _ - : , = / + @ only"
                    ),
                ));
            }
        }
        if self.cpus == Some(0) {
            out.push(("cpus", "0 CPUs; expected at least 1".to_string()));
        }
        if let Some(m) = &self.mem
            && !is_memory(m)
        {
            out.push((
                "mem",
                format!(
                    "'{m}' is not a memory size; expected a number with K, M, G or T, e.g. 32G"
                ),
            ));
        }
        if let Some(t) = &self.time
            && !is_time_limit(t)
        {
            out.push((
                "time",
                format!(
                    "'{t}' is not a Slurm time limit; expected MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
                ),
            ));
        }
        for flag in &self.extra {
            if let Err(e) = check_extra(flag) {
                out.push(("extra", e));
            }
        }
        out
    }

    /// The `sbatch` arguments these options stand for, one flag each.
    pub fn sbatch_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut add = |flag: &str, value: &Option<String>| {
            if let Some(v) = value {
                args.push(format!("--{flag}={v}"));
            }
        };
        add("partition", &self.partition);
        add("account", &self.account);
        add("qos", &self.qos);
        add("gres", &self.gres);
        add("cpus-per-task", &self.cpus.map(|c| c.to_string()));
        add("mem", &self.mem);
        add("time", &self.time);
        if let Some(lead) = self.signal_lead.filter(|&l| l > 0) {
            args.push(format!("--signal=B:USR1@{lead}"));
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

fn is_plain_value(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with('-')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:,=/+@".contains(c))
}

fn is_memory(v: &str) -> bool {
    let digits = v.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    !digits.is_empty() && digits.len() + 1 >= v.len() && digits.chars().all(|c| c.is_ascii_digit())
}

/// Slurm's `--time` formats, or `UNLIMITED`/`INFINITE`.
fn is_time_limit(v: &str) -> bool {
    if matches!(v, "UNLIMITED" | "INFINITE" | "unlimited" | "infinite") {
        return true;
    }
    let number = |s: &str| !s.is_empty() && s.len() <= 6 && s.chars().all(|c| c.is_ascii_digit());
    let (days, clock) = match v.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, v),
    };
    if days.is_some_and(|d| !number(d)) {
        return false;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    !parts.is_empty() && parts.len() <= 3 && parts.iter().all(|p| number(p))
}

fn check_extra(flag: &str) -> Result<(), String> {
    let (name, value) = match flag.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (flag, None),
    };
    if !ALLOWED_EXTRA.contains(&name) {
        return Err(format!(
            "'{flag}' is not an allowed sbatch flag; expected one of {}",
            ALLOWED_EXTRA.join(", ")
        ));
    }
    if let Some(v) = value
        && !is_plain_value(v)
    {
        return Err(format!(
            "'{flag}': the value is not a plain Slurm value; expected letters, digits and . _ - : , = / + @ only"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_one_sbatch_flag_each_and_runs_override_the_daemon() {
        let daemon = SlurmOptions {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            time: Some("1-00:00:00".into()),
            extra: vec!["--exclusive".into()],
            ..Default::default()
        };
        let run = SlurmOptions {
            time: Some("30".into()),
            cpus: Some(8),
            signal_lead: Some(90),
            extra: vec!["--constraint=a100".into()],
            ..Default::default()
        };
        let merged = daemon.overridden_by(&run);
        assert!(merged.problems().is_empty());
        assert_eq!(
            merged.sbatch_args(),
            [
                "--partition=gpu",
                "--gres=gpu:1",
                "--cpus-per-task=8",
                "--time=30",
                "--signal=B:USR1@90",
                "--exclusive",
                "--constraint=a100"
            ]
        );
    }

    #[test]
    fn values_that_could_smuggle_flags_or_shell_are_refused() {
        let bad = SlurmOptions {
            partition: Some("gpu --wrap=rm".into()),
            account: Some("--output=/etc/x".into()),
            mem: Some("lots".into()),
            time: Some("1:2:3:4".into()),
            cpus: Some(0),
            extra: vec![
                "--wrap=id".into(),
                "--output=/tmp/x".into(),
                "--constraint=a100;id".into(),
            ],
            ..Default::default()
        };
        let fields: Vec<&str> = bad.problems().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [
                "partition",
                "account",
                "cpus",
                "mem",
                "time",
                "extra",
                "extra",
                "extra"
            ]
        );
        for ok in [
            "5",
            "5:00",
            "02:00:00",
            "1-0",
            "1-02:00",
            "2-00:00:00",
            "UNLIMITED",
        ] {
            assert!(is_time_limit(ok), "{ok}");
        }
        for ok in ["32G", "16000M", "512", "1T"] {
            assert!(is_memory(ok), "{ok}");
        }
    }
}
