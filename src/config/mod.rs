//! Run configs: the TOML schema users write, its validation with
//! `file:line:col` errors, and the frozen form a run directory keeps.
//!
//! A file holds either one stage at the top level:
//! ```toml
//! name = "bone-acgan"
//! kind = "gan"
//! [data]
//! source = "phantom-bone"
//! [train]
//! epochs = 5
//! ```
//! or a pipeline of `[[stage]]` tables, each with `name`, `kind`, `after`,
//! `init_from`, `[stage.data]`, `[stage.model]` and `[stage.train]`.

mod error;
mod raw;
pub mod slurm;
mod spec;
pub mod sweep;
mod validate;

pub use error::{ConfigError, Source};
pub use slurm::{Executor, SlurmOptions};
pub use spec::*;
pub use validate::{KnownRuns, sanitize_name};

use std::path::{Path, PathBuf};

impl RunSpec {
    /// Runs (outside this file) that must finish before this one starts.
    pub fn external_deps(&self) -> Vec<String> {
        let local: Vec<&str> = self.stage.iter().map(|s| s.name.as_str()).collect();
        let mut deps: Vec<String> = Vec::new();
        let mut add = |d: &str| {
            if !local.contains(&d) && !deps.iter().any(|x| x == d) {
                deps.push(d.to_string());
            }
        };
        self.after.iter().for_each(|d| add(d));
        for s in &self.stage {
            s.after.iter().for_each(|d| add(d));
            if let Some(InitFrom::Run(name)) = &s.init_from {
                add(name);
            }
            if let Some(g) = &s.data.gan_samples {
                add(g.strip_prefix("run:").unwrap_or(g));
            }
        }
        deps.sort();
        deps
    }

    /// The frozen TOML text a run directory keeps: always the pipeline form,
    /// every default filled in, itself a valid config.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Stage indices in execution order: file order, except that a stage
    /// listed in another's `after` (or named by its
    /// `init_from = "run:..."`) runs first.
    pub fn execution_order(&self) -> Vec<usize> {
        let mut done: Vec<usize> = Vec::new();
        while done.len() < self.stage.len() {
            let before = done.len();
            for (i, stage) in self.stage.iter().enumerate() {
                if done.contains(&i) {
                    continue;
                }
                let init_dep = match &stage.init_from {
                    Some(InitFrom::Run(name)) => Some(name),
                    _ => None,
                };
                let samples_dep = stage
                    .data
                    .gan_samples
                    .as_ref()
                    .and_then(|g| g.strip_prefix("run:"));
                let ready = stage
                    .after
                    .iter()
                    .chain(init_dep)
                    .map(String::as_str)
                    .chain(samples_dep)
                    .all(|dep| match self.stage.iter().position(|s| s.name == dep) {
                        Some(j) => done.contains(&j),
                        None => true,
                    });
                if ready {
                    done.push(i);
                }
            }
            if done.len() == before {
                // A cycle; validation rejects these, but never loop forever.
                let rest: Vec<usize> = (0..self.stage.len())
                    .filter(|i| !done.contains(i))
                    .collect();
                done.extend(rest);
            }
        }
        done
    }
}

/// Parse and validate config text. `file` is the name shown in errors;
/// relative paths inside are resolved against `base_dir`.
pub fn parse_config(
    file: &str,
    text: &str,
    base_dir: &Path,
    default_name: &str,
    known: &KnownRuns,
) -> Result<RunSpec, Vec<ConfigError>> {
    let ctx = validate::Context {
        src: Source { file, text },
        base_dir,
        default_name,
        known,
    };
    validate::parse(&ctx)
}

/// Read, parse and validate a config file, naming it as given in errors.
pub fn load_config(path: &Path, known: &KnownRuns) -> Result<RunSpec, Vec<ConfigError>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::File {
            file: shown.clone(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    let base_dir = config_base_dir(path);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string();
    parse_config(&shown, &text, &base_dir, &stem, known)
}

/// The directory a config's relative paths are resolved against: the
/// project root for files in `configs/` (its parent), else the file's own
/// directory.
pub fn config_base_dir(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "configs") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

impl KnownRuns {
    /// The runs a config in `dir` may refer to: the other top-level configs
    /// of that directory (by `name`, else file stem, with their `after`) and
    /// the runs recorded under `runs_dir`.
    pub fn scan(dir: &Path, runs_dir: Option<&Path>) -> Self {
        let mut known = KnownRuns::default();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                    let (name, after) = lenient_name_and_after(&path);
                    known.deps.entry(name).or_default().extend(after);
                }
            }
        }
        if let Some(runs) = runs_dir {
            for name in crate::store::recorded_run_names(runs) {
                known.deps.entry(name).or_default();
            }
        }
        known
    }
}

/// A config's run name and dependencies, read without full validation (for
/// sibling files that may themselves be invalid).
fn lenient_name_and_after(path: &Path) -> (String, Vec<String>) {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    let table: Option<toml::Table> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse().ok());
    let name = table
        .as_ref()
        .and_then(|t| t.get("name"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| sanitize_name(stem));
    let mut after: Vec<String> = Vec::new();
    let strings = |v: Option<&toml::Value>| -> Vec<String> {
        v.and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(t) = &table {
        after.extend(strings(t.get("after")));
        let stages = t.get("stage").and_then(|s| s.as_array());
        let stage_names: Vec<String> = stages
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect();
        for s in stages.into_iter().flatten() {
            after.extend(
                strings(s.get("after"))
                    .into_iter()
                    .filter(|a| !stage_names.contains(a)),
            );
        }
    }
    (name, after)
}

#[cfg(test)]
mod tests;
