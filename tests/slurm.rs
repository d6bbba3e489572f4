//! The Slurm executor against a real single-node Slurm (Debian's packages),
//! a project-local one that `scripts/setup-slurm.sh` (run by `make test`)
//! starts in `.slurm/` with its own `SLURM_CONF`, never touching a system
//! Slurm. Without it these tests fail under `CI=true`; elsewhere they skip
//! with the reason on stderr, only when this is not root.

mod common;

use common::project::{Project, assert_each_step_once, long_config};
use common::*;
use scintigan::daemon::protocol::RunInfo;
use scintigan::store::{Event, RunState};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// Whether the project-local Slurm node is up and its commands are on the
/// PATH; starts it (as root) when it is not. Under `CI=true` anything
/// missing fails the test (see [`needs`]).
fn slurm_up() -> bool {
    needs(slurm_ready())
}

fn slurm_ready() -> Result<(), String> {
    // Checked after the set-up (which installs them as root) too.
    let tools_on_path = || {
        for tool in ["sbatch", "squeue", "scancel", "scontrol", "sinfo"] {
            let found = std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()));
            if !found {
                return Err(format!(
                    "`{tool}` is not on the PATH, so the Slurm executor cannot be tested"
                ));
            }
        }
        Ok(())
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-slurm.sh");
    let check = || {
        Command::new(script)
            .arg("--check")
            .status()
            .is_ok_and(|s| s.success())
    };
    if check() {
        return tools_on_path();
    }
    if !is_root() {
        return Err(
            "no project-local Slurm answers and this is not root, so scripts/setup-slurm.sh cannot start one"
                .into(),
        );
    }
    let out = Command::new(script).output().expect("run setup-slurm.sh");
    if out.status.success() && check() {
        tools_on_path()
    } else {
        Err(format!(
            "scripts/setup-slurm.sh did not bring up Slurm: {}",
            stderr(&out)
        ))
    }
}

/// Cancels this test's Slurm jobs (named `scintigan-<prefix>...`) when it
/// ends, however it ends.
struct Jobs(&'static str);

impl Drop for Jobs {
    fn drop(&mut self) {
        let Ok(out) = slurm_command("squeue")
            .args(["--noheader", "--format=%i %j"])
            .output()
        else {
            return;
        };
        let prefix = format!("scintigan-{}", self.0);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((id, name)) = line.trim().split_once(' ')
                && name.starts_with(&prefix)
            {
                let _ = slurm_command("scancel").arg(id).status();
            }
        }
    }
}

/// A daemon.toml for the Slurm executor that polls often.
fn slurm_settings(extra: &str) -> String {
    format!(
        "executor = \"slurm\"\nslurm_poll_seconds = 0.5\nmax_retries = 4\n{extra}\n[slurm]\npartition = \"main\"\n"
    )
}

/// Final `status --json` states by run name, once every run has ended
/// and the daemon follows no job of theirs any more (a worker records its
/// own end a moment before the daemon reads Slurm's).
fn final_states(p: &Project, names: &[&str], secs: u64) -> BTreeMap<String, String> {
    let mut last: Vec<RunInfo> = Vec::new();
    let settled = wait_for(secs, || {
        std::thread::sleep(Duration::from_millis(300));
        last = p.status().runs;
        names.iter().all(|n| {
            last.iter().any(|r| {
                r.name == *n
                    && matches!(r.state.as_str(), "done" | "failed" | "cancelled")
                    && r.job_state.is_none()
            })
        })
    });
    assert!(settled, "runs never settled: {last:#?}");
    p.cli_status()
        .runs
        .into_iter()
        .map(|r| (r.name, r.state))
        .collect()
}

/// Three runs chained by `after` (chest pretraining, bone fine-tuning from
/// it, a classifier after that), and one that fails at setup.
fn pipeline_configs(p: &Project) {
    p.config(
        "chest.toml",
        "name = \"slp-chest\"\nkind = \"gan\"\n\
         data = { source = \"phantom-chest\", image_size = [32, 16], per_class = 6 }\n\
         model = { arch = \"acgan\", latent_dim = 8, base_channels = 4 }\n\
         train = { epochs = 2, batch_size = 4, device = \"cpu\" }\n",
    );
    p.config(
        "bone.toml",
        "name = \"slp-bone\"\nkind = \"gan\"\ninit_from = \"run:slp-chest\"\n\
         data = { source = \"phantom-bone\", image_size = [32, 16], per_class = 6 }\n\
         model = { arch = \"acgan\", latent_dim = 8, base_channels = 4 }\n\
         train = { epochs = 2, batch_size = 4, device = \"cpu\" }\n",
    );
    p.config(
        "classify.toml",
        "name = \"slp-classify\"\nkind = \"classifier\"\nafter = [\"slp-bone\"]\n\
         data = { source = \"phantom-bone\", image_size = [32, 16], per_class = 10, test_fraction = 0.3 }\n\
         model = { arch = \"small-cnn\", base_channels = 4 }\n\
         train = { epochs = 2, batch_size = 4, device = \"cpu\" }\n",
    );
    // A valid config whose image folder is not there: fails on the node.
    p.config(
        "toosmall.toml",
        "name = \"slp-toosmall\"\nkind = \"classifier\"\nafter = [\"slp-bone\"]\n\
         data = { source = \"folder\", path = \"no-such-scans\", image_size = [32, 32] }\n\
         model = { arch = \"small-cnn\" }\n\
         train = { epochs = 1, batch_size = 2, device = \"cpu\" }\n",
    );
}

