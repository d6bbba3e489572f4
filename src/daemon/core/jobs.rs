//! The Slurm executor's half of [`Core`]: submitting a run's worker as a
//! batch job, following the job with `squeue`, reading how it ended, and
//! the control requests mapped onto Slurm.
//!
//! A job's end is read from two sides: what the worker recorded in
//! `status.json` (done, failed, stopped after a checkpoint) and Slurm's
//! final state. TIMEOUT, PREEMPTED and NODE_FAIL (and a worker that asked
//! to be resubmitted ahead of its time limit) send the run back to the
//! queue to continue from its checkpoint, up to `max_retries`; Slurm's own
//! requeue is turned off because it would restart the job blind to that
//! count.

use super::Core;
use crate::daemon::slurm::{self, JobInfo};
use crate::daemon::state::{JobRecord, JobRequest};
use crate::store::{self, ControlRequest, Event, EventWriter, RunDir, RunState};
use std::time::{Duration, Instant};

impl Core {
    /// Submit run `run` as a Slurm job with the daemon's `[slurm]` options
    /// overridden by the run's.
    pub(super) fn submit_job(
        &mut self,
        run: &RunDir,
        spec: &crate::config::RunSpec,
    ) -> Result<String, String> {
        let options = match &spec.slurm {
            Some(own) => self.settings.slurm.overridden_by(own),
            None => self.settings.slurm.clone(),
        };
        slurm::check_commands()?;
        ControlRequest::default()
            .write(&run.control_path())
            .map_err(|e| format!("{}: {e}", run.control_path().display()))?;
        let script = run.root().join("slurm-job.sh");
        let text = slurm::batch_script(&self.exe, &self.paths.runs, run.root(), &run.id());
        store::write_atomic(&script, text.as_bytes())
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let mut status = run.status().map_err(|e| e.to_string())?;
        let job_id = slurm::submit(&script, run.root(), &spec.name, &options)?;
        status.state = RunState::Running;
        status.pid = None;
        status.exit_reason = None;
        status.slurm_job = Some(job_id.clone());
        status
            .write(&run.status_path())
            .map_err(|e| e.to_string())?;
        let id = run.id();
        self.state.jobs.insert(
            id.clone(),
            JobRecord {
                job_id: job_id.clone(),
                requested: None,
                cancel_sent_at: None,
            },
        );
        self.job_info.remove(&id);
        // Look at it soon: a job on an idle cluster starts within seconds.
        self.last_job_poll = None;
        Ok(job_id)
    }

    /// Every poll interval: ask Slurm about our jobs, handle those that
    /// ended, and end cancelled ones whose worker did not stop in time.
    pub(super) fn poll_jobs(&mut self) {
        if self.state.jobs.is_empty() {
            return;
        }
        let every = Duration::from_secs_f64(self.settings.slurm_poll_seconds);
        if self.last_job_poll.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_job_poll = Some(Instant::now());
        let ids: Vec<String> = self.state.jobs.values().map(|j| j.job_id.clone()).collect();
        let answers = match slurm::query(&ids) {
            Ok(a) => a,
            Err(e) => {
                // The controller may be restarting: keep the jobs, ask again.
                tracing::warn!("cannot ask Slurm about jobs {}: {e}", ids.join(","));
                return;
            }
        };
        let now = store::unix_now();
        let grace = self.settings.slurm_cancel_grace_seconds;
        let mut ended: Vec<(String, Option<JobInfo>)> = Vec::new();
        for (id, job) in &self.state.jobs {
            match answers.get(&job.job_id) {
                Some(info) if info.ended() => ended.push((id.clone(), Some(info.clone()))),
                Some(info) => {
                    if job.cancel_sent_at.is_some_and(|t| now - t > grace) {
                        tracing::warn!(
                            "{id}: Slurm job {} still {} {grace} s after the stop signal; cancelling it",
                            job.job_id,
                            info.state
                        );
                        if let Err(e) = slurm::cancel(&job.job_id, false) {
                            tracing::error!("{id}: {e}");
                        }
                    }
                    self.job_info.insert(id.clone(), info.clone());
                }
                // Neither squeue nor sacct knows it any more: it ended long
                // ago (the daemon was down) or the controller lost it.
                None => ended.push((id.clone(), None)),
            }
        }
        for (id, info) in ended {
            self.job_ended(&id, info);
        }
    }

