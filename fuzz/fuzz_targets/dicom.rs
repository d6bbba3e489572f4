//! Bytes as a file -> `dicom::read`: never a panic, and (run with
//! `-rss_limit_mb=1536`) never more than 1.5 GB for one file; what it
//! accepts is a well-formed grayscale image.
//!
//! `read` catches panics inside the DICOM libraries (they become a
//! `SkipReason`), so this target replaces libFuzzer's abort-on-panic hook
//! with one that only prints panics from outside the registry's crates;
//! any panic that leaves the target still ends the run (libfuzzer-sys
//! aborts on it). `SCINTIGAN_FUZZ_STRICT_PANICS=1` keeps libFuzzer's hook,
//! so that the library panics `read` catches count as crashes too (to find
//! and report them upstream).

#![no_main]

use libfuzzer_sys::fuzz_target;
use scintigan::data::dicom::{self, MAX_FRAMES, MIN_SIDE};

#[path = "scratch.rs"]
mod scratch;

fuzz_target!(
    init: {
        if std::env::var_os("SCINTIGAN_FUZZ_STRICT_PANICS").is_none() {
            std::panic::set_hook(Box::new(|info| {
                let in_dependency = info
                    .location()
                    .is_some_and(|l| l.file().contains("/.cargo/registry/"));
                if !in_dependency {
                    eprintln!("{info}");
                }
            }));
        }
    },
    |data: &[u8]| {
    let path = scratch::dir("dicom").join("input.dcm");
    std::fs::write(&path, data).expect("write the input file");
    match dicom::read(&path) {
        Ok(image) => {
            assert!(!image.frames.is_empty());
            assert!(image.frames.len() <= MAX_FRAMES as usize);
            assert_eq!(image.views.len(), image.frames.len());
            for plane in &image.frames {
                assert!(plane.height >= MIN_SIDE as usize && plane.width >= MIN_SIDE as usize);
                assert_eq!(plane.pixels.len(), plane.height * plane.width);
            }
        }
        Err(reason) => {
            let line = reason.to_string();
            assert!(
                !line.contains('\n'),
                "a skip reason over several lines: {line:?}"
            );
        }
    }
});
