//! The daemon's state and every decision it takes: queueing config files,
//! starting, adopting and reaping workers, and the control requests. All of
//! it is synchronous; the server calls in under one lock.

mod jobs;

use super::Paths;
use super::process;
use super::protocol::{InvalidConfig, MoveTo, RunInfo, Snapshot};
use super::settings::Settings;
use super::slurm::JobInfo;
use super::state::{FileEntry, QueueState, Slot, WorkerRecord, content_hash};
use crate::config::{self, KnownRuns, RunSpec};
use crate::store::{self, ControlRequest, Event, EventWriter, RunDir, RunState, Status};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

/// A worker process the daemon watches: its own child, or one adopted from
/// a previous daemon.
#[derive(Debug)]
pub struct Worker {
    pub pid: u32,
    pub child: Option<Child>,
    pub slot: Slot,
}

#[derive(Debug, Clone)]
struct InvalidEntry {
    hash: String,
    errors: Vec<String>,
}

pub struct Core {
    pub paths: Paths,
    pub settings: Settings,
    state: QueueState,
    workers: BTreeMap<String, Worker>,
    invalid: BTreeMap<String, InvalidEntry>,
    /// Queued run id -> why it cannot start yet.
    held: BTreeMap<String, String>,
    /// Runs killed with `cancel --now`, so their end is not taken for a crash.
    killed: BTreeSet<String>,
    /// The worker executable (this binary).
    exe: PathBuf,
    /// GPUs to hand out, read once at start.
    gpus: usize,
    /// Something that may let a queued run start happened since the last
    /// look (the look reads every run's status and frozen config).
    queue_changed: bool,
    last_start_check: std::time::Instant,
    /// What Slurm last said about each followed job, by run id.
    job_info: BTreeMap<String, JobInfo>,
    /// When Slurm was last asked (`None`: ask at the next tick).
    last_job_poll: Option<std::time::Instant>,
    /// Runs followed until they end, for `on_finish`.
    finish_watch: super::on_finish::FinishWatch,
}

pub type Reply = Result<String, String>;

/// Set in a worker's environment when the daemon started it.
pub const UNDER_DAEMON: &str = "SCINTIGAN_UNDER_DAEMON";

impl Core {
    pub fn new(paths: Paths, settings: Settings) -> Result<Self, String> {
        if settings.executor == config::Executor::Slurm {
            super::slurm::check_commands()
                .map_err(|e| format!("{}: {e}", paths.settings_file().display()))?;
        }
        let state = QueueState::load(&paths.state_file())?;
        let gpus = settings.gpu_count();
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        Ok(Self {
            paths,
            settings,
            state,
            workers: BTreeMap::new(),
            invalid: BTreeMap::new(),
            held: BTreeMap::new(),
            killed: BTreeSet::new(),
            exe,
            gpus,
            queue_changed: true,
            last_start_check: std::time::Instant::now(),
            job_info: BTreeMap::new(),
            last_job_poll: None,
            finish_watch: Default::default(),
        })
    }

    /// A request or event may have made a queued run startable.
    pub fn mark_changed(&mut self) {
        self.queue_changed = true;
    }

    fn save(&self) {
        if let Err(e) = self.state.save(&self.paths.state_file()) {
            tracing::error!("cannot save {}: {e}", self.paths.state_file().display());
        }
    }

    fn run_dir(&self, id: &str) -> PathBuf {
        self.paths.runs.join(id)
    }

    /// Whether anything needs the executor to look soon.
    pub fn busy(&self) -> bool {
        !self.workers.is_empty() || !self.state.queue.is_empty() || !self.state.jobs.is_empty()
    }

    /// Workers and Slurm jobs not yet seen to end.
    pub fn live_workers(&self) -> usize {
        self.workers.len() + self.state.jobs.len()
    }

    // ----- config files -------------------------------------------------