#[test]
fn a_three_stage_pipeline_ends_in_the_same_states_through_slurm_as_locally() {
    if !slurm_up() {
        return;
    }
    let _jobs = Jobs("slp-");
    let names = ["slp-chest", "slp-bone", "slp-classify", "slp-toosmall"];
    let local = {
        let p = Project::new("slurm-pipeline-local", "cpu_slots = 1\n");
        pipeline_configs(&p);
        p.ok(&["daemon"]);
        final_states(&p, &names, 300)
    };
    let p = Project::new("slurm-pipeline", &slurm_settings(""));
    pipeline_configs(&p);
    p.ok(&["daemon"]);
    let through_slurm = final_states(&p, &names, 300);
    assert_eq!(through_slurm, local);
    assert_eq!(local["slp-classify"], "done");
    assert_eq!(local["slp-toosmall"], "failed");

    // Every run names its job, and its worker wrote into the shared run
    // directory: the job's output file and events with a Slurm job id.
    for r in p.cli_status().runs {
        assert_eq!(r.executor.as_deref(), Some("slurm"), "{r:?}");
        let job = r
            .job_id
            .clone()
            .unwrap_or_else(|| panic!("no job id: {r:?}"));
        let run = p.run_dir(&r.id);
        assert_eq!(
            run.status().expect("status").slurm_job.as_deref(),
            Some(job.as_str())
        );
        assert!(
            run.root().join(format!("slurm-{job}.log")).is_file(),
            "{r:?}"
        );
    }
    // The failed run says why, in the worker's words.
    let failed = p.run_named("slp-toosmall").expect("toosmall");
    assert!(
        failed
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("no-such-scans")),
        "{failed:?}"
    );
}

#[test]
fn a_job_cancelled_with_scancel_shows_cancelled_with_that_reason_and_keeps_its_checkpoint() {
    if !slurm_up() {
        return;
    }
    let _jobs = Jobs("slx-");
    let p = Project::new("slurm-scancel", &slurm_settings(""));
    p.config("x.toml", &long_config("slx-cancel", 3000));
    p.ok(&["daemon"]);
    let running = p.wait_state("slx-cancel", "running", 120);
    let job = running.job_id.clone().expect("job id");
    let seen = p.wait_run("slx-cancel", 120, "running past step 20", |r| {
        r.step >= 20 && r.pid.is_some()
    });
    assert_eq!(
        seen.node.as_deref().map(str::is_empty),
        Some(false),
        "{seen:?}"
    );

    let out = slurm_command("scancel")
        .arg(&job)
        .output()
        .expect("scancel");
    assert!(out.status.success(), "{}", stderr(&out));

    // The worker records its stop first; the daemon then reads Slurm's
    // CANCELLED and says who stopped it.
    let ended = p.wait_run("slx-cancel", 120, "cancelled by Slurm", |r| {
        r.state == "cancelled" && r.reason.as_deref().is_some_and(|m| m.contains("Slurm job"))
    });
    let reason = ended.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("Slurm job {job}"))
            && reason.contains("cancelled outside scintigan"),
        "{reason}"
    );
    // The worker checkpointed on Slurm's SIGTERM: the checkpoint is at
    // least as far as the run had got, and it loads.
    let run = p.run_dir(&ended.id);
    let (_, state) = run
        .checkpoints()
        .latest()
        .expect("read checkpoints")
        .expect("a checkpoint");
    assert!(
        reason.contains(&format!(
            "last checkpoint kept: stage 'slx-cancel' step {}",
            state.step
        )),
        "{reason}"
    );
    assert!(
        state.step >= seen.step,
        "checkpoint at {} < {}",
        state.step,
        seen.step
    );
    assert_eq!(run.status().expect("status").state, RunState::Cancelled);

    // retry continues from it.
    p.ok(&["retry", &ended.id]);
    let again = p.wait_state("slx-cancel", "running", 120);
    assert_ne!(again.job_id.as_deref(), Some(job.as_str()), "a new job");
    // pause --release ends the job after a checkpoint; resume submits a
    // new one that continues.
    p.wait_run("slx-cancel", 120, "running past the cancelled step", |r| {
        r.pid.is_some() && r.step > seen.step
    });
    p.ok(&["pause", "--release", &ended.id]);
    let paused = p.wait_state("slx-cancel", "paused", 120);
    p.wait_run("slx-cancel", 60, "without a followed job", |r| {
        r.job_state.is_none()
    });
    p.ok(&["resume", &ended.id]);
    p.wait_run("slx-cancel", 120, "running on in a new job", |r| {
        r.pid.is_some() && r.step > paused.step && r.job_id != paused.job_id
    });
    p.ok(&["cancel", "--now", &ended.id]);
    p.wait_run("slx-cancel", 120, "killed on request", |r| {
        r.state == "cancelled"
            && r.reason
                .as_deref()
                .is_some_and(|m| m.contains("killed on request"))
    });
}

