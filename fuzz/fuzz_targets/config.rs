//! Config text -> `parse_config`: never a panic; a config it accepts
//! freezes (`to_toml`) into text that parses back, as a run directory
//! re-reads it, to the same spec.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scintigan::config::{KnownRuns, parse_config};
use std::collections::BTreeMap;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Runs other files define, one of them with a dependency of its own, so
    // `after` and `init_from = "run:..."` (and cycles through them) resolve.
    let known = KnownRuns {
        deps: BTreeMap::from([
            ("pretrain".to_string(), Vec::new()),
            ("finetune".to_string(), vec!["pretrain".to_string()]),
        ]),
        permissive: false,
    };
    let base = Path::new("/fuzz/configs");
    let spec = match parse_config("fuzz.toml", text, base, "fuzz", &known) {
        Ok(spec) => spec,
        Err(errors) => {
            assert!(!errors.is_empty(), "rejected with no error");
            for e in &errors {
                let _ = e.to_string();
            }
            return;
        }
    };
    let _ = spec.execution_order();
    let _ = spec.external_deps();
    let frozen = spec
        .to_toml()
        .unwrap_or_else(|e| panic!("an accepted config does not freeze: {e}"));
    let again = parse_config(
        "config.toml",
        &frozen,
        Path::new("/fuzz/runs/r"),
        "config",
        &KnownRuns::permissive(),
    )
    .unwrap_or_else(|errs| {
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        panic!("frozen config does not parse back: {errs:?}\n--- frozen ---\n{frozen}")
    });
    // Compared as frozen text: a NaN would make `==` on the specs fail
    // though nothing was lost.
    let refrozen = again.to_toml().expect("re-freeze");
    assert_eq!(frozen, refrozen, "frozen config changes when read back");
});