    /// Read `configs/*.toml`, enqueue new valid contents and record invalid
    /// ones. Returns how long until a file still being written has settled
    /// (scan again then), if any is.
    pub fn scan_configs(&mut self) -> Option<Duration> {
        let settle = Duration::from_millis(self.settings.settle_ms);
        let mut wait: Option<Duration> = None;
        let mut present = BTreeSet::new();
        // (modified, name, path, hash, text): queued oldest file first.
        let mut ready: Vec<(SystemTime, String, PathBuf, String, String)> = Vec::new();
        let entries = match std::fs::read_dir(&self.paths.configs) {
            Ok(e) => e,
            Err(_) => return None,
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".toml") || !path.is_file() {
                continue;
            }
            present.insert(name.clone());
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let hash = content_hash(&bytes);
            if self.state.enqueued.contains(&format!("{name}:{hash}")) {
                self.invalid.remove(&name);
                continue;
            }
            if self.invalid.get(&name).is_some_and(|e| e.hash == hash) {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let age = SystemTime::now().duration_since(modified).unwrap_or(settle);
            if age < settle {
                let left = settle - age + Duration::from_millis(20);
                wait = Some(wait.map_or(left, |w| w.min(left)));
                continue;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            ready.push((modified, name, path, hash, text));
        }
        self.invalid.retain(|name, _| present.contains(name));
        ready.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        if !ready.is_empty() {
            let known = KnownRuns::scan(&self.paths.configs, Some(&self.paths.runs));
            let base = self.paths.project_root();
            for (_, name, path, hash, text) in ready {
                let stem = name.trim_end_matches(".toml").to_string();
                let shown = path.display().to_string();
                match config::parse_config(&shown, &text, &base, &stem, &known) {
                    Ok(spec) => {
                        self.invalid.remove(&name);
                        if let Some((id, state)) = self.run_outside_daemon(&spec) {
                            let again = match state {
                                RunState::Failed | RunState::Cancelled => {
                                    format!(
                                        "`scintigan retry {id}` continues it, or edit the file to run it anew"
                                    )
                                }
                                _ => "edit the file to run it anew".to_string(),
                            };
                            tracing::info!(
                                "{shown}: already run outside the daemon as {id} ({state}); not queued again ({again})"
                            );
                            self.record_file(&name, &hash, id);
                            continue;
                        }
                        if let Err(e) = self.enqueue(&name, &hash, &spec) {
                            tracing::error!("{shown}: cannot create its run: {e}");
                            self.invalid.insert(
                                name,
                                InvalidEntry {
                                    hash,
                                    errors: vec![format!("{shown}: cannot create its run: {e}")],
                                },
                            );
                        }
                    }
                    Err(errors) => {
                        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                        tracing::warn!("{shown}: invalid: {}", errors.join("; "));
                        self.invalid.insert(name, InvalidEntry { hash, errors });
                    }
                }
            }
            self.save();
        }
        wait
    }

    /// The newest run of exactly `spec` that this daemon did not create (a
    /// foreground `scintigan run configs/x.toml`, as `make demo` does
    /// without a terminal), with its state: its config is not queued again.
    fn run_outside_daemon(&self, spec: &RunSpec) -> Option<(String, RunState)> {
        let text = spec.to_toml().ok()?;
        let prefix = format!("{}-", spec.name);
        let ours: BTreeSet<&str> = self
            .state
            .files
            .values()
            .map(|f| f.run_id.as_str())
            .collect();
        store::list_runs(&self.paths.runs)
            .into_iter()
            .filter(|r| {
                let id = r.id();
                id.starts_with(&prefix) && !ours.contains(id.as_str())
            })
            .filter(|r| {
                std::fs::read_to_string(r.config_path()).is_ok_and(|frozen| {
                    let body = frozen
                        .strip_prefix('#')
                        .and_then(|rest| rest.split_once('\n'))
                        .map_or(frozen.as_str(), |(_, body)| body);
                    body == text
                })
            })
            .filter_map(|r| Some((r.id(), r.status().ok()?.state)))
            .max_by(|a, b| a.0.cmp(&b.0))
    }

    /// Queue the run of config file `name` with content `hash`. A new
    /// content of a file whose run has not started replaces that run;
    /// otherwise it is a new run (a revision).
    fn enqueue(&mut self, name: &str, hash: &str, spec: &RunSpec) -> Result<(), String> {
        let previous = self.state.files.get(name).cloned();
        let replace = previous.and_then(|p| {
            let pos = self.state.queue.iter().position(|id| *id == p.run_id)?;
            let run = RunDir::open(&self.run_dir(&p.run_id)).ok()?;
            let untouched = run.status().is_ok_and(|s| s.state == RunState::Queued)
                && !run.events_path().exists();
            untouched.then_some((pos, run))
        });
        let run = RunDir::create(&self.paths.runs, spec).map_err(|e| e.to_string())?;
        let id = run.id();
        match replace {
            Some((pos, old)) => {
                let old_id = old.id();
                tracing::info!("{name} changed before its run started: {old_id} replaced by {id}");
                let _ = std::fs::remove_dir_all(old.root());
                self.state.queue[pos] = id.clone();
                if let Some(p) = self.state.priorities.remove(&old_id) {
                    self.state.priorities.insert(id.clone(), p);
                }
            }
            None => {
                tracing::info!("{name}: queued as {id}");
                self.state.queue.push(id.clone());
            }
        }
        self.record_file(name, hash, id);
        self.queue_changed = true;
        Ok(())
    }

    /// Config file `name` with content `hash` stands for run `run_id`, and
    /// that content is never queued again.
    fn record_file(&mut self, name: &str, hash: &str, run_id: String) {
        self.state.files.insert(
            name.to_string(),
            FileEntry {
                hash: hash.to_string(),
                run_id,
            },
        );
        self.state.enqueued.insert(format!("{name}:{hash}"));
    }

    // ----- workers --------------------------------------------------------

    /// At start: take over the workers a previous daemon left running; runs
    /// that say they are running but have no live worker died with it.
    pub fn adopt(&mut self) {
        for run in store::list_runs(&self.paths.runs) {
            let Ok(status) = run.status() else { continue };
            let id = run.id();
            if self.has_job(&id) {
                // Followed through Slurm: the next poll reads its job.
                continue;
            }
            let live_state = matches!(status.state, RunState::Running)
                || (status.state == RunState::Paused && status.pid.is_some());
            if !live_state {
                continue;
            }
            let record = self.state.workers.get(&id).cloned();
            let pid = status.pid.or(record.as_ref().map(|r| r.pid));
            match pid {
                Some(pid) if process::is_worker_of(pid, run.root()) => {
                    let slot =
                        record.map_or_else(|| slot_of_device(status.device.as_deref()), |r| r.slot);
                    tracing::info!("adopted worker {pid} of {id}");
                    self.workers.insert(
                        id.clone(),
                        Worker {
                            pid,
                            child: None,
                            slot,
                        },
                    );
                    self.state.workers.insert(id, WorkerRecord { pid, slot });
                }
                _ => self.worker_ended(&id, "the worker was gone when the daemon started".into()),
            }
        }
        let live: BTreeSet<String> = self.workers.keys().cloned().collect();
        self.state.workers.retain(|id, _| live.contains(id));
        self.save();
    }

    /// Notice workers that ended and start queued runs on free slots.
    pub fn tick(&mut self) {
        let mut ended: Vec<(String, String)> = Vec::new();
        for (id, w) in &mut self.workers {
            match &mut w.child {
                Some(child) => match child.try_wait() {
                    Ok(Some(status)) => ended.push((id.clone(), process::describe_exit(status))),
                    Ok(None) => {}
                    Err(e) => ended.push((id.clone(), format!("cannot wait for it: {e}"))),
                },
                None => {
                    if !process::is_worker_of(w.pid, &self.paths.runs.join(id)) {
                        ended.push((id.clone(), "the adopted worker ended".into()));
                    }
                }
            }
        }
        for (id, how) in ended {
            self.workers.remove(&id);
            self.state.workers.remove(&id);
            self.worker_ended(&id, how);
            self.save();
            self.queue_changed = true;
        }
        self.poll_jobs();
        // Also every few seconds, for changes made outside the daemon (a
        // dependency finished by `scintigan run`, a status edited by hand).
        if self.queue_changed || self.last_start_check.elapsed() >= Duration::from_secs(2) {
            self.queue_changed = false;
            self.last_start_check = std::time::Instant::now();
            self.start_ready();
        }
        self.report_finished();
    }

    /// Log each followed run that ended, and run `on_finish` for it.
    fn report_finished(&mut self) {
        let live = self.state.queue.iter();
        let live = live
            .chain(self.workers.keys())
            .chain(self.state.jobs.keys());
        self.finish_watch.follow(live);
        for run in self.finish_watch.collect(&self.paths.runs) {
            tracing::info!("{} ended: {}", run.id, run.state);
            if !self.settings.on_finish.is_empty() {
                super::on_finish::spawn_hook(
                    &self.settings.on_finish,
                    &run,
                    Duration::from_secs_f64(self.settings.on_finish_timeout_seconds),
                    &self.paths.log_file(),
                );
            }
        }
    }

    /// A worker of run `id` is gone: if it recorded how it ended, that
    /// stands; otherwise it died, and the run goes back to the front of the
    /// queue to continue from its last checkpoint (up to max_retries).
    fn worker_ended(&mut self, id: &str, how: String) {
        let Ok(run) = RunDir::open(&self.run_dir(id)) else {
            return;
        };
        let Ok(mut status) = run.status() else { return };
        // Another process (a foreground `run --resume`, a second daemon's
        // worker) holds the run: it is alive, whatever our worker did.
        if let Some(holder) = crate::store::lock::holder(run.root()) {
            tracing::info!("worker of {id} ended ({how}); the run is worked by {holder}");
            return;
        }
        let died = status.state == RunState::Running
            || (status.state == RunState::Paused && status.pid.is_some());
        if !died {
            tracing::info!("worker of {id} finished: {} ({how})", status.state);
            return;
        }
        status.pid = None;
        let killed = self.killed.remove(id);
        let (level, message) = if killed {
            status.state = RunState::Cancelled;
            status.exit_reason =
                Some("killed on request (cancel --now); no checkpoint written".into());
            ("warn", status.exit_reason.clone().unwrap_or_default())
        } else if status.retries < self.settings.max_retries {
            status.retries += 1;
            status.state = RunState::Queued;
            status.exit_reason = Some(format!(
                "worker died ({how}); continuing from the last checkpoint (retry {} of {})",
                status.retries, self.settings.max_retries
            ));
            self.state.queue.retain(|q| q != id);
            self.state.queue.insert(0, id.to_string());
            ("warn", status.exit_reason.clone().unwrap_or_default())
        } else {
            status.state = RunState::Failed;
            status.exit_reason = Some(format!(
                "worker died ({how}) after {} restarts; not retried again (max_retries in {})",
                status.retries,
                self.paths.settings_file().display()
            ));
            ("error", status.exit_reason.clone().unwrap_or_default())
        };
        tracing::warn!("{id}: {message}");
        if let Err(e) = status.write(&run.status_path()) {
            tracing::error!("{id}: {e}");
        }
        // The worker is gone, so the daemon may append to its log.
        if let Ok(mut writer) = EventWriter::open(&run.events_path()) {
            let _ = writer.append(Event::Log {
                level: level.into(),
                message,
            });
        }
    }

    fn slot_free(&self, slot: Slot) -> bool {
        let used = self.workers.values().filter(|w| w.slot == slot).count();
        let limit = match slot {
            Slot::Cpu => self.settings.cpu_slots,
            Slot::Gpu(_) => self.settings.gpu_slots,
        };
        used < limit
    }

    /// The slot a run of `spec` can take now, if any.
    fn free_slot_for(&self, spec: &RunSpec) -> Option<Slot> {
        let first = spec
            .execution_order()
            .first()
            .map(|&i| spec.stage[i].train.device);
        let gpus = self.gpus;
        match first.unwrap_or(config::DeviceChoice::Auto) {
            config::DeviceChoice::Cpu => Some(Slot::Cpu).filter(|s| self.slot_free(*s)),
            config::DeviceChoice::Cuda(n) => Some(Slot::Gpu(n)).filter(|s| self.slot_free(*s)),
            config::DeviceChoice::Auto if gpus > 0 => {
                (0..gpus).map(Slot::Gpu).find(|s| self.slot_free(*s))
            }
            config::DeviceChoice::Auto => Some(Slot::Cpu).filter(|s| self.slot_free(*s)),
        }
    }

    fn any_slot_free(&self) -> bool {
        self.slot_free(Slot::Cpu) || (0..self.gpus).any(|g| self.slot_free(Slot::Gpu(g)))
    }

    /// Why run `spec` must wait for its dependencies, if it must.
    fn waiting_for(&self, spec: &RunSpec, table: &[(RunDir, Status)]) -> Option<String> {
        for dep in spec.external_deps() {
            let newest = table
                .iter()
                .filter(|(_, s)| s.name == dep)
                .max_by(|(_, a), (_, b)| a.created_at.total_cmp(&b.created_at));
            match newest {
                None => return Some(format!("waiting for a run named '{dep}' (none queued)")),
                Some((_, s)) if s.state == RunState::Done => {}
                Some((r, s)) if matches!(s.state, RunState::Failed | RunState::Cancelled) => {
                    return Some(format!(
                        "held: dependency '{dep}' ({}) is {}; retry it or edit this config",
                        r.id(),
                        s.state
                    ));
                }
                Some((r, s)) => {
                    return Some(format!("waiting for '{dep}' ({}, {})", r.id(), s.state));
                }
            }
        }
        None
    }

    fn start_ready(&mut self) {
        self.held.clear();
        if self.state.queue.is_empty() {
            return;
        }
        let table: Vec<(RunDir, Status)> = store::list_runs(&self.paths.runs)
            .into_iter()
            .filter_map(|r| r.status().ok().map(|s| (r, s)))
            .collect();
        let mut changed = false;
        for id in self.state.start_order() {
            let Some((run, status)) = table.iter().find(|(r, _)| r.id() == id) else {
                tracing::warn!("{id}: run directory gone; dropped from the queue");
                self.state.queue.retain(|q| *q != id);
                changed = true;
                continue;
            };
            match status.state {
                RunState::Queued => {}
                RunState::Paused => continue,
                _ => {
                    self.state.queue.retain(|q| *q != id);
                    changed = true;
                    continue;
                }
            }
            let spec = match run.spec() {
                Ok(s) => s,
                Err(e) => {
                    self.fail(run, format!("cannot start: {e}"));
                    self.state.queue.retain(|q| *q != id);
                    changed = true;
                    continue;
                }
            };
            if let Some(reason) = self.waiting_for(&spec, &table) {
                self.held.insert(id.clone(), reason);
                continue;
            }
            // A foreground `run --resume` (or another daemon's worker) has
            // it: a worker of ours would only be refused.
            if let Some(holder) = store::lock::holder(run.root()) {
                self.held.insert(
                    id.clone(),
                    format!("waiting: worked by {holder} outside this daemon"),
                );
                continue;
            }
            if spec.executor.unwrap_or(self.settings.executor) == config::Executor::Slurm {
                match self.submit_job(run, &spec) {
                    Ok(job) => tracing::info!("submitted {id} as Slurm job {job}"),
                    Err(e) => self.fail(run, format!("cannot submit its Slurm job: {e}")),
                }
                self.state.queue.retain(|q| *q != id);
                changed = true;
                continue;
            }
            if !self.any_slot_free() {
                continue;
            }
            let Some(slot) = self.free_slot_for(&spec) else {
                continue;
            };
            let auto = spec
                .execution_order()
                .first()
                .is_none_or(|&i| spec.stage[i].train.device == config::DeviceChoice::Auto);
            match self.spawn(run, slot, auto) {
                Ok(worker) => {
                    tracing::info!("started {id} (pid {}, {slot:?})", worker.pid);
                    self.state.workers.insert(
                        id.clone(),
                        WorkerRecord {
                            pid: worker.pid,
                            slot,
                        },
                    );
                    self.workers.insert(id.clone(), worker);
                }
                Err(e) => self.fail(run, format!("cannot start its worker: {e}")),
            }
            self.state.queue.retain(|q| *q != id);
            changed = true;
        }
        if changed {
            self.save();
        }
    }

    fn fail(&self, run: &RunDir, reason: String) {
        tracing::error!("{}: {reason}", run.id());
        if let Ok(mut s) = run.status() {
            s.state = RunState::Failed;
            s.exit_reason = Some(reason);
            let _ = s.write(&run.status_path());
        }
    }

    /// Start `scintigan worker RUN_DIR` in its own process group, its
    /// output appended to `worker.log`; a run on `device = "auto"` sees only
    /// the GPU of its slot.
    fn spawn(&self, run: &RunDir, slot: Slot, auto_device: bool) -> Result<Worker, String> {
        use std::os::unix::process::CommandExt;
        ControlRequest::default()
            .write(&run.control_path())
            .map_err(|e| format!("{}: {e}", run.control_path().display()))?;
        let mut status = run.status().map_err(|e| e.to_string())?;
        status.state = RunState::Running;
        status.pid = None;
        status.exit_reason = None;
        status
            .write(&run.status_path())
            .map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run.log_path())
            .map_err(|e| format!("{}: {e}", run.log_path().display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--runs-dir")
            .arg(&self.paths.runs)
            .arg("worker")
            .arg(run.root())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .env(UNDER_DAEMON, "1")
            .process_group(0);
        if let (Slot::Gpu(n), true) = (slot, auto_device) {
            cmd.env("CUDA_VISIBLE_DEVICES", n.to_string());
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", self.exe.display()))?;
        Ok(Worker {
            pid: child.id(),
            child: Some(child),
            slot,
        })
    }

    // ----- requests --------------------------------------------------------

    /// The run a user means by `key`: an id, a unique id prefix, or a config
    /// name (its newest run).
    pub fn resolve(&self, key: &str) -> Result<RunDir, String> {
        let runs = store::list_runs(&self.paths.runs);
        if let Some(r) = runs.iter().find(|r| r.id() == key) {
            return Ok(r.clone());
        }
        let by_name: Vec<(&RunDir, Status)> = runs
            .iter()
            .filter_map(|r| r.status().ok().map(|s| (r, s)))
            .filter(|(_, s)| s.name == key)
            .collect();
        if let Some((r, _)) = by_name
            .iter()
            .max_by(|(_, a), (_, b)| a.created_at.total_cmp(&b.created_at))
        {
            return Ok((*r).clone());
        }
        let prefixed: Vec<&RunDir> = runs.iter().filter(|r| r.id().starts_with(key)).collect();
        match prefixed.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(format!(
                "no run '{key}' under {}; `scintigan status` lists them",
                self.paths.runs.display()
            )),
            many => Err(format!(
                "'{key}' matches {} runs ({}); give more of the id",
                many.len(),
                many.iter().map(|r| r.id()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Whether run `id` (in `status`) has a worker that still takes
    /// requests: one that has recorded its end is only waiting to be reaped.
    fn live(&self, id: &str, status: &Status) -> bool {
        self.workers.contains_key(id)
            && matches!(status.state, RunState::Running | RunState::Paused)
    }

    fn request_control(&self, run: &RunDir, req: ControlRequest) -> Result<(), String> {
        req.write(&run.control_path())
            .map_err(|e| format!("{}: {e}", run.control_path().display()))
    }

    pub fn pause(&mut self, key: &str, release: bool) -> Reply {
        let run = self.resolve(key)?;
        let id = run.id();
        let mut status = run.status().map_err(|e| e.to_string())?;
        if self.has_job(&id) {
            return self.pause_job(&run, release);
        }
        if self.live(&id, &status) {
            self.request_control(
                &run,
                ControlRequest {
                    pause: true,
                    release,
                    cancel: false,
                },
            )?;
            return Ok(if release {
                format!(
                    "{id}: pausing at the next step; the worker checkpoints and exits, freeing its device"
                )
            } else {
                format!("{id}: pausing at the next step")
            });
        }
        match status.state {
            RunState::Queued => {
                status.state = RunState::Paused;
                status.exit_reason = Some("paused before it started".into());
                status
                    .write(&run.status_path())
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "{id}: paused in the queue; it will not start until resumed"
                ))
            }
            other => Err(format!(
                "{id} is {other}; only queued and running runs can be paused"
            )),
        }
    }

    pub fn resume(&mut self, key: &str) -> Reply {
        let run = self.resolve(key)?;
        let id = run.id();
        let mut status = run.status().map_err(|e| e.to_string())?;
        if self.live(&id, &status) || (self.has_job(&id) && status.pid.is_some()) {
            self.request_control(&run, ControlRequest::default())?;
            return Ok(format!("{id}: resuming"));
        }
        if self.has_job(&id) {
            return Err(format!(
                "{id}: its Slurm job has not ended yet; resume once it shows paused"
            ));
        }
        if status.state != RunState::Paused {
            return Err(format!(
                "{id} is {}; only paused runs can be resumed (use retry for failed or cancelled ones)",
                status.state
            ));
        }
        status.state = RunState::Queued;
        status.exit_reason = None;
        status
            .write(&run.status_path())
            .map_err(|e| e.to_string())?;
        if !self.state.queue.contains(&id) {
            self.state.queue.insert(0, id.clone());
        }
        self.save();
        Ok(format!("{id}: queued to continue from its last checkpoint"))
    }

    pub fn cancel(&mut self, key: &str, now: bool) -> Reply {
        let run = self.resolve(key)?;
        let id = run.id();
        let status = run.status().map_err(|e| e.to_string())?;
        if self.has_job(&id) {
            return self.cancel_job(&run, now);
        }
        if let Some(w) = self.workers.get(&id).filter(|_| self.live(&id, &status)) {
            let pid = w.pid as i32;
            if now {
                self.killed.insert(id.clone());
                process::signal(-pid, libc::SIGKILL);
                process::signal(pid, libc::SIGKILL);
                return Ok(format!("{id}: worker {pid} killed"));
            }
            // Through control.json only: a SIGTERM arriving after the worker
            // already saw the request counts as a second Ctrl-C and ends it
            // at once, without its checkpoint.
            self.request_control(
                &run,
                ControlRequest {
                    cancel: true,
                    ..Default::default()
                },
            )?;
            return Ok(format!(
                "{id}: stopping at the next step after a checkpoint"
            ));
        }
        let mut status = status;
        match status.state {
            RunState::Queued | RunState::Paused => {
                status.state = RunState::Cancelled;
                status.exit_reason = Some("cancelled before it finished, on request".into());
                status
                    .write(&run.status_path())
                    .map_err(|e| e.to_string())?;
                self.state.queue.retain(|q| *q != id);
                self.save();
                Ok(format!("{id}: cancelled"))
            }
            other => Err(format!("{id} is {other}; nothing to cancel")),
        }
    }

    pub fn retry(&mut self, key: &str) -> Reply {
        let run = self.resolve(key)?;
        let id = run.id();
        let mut status = run.status().map_err(|e| e.to_string())?;
        if self.live(&id, &status)
            || !matches!(status.state, RunState::Failed | RunState::Cancelled)
        {
            return Err(format!(
                "{id} is {}; only failed or cancelled runs can be retried",
                status.state
            ));
        }
        status.state = RunState::Queued;
        status.exit_reason = None;
        status.retries = 0;
        status
            .write(&run.status_path())
            .map_err(|e| e.to_string())?;
        self.state.queue.retain(|q| *q != id);
        self.state.queue.insert(0, id.clone());
        self.save();
        Ok(format!("{id}: queued to continue from its last checkpoint"))
    }

    pub fn move_run(&mut self, key: &str, to: MoveTo) -> Reply {
        let run = self.resolve(key)?;
        let id = run.id();
        let Some(pos) = self.state.queue.iter().position(|q| *q == id) else {
            return Err(format!(
                "{id} is not in the queue; only queued runs can be moved"
            ));
        };
        let item = self.state.queue.remove(pos);
        let new = match to {
            MoveTo::Up => pos.saturating_sub(1),
            MoveTo::Down => (pos + 1).min(self.state.queue.len()),
            MoveTo::Top => 0,
            MoveTo::Bottom => self.state.queue.len(),
        };
        self.state.queue.insert(new, item);
        self.save();
        Ok(format!(
            "{id}: now at place {} of {}",
            new + 1,
            self.state.queue.len()
        ))
    }

    pub fn set_priority(&mut self, key: &str, priority: i32) -> Reply {
        let run = self.resolve(key)?;
        let id = run.id();
        if !self.state.queue.contains(&id) {
            return Err(format!(
                "{id} is not in the queue; priorities order queued runs"
            ));
        }
        if priority == 0 {
            self.state.priorities.remove(&id);
        } else {
            self.state.priorities.insert(id.clone(), priority);
        }
        self.save();
        Ok(format!("{id}: priority {priority}"))
    }

    /// Validate `text` and write it as `configs/<file_name>`.
    pub fn submit(&mut self, file_name: &str, text: &str) -> Reply {
        let valid_name = file_name.ends_with(".toml")
            && !file_name.starts_with('.')
            && !file_name.contains('/')
            && file_name.len() > ".toml".len();
        if !valid_name {
            return Err(format!(
                "'{file_name}': expected a plain file name ending in .toml"
            ));
        }
        let path = self.paths.configs.join(file_name);
        let known = KnownRuns::scan(&self.paths.configs, Some(&self.paths.runs));
        let stem = file_name.trim_end_matches(".toml");
        let shown = path.display().to_string();
        config::parse_config(&shown, text, &self.paths.project_root(), stem, &known).map_err(
            |errs| {
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        )?;
        std::fs::create_dir_all(&self.paths.configs).map_err(|e| format!("{shown}: {e}"))?;
        store::write_atomic(&path, text.as_bytes()).map_err(|e| format!("{shown}: {e}"))?;
        Ok(format!(
            "wrote {shown}; it is queued once the watcher reads it"
        ))
    }

    /// Ask every live worker to checkpoint and exit (paused, device released).
    pub fn stop_all_runs(&mut self) {
        self.stop_all_jobs();
        for id in self.workers.keys() {
            let run_dir = self.paths.runs.join(id);
            if let Ok(run) = RunDir::open(&run_dir) {
                let _ = self.request_control(
                    &run,
                    ControlRequest {
                        pause: true,
                        release: true,
                        cancel: false,
                    },
                );
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = store::unix_now();
        let order = self.state.start_order();
        let mut runs: Vec<RunInfo> = Vec::new();
        for run in store::list_runs(&self.paths.runs) {
            let Ok(s) = run.status() else { continue };
            let id = run.id();
            let position = order.iter().position(|q| *q == id).map(|p| p + 1);
            let job = self.job_view(&id);
            let live = self.workers.contains_key(&id) || (job.is_some() && s.pid.is_some());
            let stalled = live
                && s.heartbeat
                    .is_some_and(|h| now - h > self.settings.stall_seconds);
            let config_file = self
                .state
                .files
                .iter()
                .find(|(_, e)| e.run_id == id)
                .map(|(f, _)| f.clone());
            let pending_reason = job.as_ref().and_then(|j| j.pending_reason.clone());
            let reason = match (s.state, self.held.get(&id)) {
                (RunState::Queued, Some(held)) => Some(held.clone()),
                _ if pending_reason.is_some() => {
                    pending_reason.map(|r| format!("pending in Slurm: {r}"))
                }
                _ => s.exit_reason.clone(),
            };
            let pending = job.as_ref().is_some_and(|j| {
                s.pid.is_none() && matches!(j.state.as_str(), "PENDING" | "SUBMITTED")
            });
            let executor = if job.is_some() || s.slurm_job.is_some() {
                config::Executor::Slurm
            } else {
                config::Executor::Local
            };
            runs.push(RunInfo {
                id: id.clone(),
                name: s.name.clone(),
                state: if pending {
                    "pending".to_string()
                } else {
                    s.state.to_string()
                },
                position,
                priority: self.state.priority(&id),
                reason,
                stalled,
                pid: if live {
                    self.workers.get(&id).map(|w| w.pid).or(s.pid)
                } else {
                    None
                },
                device: s.device.clone(),
                stage: s.stage.clone(),
                epoch: s.epoch,
                step: s.step,
                stage_steps: s.stage_steps,
                retries: s.retries,
                config_file,
                created_at: s.created_at,
                updated_at: s.updated_at,
                heartbeat: s.heartbeat,
                executor: Some(executor.as_str().to_string()),
                job_id: job
                    .as_ref()
                    .map(|j| j.job_id.clone())
                    .or(s.slurm_job.clone()),
                node: job.as_ref().and_then(|j| j.node.clone()),
                job_state: job.as_ref().map(|j| j.state.clone()),
            });
        }
        let rank = |r: &RunInfo| match (r.pid.is_some(), r.position) {
            (true, _) => (0, 0),
            (false, Some(p)) => (1, p),
            (false, None) => (2, 0),
        };
        runs.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.id.cmp(&b.id)));
        Snapshot {
            daemon_pid: std::process::id(),
            runs_dir: self.paths.runs.display().to_string(),
            configs_dir: self.paths.configs.display().to_string(),
            runs,
            invalid_configs: self
                .invalid
                .iter()
                .map(|(file, e)| InvalidConfig {
                    file: file.clone(),
                    errors: e.errors.clone(),
                })
                .collect(),
        }
    }
}

/// The slot an adopted worker holds, from the device its status names.
fn slot_of_device(device: Option<&str>) -> Slot {
    match device
        .and_then(|d| d.strip_prefix("cuda:"))
        .and_then(|n| n.parse().ok())
    {
        Some(n) => Slot::Gpu(n),
        None => Slot::Cpu,
    }
}