#[test]
fn a_job_that_reaches_its_time_limit_is_resubmitted_and_resumes_from_its_checkpoint() {
    if !slurm_up() {
        return;
    }
    let _jobs = Jobs("slt-");
    // One minute per job (Slurm ends it 60 to 90 s in); the run needs
    // about 100 s here (120 steps/s).
    let p = Project::new(
        "slurm-timelimit",
        &format!("{}time = \"1\"\n", slurm_settings("")),
    );
    let epochs = 2000;
    p.config("t.toml", &long_config("slt-limit", epochs));
    p.ok(&["daemon"]);
    let states = final_states(&p, &["slt-limit"], 420);
    assert_eq!(states["slt-limit"], "done");

    let r = p.run_named("slt-limit").expect("run");
    assert!(r.retries >= 1, "never resubmitted: {r:?}");
    let run = p.run_dir(&r.id);
    let records = events(&run);
    let timeouts: Vec<&str> = records
        .iter()
        .filter_map(|rec| match &rec.event {
            Event::Log { message, .. } if message.contains("ended TIMEOUT") => {
                Some(message.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(!timeouts.is_empty(), "no TIMEOUT recorded");
    assert!(
        timeouts[0].contains("resubmitting to continue from the last checkpoint"),
        "{timeouts:?}"
    );
    let resumed = records
        .iter()
        .filter(|rec| matches!(&rec.event, Event::Resumed { step, .. } if *step > 0))
        .count();
    assert!(resumed >= 1, "no resume from a checkpoint");
    assert_eq!(r.stage_steps % u64::from(epochs), 0);
    assert_each_step_once(&records, r.stage_steps);
}

#[test]
fn sigusr1_ahead_of_a_time_limit_checkpoints_and_leaves_the_run_queued() {
    let dir = scratch("slurm-usr1");
    write(&dir, "long.toml", &tiny_gan_config("long", 400, ""));
    let child = spawn_run_until_training(&dir, "long.toml");
    let sent = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let run = only_run(&dir);
    let status = run.status().expect("status");
    assert_eq!(status.state, RunState::Queued, "{status:?}");
    assert!(
        status
            .exit_reason
            .as_deref()
            .is_some_and(|r| r.contains("ahead of the Slurm time limit")),
        "{status:?}"
    );
    let (_, state) = run
        .checkpoints()
        .latest()
        .expect("latest")
        .expect("a checkpoint");
    assert_eq!(state.step, status.step);
}

#[test]
fn a_slurm_daemon_without_sbatch_on_path_refuses_to_start() {
    let dir = scratch("slurm-no-sbatch");
    std::fs::create_dir_all(dir.join("runs/.daemon")).expect("runs");
    std::fs::write(
        dir.join("runs/.daemon/daemon.toml"),
        "executor = \"slurm\"\n",
    )
    .expect("settings");
    let empty = dir.join("empty-path");
    std::fs::create_dir_all(&empty).expect("empty");
    let out = bin()
        .current_dir(&dir)
        .env("PATH", &empty)
        .args(["daemon", "--foreground"])
        .output()
        .expect("run daemon");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "daemon.toml: executor = \"slurm\" but sbatch, squeue, scancel not found on PATH"
        ),
        "{err}"
    );
}

#[test]
fn a_restarted_daemon_follows_its_slurm_jobs_again() {
    if !slurm_up() {
        return;
    }
    let _jobs = Jobs("sla-");
    let p = Project::new("slurm-adopt", &slurm_settings(""));
    p.config("a.toml", &long_config("sla-adopt", 300));
    p.ok(&["daemon"]);
    p.wait_run("sla-adopt", 120, "running past step 10", |r| {
        r.pid.is_some() && r.step > 10
    });
    let pid = p.daemon_pid().expect("daemon pid");
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(wait_for(30, || !std::path::Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains(") Z "))));
    // The job runs on without a daemon; the next one picks it up from
    // state.json and reads how it ended.
    p.ok(&["daemon"]);
    let states = final_states(&p, &["sla-adopt"], 180);
    assert_eq!(states["sla-adopt"], "done");
    let r = p.run_named("sla-adopt").expect("run");
    assert_eq!(r.retries, 0, "{r:?}");
    let records = events(&p.run_dir(&r.id));
    assert_each_step_once(&records, r.stage_steps);
}