    /// Run `id`'s job has ended with Slurm state `info` (unknown: `None`).
    fn job_ended(&mut self, id: &str, info: Option<JobInfo>) {
        let Some(job) = self.state.jobs.remove(id) else {
            return;
        };
        self.job_info.remove(id);
        self.queue_changed = true;
        let slurm_state = info
            .as_ref()
            .map_or("an unknown state", |i| i.state.as_str());
        let what = format!("Slurm job {} ended {slurm_state}", job.job_id);
        let Ok(run) = RunDir::open(&self.run_dir(id)) else {
            self.save();
            return;
        };
        let Ok(mut status) = run.status() else {
            self.save();
            return;
        };
        let worker_recorded = matches!(
            status.state,
            RunState::Done | RunState::Failed | RunState::Cancelled | RunState::Paused
        ) && status.pid.is_none();
        let by_cluster = info.as_ref().is_some_and(JobInfo::ended_by_cluster);
        let cancelled_outside =
            info.as_ref().is_some_and(|i| i.state == "CANCELLED") && job.requested.is_none();
        // Where a continuation would start: the newest checkpoint on disk.
        let checkpoint = match run.checkpoints().latest() {
            Ok(Some((_, c))) => {
                format!("last checkpoint kept: stage '{}' step {}", c.stage, c.step)
            }
            Ok(None) => "no checkpoint written yet".to_string(),
            Err(e) => format!("checkpoints unreadable: {e}"),
        };
        // The worker's own words when it recorded ending in `state`.
        let recorded_as = |state: RunState| {
            status
                .exit_reason
                .clone()
                .filter(|_| worker_recorded && status.state == state)
        };
        let (state, reason, level) = match (job.requested, status.state) {
            (_, RunState::Done) => {
                tracing::info!("{id}: {what}; the run is done");
                self.save();
                return;
            }
            (_, RunState::Failed) if worker_recorded => {
                tracing::info!("{id}: {what}; the run failed: {:?}", status.exit_reason);
                self.save();
                return;
            }
            (Some(JobRequest::Kill), _) => (
                RunState::Cancelled,
                recorded_as(RunState::Cancelled).unwrap_or_else(|| {
                    format!("killed on request (cancel --now, {what}); no checkpoint written")
                }),
                "warn",
            ),
            (Some(JobRequest::Pause), _) => (
                RunState::Paused,
                recorded_as(RunState::Paused).unwrap_or_else(|| {
                    format!("paused on request ({what}); resume submits it again")
                }),
                "info",
            ),
            (Some(JobRequest::Cancel), _) => (
                RunState::Cancelled,
                recorded_as(RunState::Cancelled)
                    .unwrap_or_else(|| format!("cancelled on request ({what})")),
                "info",
            ),
            (None, _) if cancelled_outside => (
                RunState::Cancelled,
                format!(
                    "{what}: cancelled outside scintigan (scancel); {checkpoint}; continue with: scintigan retry {id}"
                ),
                "warn",
            ),
            // The worker stopped ahead of its time limit and asked for
            // this, or the cluster ended the job under it: continue from
            // the checkpoint.
            (None, RunState::Queued) => self.resubmit_or_fail(&mut status, &what),
            (None, _) if by_cluster => self.resubmit_or_fail(&mut status, &what),
            (None, RunState::Paused | RunState::Cancelled) if worker_recorded => {
                // Stopped by a signal on the node that neither we nor Slurm
                // sent; the worker's own record stands.
                tracing::info!("{id}: {what}; the worker recorded {}", status.state);
                self.save();
                return;
            }
            // The worker died without recording why (killed, out of
            // memory, a crash).
            (None, _) => self.resubmit_or_fail(
                &mut status,
                &format!(
                    "{what} without the worker recording why (see {})",
                    run.root()
                        .join(format!("slurm-{}.log", job.job_id))
                        .display()
                ),
            ),
        };
        status.state = state;
        status.pid = None;
        status.exit_reason = Some(reason.clone());
        if state == RunState::Queued {
            self.state.queue.retain(|q| q != id);
            self.state.queue.insert(0, id.to_string());
        }
        match level {
            "error" => tracing::error!("{id}: {reason}"),
            "warn" => tracing::warn!("{id}: {reason}"),
            _ => tracing::info!("{id}: {reason}"),
        }
        if let Err(e) = status.write(&run.status_path()) {
            tracing::error!("{id}: {e}");
        }
        // The worker is gone, so the daemon may append to its log.
        if let Ok(mut writer) = EventWriter::open(&run.events_path()) {
            let _ = writer.append(Event::Log {
                level: level.into(),
                message: reason,
            });
        }
        self.save();
    }

    /// Queue the run again to continue from its checkpoint when retries
    /// are left (counting one), else fail it. Returns (state, reason, level).
    fn resubmit_or_fail(
        &self,
        status: &mut store::Status,
        what: &str,
    ) -> (RunState, String, &'static str) {
        if status.retries < self.settings.max_retries {
            status.retries += 1;
            (
                RunState::Queued,
                format!(
                    "{what}; resubmitting to continue from the last checkpoint (retry {} of {})",
                    status.retries, self.settings.max_retries
                ),
                "warn",
            )
        } else {
            (
                RunState::Failed,
                format!(
                    "{what} after {} resubmissions; not resubmitted again (max_retries in {})",
                    status.retries,
                    self.paths.settings_file().display()
                ),
                "error",
            )
        }
    }

