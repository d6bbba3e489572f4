//! The daemon with real processes: config intake, adoption after `kill -9`,
//! resume of a killed worker, control round trips, socket hardening, SIGHUP.

mod common;

use common::project::{Project, assert_each_step_once, long_config};
use common::*;
use scintigan::daemon::Paths;
use scintigan::daemon::client::Client;
use scintigan::daemon::protocol::{Reply, Request, Snapshot};
use scintigan::store::{Event, EventRecord};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// A valid config numbered `i` (its run name is `q-<i>`).
fn queue_config(i: usize) -> String {
    format!(
        "name = \"q-{i:03}\"\nkind = \"gan\"\n[data]\nsource = \"phantom-bone\"\nimage_size = [32, 16]\nper_class = 4\n[model]\narch = \"acgan\"\nlatent_dim = 8\nbase_channels = 4\n[train]\nepochs = 1\ndevice = \"cpu\"\n"
    )
}

#[test]
fn two_hundred_configs_are_each_enqueued_once_and_never_again_after_a_restart() {
    // cpu_slots = 0: queue only, so nothing trains.
    let p = Project::new("daemon-intake", "cpu_slots = 0\n");
    p.ok(&["daemon"]);
    let configs = p.dir.join("configs");
    let started = Instant::now();
    // Ten files written in chunks over about 0.6 s each, beside the others.
    let slow: Vec<std::thread::JoinHandle<()>> = (180..190)
        .map(|i| {
            let path = configs.join(format!("q-{i:03}.toml"));
            std::thread::spawn(move || {
                let text = queue_config(i);
                let mut file = std::fs::File::create(&path).expect("create");
                for chunk in text.as_bytes().chunks(text.len().div_ceil(4)) {
                    file.write_all(chunk).expect("write chunk");
                    file.flush().expect("flush");
                    std::thread::sleep(Duration::from_millis(150));
                }
            })
        })
        .collect();
    for i in 0..170 {
        std::fs::write(configs.join(format!("q-{i:03}.toml")), queue_config(i)).expect("write");
    }
    // Twenty invalid ones: a bad value on line 12, column 10.
    for i in 0..20 {
        let text = queue_config(200 + i).replace("epochs = 1", "epochs = \"many\"");
        std::fs::write(configs.join(format!("bad-{i:02}.toml")), text).expect("write");
    }
    for h in slow {
        h.join().expect("slow writer");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "writing took {:?}",
        started.elapsed()
    );

    let mut snap = Snapshot::default();
    let settled = wait_for(60, || {
        snap = p.status();
        snap.runs.len() >= 180 && snap.invalid_configs.len() >= 20
    });
    assert!(
        settled,
        "after 60 s: {} runs, {} invalid",
        snap.runs.len(),
        snap.invalid_configs.len()
    );
    std::thread::sleep(Duration::from_secs(2));
    let check = |snap: &Snapshot| {
        let mut names: Vec<String> = snap.runs.iter().map(|r| r.name.clone()).collect();
        names.sort();
        let expected: Vec<String> = (0..170)
            .chain(180..190)
            .map(|i| format!("q-{i:03}"))
            .collect();
        assert_eq!(names, expected, "each valid config enqueued exactly once");
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), 180, "a config was enqueued twice");
        assert!(snap.runs.iter().all(|r| r.state == "queued"));
        assert_eq!(snap.invalid_configs.len(), 20);
        for bad in &snap.invalid_configs {
            let first = &bad.errors[0];
            assert!(
                first.contains(&format!("{}:12:10: ", bad.file)),
                "{}: {first}",
                bad.file
            );
            assert!(first.contains("\"many\""), "{first}");
        }
    };
    check(&snap);
    // The ten slow files were read once, complete: their runs have epochs = 1
    // and the full data section.
    for r in snap.runs.iter().filter(|r| r.name.as_str() >= "q-180") {
        let spec = p.run_dir(&r.id).spec().expect("frozen config");
        assert_eq!(spec.stage[0].train.epochs, 1);
        assert_eq!(spec.stage[0].data.image_size, [32, 16]);
    }

    p.ok(&["daemon", "stop"]);
    p.ok(&["daemon"]);
    std::thread::sleep(Duration::from_secs(3));
    let again = p.status();
    check(&again);
    let ids = |s: &Snapshot| {
        let mut v: Vec<String> = s.runs.iter().map(|r| r.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(&snap),
        ids(&again),
        "the restart enqueued something again"
    );

    // Editing a file whose run has not started replaces that run.
    let old = again
        .runs
        .iter()
        .find(|r| r.name == "q-005")
        .expect("q-005")
        .clone();
    let edited = queue_config(5).replace("epochs = 1", "epochs = 2");
    std::fs::write(configs.join("q-005.toml"), edited).expect("edit");
    let mut now = Snapshot::default();
    let replaced = wait_for(30, || {
        std::thread::sleep(Duration::from_millis(100));
        now = p.status();
        now.runs.iter().any(|r| r.name == "q-005" && r.id != old.id)
    });
    assert!(replaced, "the edit was not picked up");
    assert_eq!(
        now.runs.len(),
        180,
        "an edit before the start replaces, never adds"
    );
    assert!(
        !now.runs.iter().any(|r| r.id == old.id),
        "the old run is gone"
    );
    let new = now.runs.iter().find(|r| r.name == "q-005").expect("q-005");
    assert_eq!(new.position, old.position, "in the old run's place");
    assert_eq!(
        p.run_dir(&new.id).spec().expect("spec").stage[0]
            .train
            .epochs,
        2
    );
}

