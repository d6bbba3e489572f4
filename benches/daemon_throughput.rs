//! The daemon's costs: events per second from a worker's `events.jsonl`
//! through the daemon to a subscriber, and the daemon's CPU while idle.
//!
//! `cargo bench --bench daemon_throughput [-- EVENTS]` (default 1,000,000).
//! The writer appends GAN step events exactly as a worker does (one `write`
//! per line); the clock runs from the first append until the subscriber
//! has received and parsed the last event.

use scintigan::config::{KnownRuns, parse_config};
use scintigan::daemon::Paths;
use scintigan::daemon::client::Client;
use scintigan::daemon::protocol::{Reply, Request};
use scintigan::store::{Event, EventRecord, EventWriter, RunDir};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let count: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-daemon");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("configs")).expect("scratch dir");
    let paths = Paths::new(&root.join("runs"), &root.join("configs"));
    let spec = parse_config(
        "bench.toml",
        "name = \"bench\"\nkind = \"gan\"\n",
        &root,
        "bench",
        &KnownRuns::default(),
    )
    .expect("config");
    let run = RunDir::create(&paths.runs, &spec).expect("run dir");
    // A finished run, so the daemon does not start a worker for it.
    let mut status = run.status().expect("status");
    status.state = scintigan::store::RunState::Done;
    status.write(&run.status_path()).expect("status");

    let bin = env!("CARGO_BIN_EXE_scintigan");
    let started = Command::new(bin)
        .arg("--runs-dir")
        .arg(&paths.runs)
        .arg("--configs-dir")
        .arg(&paths.configs)
        .arg("daemon")
        .status()
        .expect("start daemon");
    assert!(started.success());
    let daemon = paths.recorded_pid().expect("daemon pid");

    // Idle: nothing queued, nobody connected.
    std::thread::sleep(Duration::from_secs(2));
    let idle_secs = 20.0;
    let cpu0 = scintigan::daemon::cpu_seconds(daemon).expect("cpu time");
    std::thread::sleep(Duration::from_secs_f64(idle_secs));
    let cpu1 = scintigan::daemon::cpu_seconds(daemon).expect("cpu time");
    println!(
        "daemon idle CPU: {:.3} % of a core ({:.3} s of CPU in {idle_secs} s)",
        100.0 * (cpu1 - cpu0) / idle_secs,
        cpu1 - cpu0
    );

    let mut client = Client::connect(&paths).expect("connect");
    client
        .send(Request::Subscribe { run: run.id() })
        .expect("subscribe");
    let reader = std::thread::spawn(move || {
        let mut received = 0u64;
        let mut last_seq = 0u64;
        while received < count {
            match client.next(Some(Duration::from_secs(30))) {
                Ok(Reply::Events { events, .. }) => {
                    for e in events {
                        let rec: EventRecord = serde_json::from_str(e.get()).expect("record");
                        assert!(rec.seq > last_seq, "out of order");
                        last_seq = rec.seq;
                        received += 1;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("after {received} events: {e}"),
            }
        }
        (Instant::now(), received)
    });
    let cpu_before = scintigan::daemon::cpu_seconds(daemon).expect("cpu time");
    let mut writer = EventWriter::open(&run.events_path()).expect("writer");
    let start = Instant::now();
    for step in 1..=count {
        writer
            .append(Event::GanStep {
                stage: "bench".into(),
                epoch: 1 + step / 1000,
                step,
                g_loss: 1.0 / step as f64,
                d_loss: 0.5,
                d_real_acc: 0.75,
                d_fake_acc: 0.25,
                d_class_acc: 0.5,
                images_per_sec: 1234.5,
            })
            .expect("append");
    }
    let written = start.elapsed().as_secs_f64();
    let (end, received) = reader.join().expect("subscriber");
    let total = end.duration_since(start).as_secs_f64();
    let cpu_after = scintigan::daemon::cpu_seconds(daemon).expect("cpu time");
    println!(
        "worker -> daemon -> subscriber: {received} events in {total:.2} s = {:.0} events/s (writer alone {:.0} events/s; daemon CPU {:.2} s)",
        received as f64 / total,
        count as f64 / written,
        cpu_after - cpu_before
    );
    let _ = Command::new(bin)
        .arg("--runs-dir")
        .arg(&paths.runs)
        .args(["daemon", "stop"])
        .status();
}