    /// Whether run `id` is followed as a Slurm job.
    pub(super) fn has_job(&self, id: &str) -> bool {
        self.state.jobs.contains_key(id)
    }

    /// (run id, its job id, whether the job has not started: Slurm said
    /// pending when last asked and no worker has written its pid).
    fn job_of(&self, run: &RunDir) -> (String, String, bool) {
        let id = run.id();
        let job_id = self
            .state
            .jobs
            .get(&id)
            .map(|j| j.job_id.clone())
            .unwrap_or_default();
        let started = run.status().is_ok_and(|s| s.pid.is_some());
        let pending = self.job_info.get(&id).is_none_or(JobInfo::pending);
        (id, job_id, !started && pending)
    }

    fn request_job(&mut self, id: &str, request: JobRequest) {
        if let Some(job) = self.state.jobs.get_mut(id) {
            job.requested = Some(request);
            if request == JobRequest::Cancel {
                job.cancel_sent_at = Some(store::unix_now());
            }
        }
        self.save();
        self.last_job_poll = None;
    }

    /// `pause` of a run with a job: a pending job is cancelled (resume
    /// submits it again); a running worker is asked through `control.json`.
    pub(super) fn pause_job(&mut self, run: &RunDir, release: bool) -> super::Reply {
        let (id, job_id, not_started) = self.job_of(run);
        if not_started {
            slurm::cancel(&job_id, false)?;
            self.request_job(&id, JobRequest::Pause);
            return Ok(format!(
                "{id}: Slurm job {job_id} cancelled before it started; resume submits it again"
            ));
        }
        self.request_control(
            run,
            ControlRequest {
                pause: true,
                release,
                cancel: false,
            },
        )?;
        if release {
            self.request_job(&id, JobRequest::Pause);
            Ok(format!(
                "{id}: pausing at the next step; the worker checkpoints and Slurm job {job_id} ends, freeing its node"
            ))
        } else {
            Ok(format!(
                "{id}: pausing at the next step (Slurm job {job_id} keeps its allocation; pause --release frees it)"
            ))
        }
    }

    /// `cancel` of a run with a job: SIGTERM to the worker so it
    /// checkpoints (then `scancel` after the grace time), or `scancel` at
    /// once for a pending job or with `now`.
    pub(super) fn cancel_job(&mut self, run: &RunDir, now: bool) -> super::Reply {
        let (id, job_id, not_started) = self.job_of(run);
        if now {
            slurm::cancel(&job_id, true)?;
            self.request_job(&id, JobRequest::Kill);
            return Ok(format!("{id}: Slurm job {job_id} killed"));
        }
        if not_started {
            slurm::cancel(&job_id, false)?;
            self.request_job(&id, JobRequest::Cancel);
            return Ok(format!(
                "{id}: Slurm job {job_id} cancelled before it started"
            ));
        }
        slurm::signal_worker(&job_id, "TERM")?;
        self.request_job(&id, JobRequest::Cancel);
        Ok(format!(
            "{id}: stopping Slurm job {job_id} at the next step after a checkpoint"
        ))
    }

    /// On `daemon stop --runs`: running jobs checkpoint and end paused;
    /// pending ones are cancelled and marked paused.
    pub(super) fn stop_all_jobs(&mut self) {
        let ids: Vec<String> = self.state.jobs.keys().cloned().collect();
        for id in ids {
            if let Ok(run) = RunDir::open(&self.run_dir(&id))
                && let Err(e) = self.pause_job(&run, true)
            {
                tracing::error!("{id}: {e}");
            }
        }
    }

    /// Slurm's view of run `id` for the runs list.
    pub(super) fn job_view(&self, id: &str) -> Option<JobView> {
        let job = self.state.jobs.get(id)?;
        let info = self.job_info.get(id);
        Some(JobView {
            job_id: job.job_id.clone(),
            node: info.and_then(|i| i.node.clone()),
            state: info.map_or_else(|| "SUBMITTED".to_string(), |i| i.state.clone()),
            pending_reason: info.filter(|i| i.pending()).and_then(|i| i.reason.clone()),
        })
    }
}

/// A followed job as the runs list shows it.
pub(super) struct JobView {
    pub job_id: String,
    pub node: Option<String>,
    /// Slurm's state, or SUBMITTED before the first answer.
    pub state: String,
    pub pending_reason: Option<String>,
}