/// A tiny GAN run of 150 epochs x 6 steps with mid-epoch checkpoints every
/// ~0.1 s: long enough to interfere with, a few seconds on the CPU.
/// Events of `run` through the daemon, from the first, until `done` holds
/// for what was received (or `secs` pass). A `reset` clears what was
/// received, as a dashboard would.
fn subscribe_until(
    paths: &Paths,
    run: &str,
    secs: u64,
    mut done: impl FnMut(&[EventRecord]) -> bool,
) -> (Vec<EventRecord>, bool) {
    let mut client = Client::connect(paths).expect("connect");
    client
        .send(Request::Subscribe { run: run.into() })
        .expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got: Vec<EventRecord> = Vec::new();
    while Instant::now() < deadline {
        match client.next(Some(Duration::from_millis(500))) {
            Ok(Reply::Events { events, .. }) => {
                for e in events {
                    got.push(serde_json::from_str(e.get()).expect("event record"));
                }
            }
            Ok(Reply::Reset { .. }) => got.clear(),
            Ok(Reply::CaughtUp { .. }) => {}
            Ok(other) => panic!("unexpected reply {other:?}"),
            Err(_) => {}
        }
        if done(&got) {
            return (got, true);
        }
    }
    (got, false)
}

fn finished(records: &[EventRecord]) -> bool {
    records
        .iter()
        .any(|r| matches!(r.event, Event::RunFinished { .. }))
}

#[test]
fn a_worker_outlives_a_killed_daemon_and_the_next_daemon_adopts_it() {
    let p = Project::new("daemon-adopt", "");
    p.ok(&["daemon"]);
    p.config("adopt.toml", &long_config("adopt", 150));
    let running = p.wait_state("adopt", "running", 30);
    let paths = p.paths();
    let (before, ok) = subscribe_until(&paths, &running.id, 30, |r| gan_losses(r).len() >= 50);
    assert!(ok, "no 50 steps through the daemon within 30 s");
    let worker = p
        .run_dir(&running.id)
        .status()
        .expect("status")
        .pid
        .expect("pid");
    let daemon = p.daemon_pid().expect("daemon pid");

    signal(daemon, "-KILL");
    assert!(wait_for(10, || !alive(daemon)), "daemon survived kill -9");
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(worker), "the worker died with its daemon");

    // Any client command starts a new daemon, which adopts the worker.
    let listed = p.cli_status();
    let adopted = listed
        .runs
        .iter()
        .find(|r| r.name == "adopt")
        .expect("run listed")
        .clone();
    assert_ne!(p.daemon_pid(), Some(daemon));
    assert_eq!(adopted.state, "running");
    assert_eq!(adopted.pid, Some(worker), "adopted with its pid");
    let (after, ok) = subscribe_until(&paths, &running.id, 120, finished);
    assert!(ok, "the adopted run did not finish within 120 s");
    assert_eq!(p.run_named("adopt").expect("run").state, "done");
    assert_each_step_once(&after, 900);
    // What the first daemon streamed is exactly the start of the record.
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(
        after,
        events(&p.run_dir(&running.id)),
        "stream equals the file"
    );
    assert!(
        !after
            .iter()
            .any(|r| matches!(r.event, Event::Resumed { .. })),
        "the worker was never restarted"
    );
}

