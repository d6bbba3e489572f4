//! Bytes as `events.jsonl` -> `read_events`, then `EventWriter::open` (cuts
//! a torn last line), `retain` (as a resume does: drops step events after a
//! point, moves unparsable lines to `events.rejected.jsonl`; under the run
//! lock, as a worker holds it) and `append`:
//! never a panic, and the rewritten log reads back whole (floats to within
//! a few units in the last place, see `exact_floats`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use scintigan::store::lock::{self, RunLock};
use scintigan::store::{Event, EventRecord, EventWriter, REJECTED_FILE, read_events};
use std::sync::OnceLock;

#[path = "scratch.rs"]
mod scratch;

/// `SCINTIGAN_FUZZ_EXACT_FLOATS=1`: a kept record must read back byte for
/// byte. By default a float may move by a few units in the last place:
/// serde_json (without its `float_roundtrip` feature) does not parse every
/// number it writes back to the same f64, e.g. 1.7922222222222223e113
/// (fuzz/regressions/events/float-roundtrip.jsonl).
fn exact_floats() -> bool {
    std::env::var_os("SCINTIGAN_FUZZ_EXACT_FLOATS").is_some()
}

/// Equal JSON, numbers within 4 units in the last place.
fn alike(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            // Same sign: adjacent floats have adjacent bit patterns.
            x == y || (x.signum() == y.signum() && x.to_bits().abs_diff(y.to_bits()) <= 4)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| alike(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| alike(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch::dir("events");
    // Only the run lock's holder may cut the log: this process holds it on
    // its scratch folder for its whole life.
    static LOCK: OnceLock<RunLock> = OnceLock::new();
    let held = LOCK.get_or_init(|| lock::acquire(dir).expect("take the run lock"));
    let path = dir.join("events.jsonl");
    let rejected = dir.join(REJECTED_FILE);
    let _ = std::fs::remove_file(&rejected);
    std::fs::write(&path, data).expect("write the input file");

    let history = read_events(&path).expect("read_events on a readable file");
    assert!(history.valid_len <= data.len() as u64);
    let lines = data[..history.valid_len as usize]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    assert_eq!(
        history.records.len() + history.unparsed.len(),
        lines,
        "every complete line is a record or kept verbatim"
    );

    // A log already at the largest seq cannot be appended to: refused.
    if history.records.iter().any(|r| r.seq == u64::MAX) {
        let err = EventWriter::open(&path).expect_err("a log at seq u64::MAX is refused");
        assert!(err.to_string().contains("the largest there is"), "{err}");
        return;
    }
    let mut writer = EventWriter::open(&path).expect("open for appending");
    let len = std::fs::metadata(&path).expect("stat").len();
    assert_eq!(len, history.valid_len, "open cuts exactly the torn tail");

    let keep = |r: &EventRecord| r.event.position().is_none_or(|(_, step)| step <= 2);
    let kept: Vec<String> = history
        .records
        .iter()
        .filter(|r| keep(r))
        .map(|r| serde_json::to_string(r).expect("a record serialises"))
        .collect();
    let retained = writer.retain(held, keep).expect("retain");
    assert_eq!(retained.moved, history.unparsed.len());
    assert_eq!(
        retained.dropped as usize,
        history.records.len() - kept.len()
    );
    if retained.moved > 0 {
        let text = std::fs::read_to_string(&rejected).expect("the rejected lines");
        assert_eq!(text, format!("{}\n", history.unparsed.join("\n")));
    }

    let after = read_events(&path).expect("read the rewritten log");
    assert_eq!(
        after.skipped_lines, 0,
        "retain wrote a line that does not parse back"
    );
    let again: Vec<String> = after
        .records
        .iter()
        .map(|r| serde_json::to_string(r).expect("a record serialises"))
        .collect();
    assert_eq!(again.len(), kept.len(), "retain lost or added a record");
    for (a, k) in again.iter().zip(&kept) {
        let same = if exact_floats() {
            a == k
        } else {
            alike(
                &serde_json::from_str(a).expect("json"),
                &serde_json::from_str(k).expect("json"),
            )
        };
        assert!(
            same,
            "retain changed a kept record:\n  {k}\nread back as\n  {a}"
        );
    }

    let rec = writer
        .append(Event::info("fuzz".into()))
        .expect("append after retain");
    assert!(
        history.records.iter().all(|r| r.seq < rec.seq),
        "seq {} reused or out of order",
        rec.seq
    );
});