#[test]
fn a_killed_worker_resumes_from_its_checkpoint_by_itself() {
    let p = Project::new("daemon-worker-kill", "");
    p.ok(&["daemon"]);
    p.config("crash.toml", &long_config("crash", 150));
    let running = p.wait_state("crash", "running", 30);
    let run = p.run_dir(&running.id);
    let mid_epoch_checkpoint = wait_for(60, || {
        let ckpt = run.checkpoints().latest().ok().flatten();
        let steps = gan_losses(&events(&run));
        ckpt.is_some_and(|(_, s)| {
            s.step_in_epoch % 6 != 0 && steps.last().is_some_and(|(l, _)| *l > s.step + 2)
        })
    });
    assert!(mid_epoch_checkpoint, "no mid-epoch checkpoint within 60 s");
    let worker = run.status().expect("status").pid.expect("pid");
    signal(worker, "-KILL");

    let done = p.wait_state("crash", "done", 120);
    assert_eq!(done.retries, 1);
    let records = events(&run);
    assert_each_step_once(&records, 900);
    let died = records.iter().any(|r| match &r.event {
        Event::Log { level, message } => {
            level == "warn" && message.contains("worker died (killed by signal 9")
        }
        _ => false,
    });
    assert!(
        died,
        "the death and its reason are recorded in events.jsonl"
    );
    assert!(
        records
            .iter()
            .any(|r| matches!(r.event, Event::Resumed { .. }))
    );
}

#[test]
fn pause_resume_cancel_and_reorder_round_trip_through_the_cli() {
    let p = Project::new("daemon-control", "");
    p.ok(&["daemon"]);
    p.config("a.toml", &long_config("a", 3000));
    p.wait_state("a", "running", 30);
    for name in ["b", "c", "d"] {
        p.config(&format!("{name}.toml"), &tiny_gan_config(name, 2, ""));
    }
    assert!(wait_for(30, || p.status().runs.len() == 4));
    let place = |name: &str| {
        p.cli_status()
            .runs
            .into_iter()
            .find(|r| r.name == name)
            .and_then(|r| r.position)
    };
    assert_eq!(
        (place("b"), place("c"), place("d")),
        (Some(1), Some(2), Some(3))
    );

    // Pause at a step boundary and resume.
    p.ok(&["pause", "a"]);
    let paused = p.wait_state("a", "paused", 30);
    let step = paused.step;
    assert!(paused.pid.is_some(), "a plain pause keeps the worker");
    std::thread::sleep(Duration::from_millis(600));
    let a_run = p.run_dir(&paused.id);
    let steps_now = gan_losses(&events(&a_run)).len();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        gan_losses(&events(&a_run)).len(),
        steps_now,
        "no steps while paused"
    );
    p.ok(&["resume", "a"]);
    p.wait_state("a", "running", 30);
    assert!(wait_for(30, || gan_losses(&events(&a_run)).len() > steps_now));
    let kinds: Vec<&str> = events(&a_run)
        .iter()
        .filter_map(|r| match r.event {
            Event::Paused { .. } => Some("paused"),
            Event::Continued { .. } => Some("continued"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["paused", "continued"]);
    assert!(step > 0);

    // Reorder: d to the top, c up one, b gets a priority.
    p.ok(&["move", "d", "top"]);
    assert_eq!(
        (place("d"), place("b"), place("c")),
        (Some(1), Some(2), Some(3))
    );
    p.ok(&["move", "c", "up"]);
    assert_eq!(
        (place("d"), place("c"), place("b")),
        (Some(1), Some(2), Some(3))
    );
    p.ok(&["priority", "b", "5"]);
    assert_eq!(
        (place("b"), place("d"), place("c")),
        (Some(1), Some(2), Some(3))
    );
    // A queued run can be paused (kept from starting) and cancelled.
    p.ok(&["pause", "b"]);
    assert_eq!(
        p.cli_status()
            .runs
            .iter()
            .find(|r| r.name == "b")
            .expect("b")
            .state,
        "paused"
    );
    p.ok(&["cancel", "c"]);
    let c = p.run_named("c").expect("c");
    assert_eq!((c.state.as_str(), c.position), ("cancelled", None));

    // Pause with release: checkpoint, worker exits, the slot goes to d.
    p.ok(&["pause", "a", "--release"]);
    let released = p.wait_state("a", "paused", 60);
    assert!(
        released
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("released"),
        "{released:?}"
    );
    p.wait_state("d", "done", 60);
    p.ok(&["resume", "a"]);
    p.wait_state("a", "running", 60);
    // Cancel writes a checkpoint and ends the run; retry continues it.
    p.ok(&["cancel", "a"]);
    let cancelled = p.wait_state("a", "cancelled", 60);
    assert!(
        cancelled
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("checkpoint written"),
        "{cancelled:?}"
    );
    let err = p.cli(&["resume", "a"]);
    assert!(!err.status.success());
    assert!(
        stderr(&err).contains("only paused runs can be resumed"),
        "{}",
        stderr(&err)
    );
    p.ok(&["retry", "a"]);
    p.wait_state("a", "running", 60);
    p.ok(&["cancel", "a", "--now"]);
    let killed = p.wait_state("a", "cancelled", 30);
    assert!(
        killed
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("cancel --now")
    );
    // b is still held by its pause; resuming it lets it run to the end.
    assert_eq!(p.run_named("b").expect("b").state, "paused");
    p.ok(&["resume", "b"]);
    p.wait_state("b", "done", 60);
    let unknown = p.cli(&["pause", "nosuchrun"]);
    assert!(
        stderr(&unknown).contains("no run 'nosuchrun'"),
        "{}",
        stderr(&unknown)
    );
}

/// Send raw bytes on a fresh connection; what comes back (if anything).
fn raw_exchange(socket: &Path, bytes: &[u8], close_write: bool) -> Vec<u8> {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    if close_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    back
}

#[test]
fn bad_messages_leave_the_daemon_serving_and_other_users_are_refused() {
    let p = Project::new("daemon-socket", "cpu_slots = 0\n");
    p.ok(&["daemon"]);
    let socket = p.paths().socket();
    let serving = |p: &Project| p.status().daemon_pid > 0;

    let back = raw_exchange(&socket, b"GARBAGE! this is not a frame\n", true);
    assert!(
        String::from_utf8_lossy(&back).contains("over the limit"),
        "{back:?}"
    );
    assert!(serving(&p));
    // A well-framed body that is not a request.
    let mut frame = 7u32.to_be_bytes().to_vec();
    frame.extend_from_slice(b"{\"v\":1}");
    let back = raw_exchange(&socket, &frame, true);
    assert!(
        String::from_utf8_lossy(&back).contains("malformed request"),
        "{back:?}"
    );
    // Another protocol version.
    let body = br#"{"v":99,"cmd":"list"}"#;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    let back = raw_exchange(&socket, &frame, true);
    assert!(
        String::from_utf8_lossy(&back).contains("protocol version 99"),
        "{back:?}"
    );
    // A 100 MB message.
    let mut big = (100u32 << 20).to_be_bytes().to_vec();
    big.extend(std::iter::repeat_n(b'x', 100 << 20));
    let back = raw_exchange(&socket, &big, true);
    assert!(
        String::from_utf8_lossy(&back).contains("over the limit"),
        "{back:?}"
    );
    assert!(serving(&p));
    // Half a message, then the client goes away.
    let mut half = 200u32.to_be_bytes().to_vec();
    half.extend_from_slice(br#"{"v":1,"cmd":"li"#);
    drop(raw_exchange(&socket, &half, true));
    assert!(serving(&p));

    // Permissions: the folder is private, the socket owner-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&p.paths().dir()), 0o700);
    assert_eq!(mode(&socket), 0o600);

    if !needs(if is_root() {
        Ok(())
    } else {
        Err("the other-user check creates a Unix user, which needs root".into())
    }) {
        return;
    }
    let peer = TestUser::create("scintigan-peer");
    let (uid, gid) = (peer.uid, peer.gid);
    let try_as_other = |socket: &Path| -> String {
        use std::os::unix::process::CommandExt;
        let script = "import socket,struct,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1])\nexcept OSError as e:\n print('refused:',e.strerror); sys.exit(0)\nb=b'{\"v\":1,\"cmd\":\"list\"}'\ntry:\n s.sendall(struct.pack('>I',len(b))+b)\nexcept OSError:\n pass\nprint('reply:',s.recv(65536)[4:].decode())\n";
        let out = Command::new("python3")
            .args(["-c", script, &socket.to_string_lossy()])
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .output()
            .expect("python3 as the other user");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    // The 0700 folder keeps the other user from the socket...
    let out = try_as_other(&socket);
    assert!(out.starts_with("refused: Permission denied"), "{out}");
    // ...and with the folder and socket opened up, the uid check answers.
    std::fs::set_permissions(p.paths().dir(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = try_as_other(&socket);
    std::fs::set_permissions(p.paths().dir(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    assert!(
        out.contains("permission denied: this daemon serves uid 0 only"),
        "{out}"
    );
    assert!(
        !out.contains("runs_dir"),
        "the other user saw the run list: {out}"
    );
    assert!(serving(&p));
    drop(peer);
    let gone = Command::new("id")
        .arg("scintigan-peer")
        .stderr(Stdio::null())
        .output();
    assert!(
        gone.is_ok_and(|o| !o.status.success()),
        "the test user outlived the test"
    );
}

/// A Unix user made for one test and removed when the test ends, however
/// it ends (its group with it).
struct TestUser {
    name: &'static str,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(name: &'static str) -> Self {
        // One left by an interrupted earlier run is removed first.
        let _ = Command::new("userdel")
            .arg(name)
            .stderr(Stdio::null())
            .status();
        let out = Command::new("useradd")
            .args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .output()
            .expect("run useradd");
        assert!(out.status.success(), "useradd {name}: {}", stderr(&out));
        let id = |flag: &str| {
            Command::new("id")
                .args([flag, name])
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse::<u32>().ok())
                .expect("id of the test user")
        };
        Self {
            name,
            uid: id("-u"),
            gid: id("-g"),
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(self.name).status();
    }
}

#[test]
fn sighup_to_the_clients_process_group_stops_no_run() {
    use std::os::unix::process::CommandExt;
    let p = Project::new("daemon-sighup", "");
    p.config("hup.toml", &long_config("hup", 60));
    // A login shell's process group: it starts the daemon through a client
    // command and follows the log, as a user over SSH would.
    let bin = env!("CARGO_BIN_EXE_scintigan");
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(format!(
            "'{bin}' status >/dev/null && sleep 2 && '{bin}' logs hup -f"
        ))
        .current_dir(&p.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    // A login shell takes SIGHUP's default action, whatever this test
    // inherited (under `nohup make test` it is ignored, and the shell and
    // its `logs -f` would never end).
    // SAFETY: signal() is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        shell.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut shell = shell.spawn().expect("shell");
    let running = p.wait_state("hup", "running", 30);
    std::thread::sleep(Duration::from_millis(2500));
    let daemon = p.daemon_pid().expect("daemon");
    // The SSH link drops: SIGHUP to the shell's whole process group (and
    // only to it: checked to be the shell's own group, not the test's).
    let pgid = shell.id() as libc::pid_t;
    // SAFETY: getpgid/getpgrp/kill have no memory effects.
    unsafe {
        assert_eq!(libc::getpgid(pgid), pgid, "the shell leads its own group");
        assert_ne!(libc::getpgrp(), pgid, "not the test's own group");
        libc::kill(-pgid, libc::SIGHUP);
    }
    let _ = shell.wait();
    assert!(alive(daemon), "the daemon died of the hang-up");
    let done = p.wait_state("hup", "done", 120);
    assert_eq!(done.id, running.id);
    assert_eq!(done.retries, 0, "the worker was not hit either");
}

#[test]
fn a_dependent_run_waits_for_its_dependency_and_is_held_when_it_is_cancelled() {
    let p = Project::new("daemon-after", "");
    p.ok(&["daemon"]);
    p.config("a.toml", &long_config("a", 3000));
    p.wait_state("a", "running", 30);
    let b =
        tiny_gan_config("b", 1, "").replace("kind = \"gan\"", "kind = \"gan\"\nafter = [\"a\"]");
    p.config("b.toml", &b);
    let mut last = None;
    let waiting = wait_for(30, || {
        std::thread::sleep(Duration::from_millis(80));
        last = p.run_named("b");
        last.as_ref().is_some_and(|r| {
            r.state == "queued"
                && r.reason
                    .as_deref()
                    .is_some_and(|x| x.starts_with("waiting for 'a'"))
        })
    });
    assert!(waiting, "b does not say it waits for a: {last:?}");
    p.ok(&["cancel", "a"]);
    p.wait_state("a", "cancelled", 60);
    let held = wait_for(30, || {
        std::thread::sleep(Duration::from_millis(80));
        last = p.run_named("b");
        last.as_ref().is_some_and(|r| {
            r.state == "queued"
                && r.reason.as_deref().is_some_and(|x| {
                    x.contains("held: dependency 'a'") && x.contains("is cancelled")
                })
        })
    });
    assert!(held, "b is not held with the reason: {last:?}");
    // The status table shows the reason too.
    assert!(p.ok(&["status"]).contains("held: dependency 'a'"));
}

#[test]
fn a_frozen_worker_shows_as_stalled_and_recovers() {
    let p = Project::new("daemon-stall", "stall_seconds = 3\n");
    p.ok(&["daemon"]);
    p.config("s.toml", &long_config("s", 3000));
    let running = p.wait_state("s", "running", 30);
    let run = p.run_dir(&running.id);
    // Once the worker has written its pid and a heartbeat.
    assert!(wait_for(30, || run
        .status()
        .is_ok_and(|s| s.pid.is_some() && s.heartbeat.is_some())));
    let pid = run.status().expect("status").pid.expect("pid");
    signal(pid, "-STOP");
    let mut last = None;
    let stalled = wait_for(30, || {
        std::thread::sleep(Duration::from_millis(100));
        last = p.run_named("s");
        last.as_ref().is_some_and(|r| r.stalled)
    });
    let table = p.ok(&["status"]);
    signal(pid, "-CONT");
    assert!(
        stalled,
        "a stopped worker never showed as stalled: {last:?}"
    );
    assert!(table.contains("running (stalled)"), "{table}");
    let recovered = wait_for(30, || {
        std::thread::sleep(Duration::from_millis(100));
        p.run_named("s")
            .is_some_and(|r| !r.stalled && r.state == "running")
    });
    assert!(recovered, "the worker did not come back from the stall");
}

#[test]
fn daemon_stop_with_stop_runs_checkpoints_them_and_resume_continues() {
    let p = Project::new("daemon-stop-runs", "");
    p.ok(&["daemon"]);
    p.config("st.toml", &long_config("st", 150));
    let running = p.wait_state("st", "running", 30);
    let run = p.run_dir(&running.id);
    assert!(wait_for(60, || gan_losses(&events(&run)).len() > 30));
    p.ok(&["daemon", "stop", "--stop-runs"]);
    let status = run.status().expect("status");
    assert_eq!(
        status.state,
        scintigan::store::RunState::Paused,
        "{status:?}"
    );
    assert!(status.pid.is_none(), "the worker ended");
    assert!(run.checkpoints().latest().expect("checkpoints").is_some());
    // The next daemon leaves it paused until asked; resume finishes it.
    p.ok(&["resume", "st"]);
    p.wait_state("st", "done", 120);
    assert_each_step_once(&events(&run), 900);
}

/// A size-limited tmpfs mounted at a test's folder, unmounted (lazily, so
/// a process still inside does not keep it) when the test ends.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, megabytes: u32) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount tmpfs: {}", stderr(&out));
        Self(at.to_path_buf())
    }
    fn resize(&self, megabytes: u32) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(&self.0)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "remount tmpfs: {}", stderr(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_pauses_the_run_with_its_reason_leaves_no_partial_checkpoint_and_is_not_retried() {
    if !needs(if is_root() {
        Ok(())
    } else {
        Err("the disk-full test mounts a size-limited tmpfs, which needs root".into())
    }) {
        return;
    }
    let p = Project::new("daemon-disk-full", "");
    // runs/ on 36 MB: one 22 MB checkpoint of this GAN fits, a second not.
    let disk = Tmpfs::mount(&p.dir.join("runs"), 36);
    std::fs::create_dir_all(p.dir.join("runs/.daemon")).expect("runs");
    std::fs::write(p.dir.join("runs/.daemon/daemon.toml"), "").expect("settings");
    p.config(
        "big.toml",
        "name = \"big\"\nkind = \"gan\"\n\
         data = { source = \"phantom-bone\", image_size = [32, 16], per_class = 4 }\n\
         model = { arch = \"acgan\", latent_dim = 64, base_channels = 48 }\n\
         train = { epochs = 3, batch_size = 4, device = \"cpu\", checkpoint_every = 1, ssim_every = 0 }\n",
    );
    p.ok(&["daemon"]);
    let paused = p.wait_state("big", "paused", 120);
    let reason = paused.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("disk full: ")
            && reason.contains("free in ")
            && reason.contains("a checkpoint needs about")
            && reason.contains(&format!("scintigan resume {}", paused.id)),
        "{reason}"
    );
    // No partial checkpoint; the epoch-1 one stays and `latest` names it.
    let run = p.run_dir(&paused.id);
    let names: Vec<String> = std::fs::read_dir(run.checkpoints_dir())
        .expect("checkpoints")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(".tmp-")),
        "a partial checkpoint was left: {names:?}"
    );
    assert_eq!(latest_checkpoint(&run).epoch, 1, "{names:?}");
    // Not retried: it stays paused, with no worker and no restart.
    std::thread::sleep(Duration::from_secs(3));
    let still = p.run_named("big").expect("run");
    assert_eq!(
        (still.state.as_str(), still.pid, still.retries),
        ("paused", None, 0)
    );
    assert!(
        !events(&run).iter().any(|r| matches!(&r.event,
            Event::Log { message, .. } if message.contains("worker died"))),
        "the daemon treated the pause as a dead worker"
    );
    // With space freed, resume continues from the kept checkpoint.
    disk.resize(120);
    p.ok(&["resume", &paused.id]);
    let done = p.wait_state("big", "done", 120);
    assert_eq!(done.retries, 0);
    let resumed = events(&run)
        .iter()
        .filter(|r| matches!(r.event, Event::Resumed { step, .. } if step > 0))
        .count();
    assert_eq!(resumed, 1, "continued from the epoch-1 checkpoint");
}

#[test]
fn a_foreground_resume_of_a_daemon_run_is_refused_and_no_event_is_lost() {
    let p = Project::new("daemon-lock", "");
    p.ok(&["daemon"]);
    p.config("locked.toml", &long_config("locked", 150));
    let running = p.wait_state("locked", "running", 30);
    let run = p.run_dir(&running.id);
    assert!(
        wait_for(60, || gan_losses(&events(&run)).len() >= 20),
        "no 20 steps within 60 s"
    );
    let worker = run.status().expect("status").pid.expect("worker pid");
    let root = run.root().to_string_lossy().into_owned();
    let out = p.cli(&["run", "--resume", &root]);
    assert!(!out.status.success(), "a second worker was let in");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("already being worked by pid {worker} on ")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // The daemon's worker goes on to the end: nothing cut, nothing retried.
    let done = p.wait_state("locked", "done", 180);
    assert_eq!(done.retries, 0);
    assert_each_step_once(&events(&run), 900);
    assert!(
        !events(&run)
            .iter()
            .any(|r| matches!(r.event, Event::Resumed { .. })),
        "the run was restarted"
    );
}

#[test]
fn a_config_already_run_in_the_foreground_is_not_queued_again_by_the_daemon() {
    let p = Project::new("daemon-foreground-done", "");
    // What `make demo` does without a terminal: the config in configs/,
    // run in the foreground to the end, no daemon.
    p.config("fg.toml", &tiny_gan_config("fg", 1, ""));
    let out = p.cli(&["run", "configs/fg.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Then the dashboard (here: any client) starts the daemon.
    p.ok(&["daemon"]);
    let listed = p.wait_run("fg", 30, "listed", |_| true);
    std::thread::sleep(Duration::from_secs(2));
    let runs: Vec<_> = p
        .status()
        .runs
        .into_iter()
        .filter(|r| r.name == "fg")
        .collect();
    assert_eq!(runs.len(), 1, "queued again: {runs:#?}");
    assert_eq!((runs[0].state.as_str(), &runs[0].id), ("done", &listed.id));
    // An edited config is a new run, as ever.
    p.config("fg.toml", &tiny_gan_config("fg", 2, ""));
    p.wait_run("fg", 30, "a second run queued", |r| r.id != listed.id);
}

#[test]
fn on_finish_runs_its_program_without_a_shell_for_each_ending_run_and_kills_it_on_timeout() {
    let out = scratch("daemon-on-finish-out");
    std::fs::create_dir_all(&out).expect("out");
    // One hook writes its environment to a file named by the run; `sh` is
    // the program here by the user's choice, the daemon starts no shell of
    // its own (the `;` and `$` in the second argument reach sh untouched).
    let record = out.join("record.sh");
    std::fs::write(
        &record,
        "#!/bin/sh\nenv | grep '^SCINTIGAN_RUN_' | sort > \"$1/$SCINTIGAN_RUN_NAME.env\"; echo hook-said-$SCINTIGAN_RUN_STATE\n",
    )
    .expect("script");
    let _ = Command::new("chmod").arg("+x").arg(&record).status();
    let settings = format!(
        "on_finish = [\"{}\", \"{}\"]\non_finish_timeout_seconds = 5\n",
        record.display(),
        out.display()
    );
    let p = Project::new("daemon-on-finish", &settings);
    p.ok(&["daemon"]);
    p.config("ok.toml", &tiny_gan_config("ok", 1, ""));
    let done = p.wait_state("ok", "done", 120);
    p.config("stop.toml", &long_config("stop", 3000));
    p.wait_state("stop", "running", 60);
    p.ok(&["cancel", "stop"]);
    let cancelled = p.wait_state("stop", "cancelled", 60);

    let read = |name: &str| {
        let path = out.join(format!("{name}.env"));
        let mut text = String::new();
        wait_for(10, || {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            text.contains("SCINTIGAN_RUN_STATE")
        });
        text
    };
    let env = read("ok");
    let runs = p.dir.join("runs");
    assert_eq!(
        env,
        format!(
            "SCINTIGAN_RUN_DIR={}\nSCINTIGAN_RUN_ID={}\nSCINTIGAN_RUN_NAME=ok\nSCINTIGAN_RUN_REASON=\nSCINTIGAN_RUN_STATE=done\n",
            runs.join(&done.id).display(),
            done.id
        )
    );
    let env = read("stop");
    assert!(
        env.contains(&format!("SCINTIGAN_RUN_ID={}\n", cancelled.id))
            && env.contains("SCINTIGAN_RUN_STATE=cancelled\n")
            && env.contains("SCINTIGAN_RUN_REASON=stopped on request at step "),
        "{env}"
    );
    let log_has = |text: &str| {
        wait_for(10, || {
            std::fs::read_to_string(p.paths().log_file()).is_ok_and(|l| l.contains(text))
        })
    };
    assert!(
        log_has("hook-said-done"),
        "the hook's output is not in daemon.log"
    );
    assert!(log_has("hook-said-cancelled"));
    assert!(log_has("exited 0"));

    // A program that outlives its timeout is killed, and the log says so.
    p.ok(&["daemon", "stop"]);
    std::fs::write(
        p.dir.join("runs/.daemon/daemon.toml"),
        "on_finish = [\"sleep\", \"60\"]\non_finish_timeout_seconds = 1\n",
    )
    .expect("settings");
    p.ok(&["daemon"]);
    p.config("slow.toml", &tiny_gan_config("slow", 1, ""));
    p.wait_state("slow", "done", 120);
    assert!(
        log_has("sleep killed after 1 s (on_finish_timeout_seconds)"),
        "{}",
        std::fs::read_to_string(p.paths().log_file()).unwrap_or_default()
    );
}
