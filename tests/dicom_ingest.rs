//! DICOM reading against files from an independent writer (pydicom and
//! dcmtk, through scripts/dicom_fixtures.py, installed by `make`), phantom
//! files against dcmtk's reader, the auto-crop on phantoms, and ingestion of
//! a mixed tree.

use scintigan::data::dicom::{self, SkipReason};
use scintigan::data::ingest::{self, IngestOptions};
use scintigan::data::phantom::bone::bone_patient;
use scintigan::data::phantom::write::{Layout, write_bone_phantoms};
use scintigan::data::prep::{self, Plane};
use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scintigan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Run the fixture writer into a fresh folder.
fn fixtures() -> PathBuf {
    let dir = temp_dir("dicom-fixtures");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dicom_fixtures.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("run .venv/bin/python (make test installs it)");
    assert!(
        out.status.success(),
        "scripts/dicom_fixtures.py failed (make test installs dcmtk, libopenjp2-tools and pydicom):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn read_f64(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn each_transfer_syntax_reads_the_writers_values_and_bad_files_give_their_reason() {
    let dir = fixtures();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected.as_object().unwrap();
    let mut checked = Vec::new();
    for (case, spec) in cases {
        if case == "bad" {
            continue;
        }
        let file = dir.join(spec["file"].as_str().unwrap());
        let result = dicom::read(&file);
        match case.as_str() {
            // Not decoded by this build: say so, one line.
            "jpegls_lossless_u16" => {
                let e = result.unwrap_err();
                assert!(
                    matches!(e, SkipReason::UnsupportedTransferSyntax { .. }),
                    "{case}: {e}"
                );
                assert!(e.to_string().contains("1.2.840.10008.1.2.4.80"), "{e}");
                continue;
            }
            // jpeg-decoder refuses 12-bit lossy JPEG.
            "jpeg_extended_u12" => {
                let e = result.unwrap_err();
                assert!(matches!(e, SkipReason::Decode(_)), "{case}: {e}");
                assert!(!e.to_string().contains('\n'));
                continue;
            }
            _ => {}
        }
        let image = result.unwrap_or_else(|e| panic!("{case}: {e}"));
        let (rows, cols, frames) = (
            spec["rows"].as_u64().unwrap() as usize,
            spec["columns"].as_u64().unwrap() as usize,
            spec["frames"].as_u64().unwrap() as usize,
        );
        assert_eq!(image.frames.len(), frames, "{case}");
        assert_eq!(
            image.transfer_syntax,
            spec["transfer_syntax"].as_str().unwrap()
        );
        assert_eq!(image.patient_id.as_deref(), Some("SYNTH-0001"));
        let want = read_f64(&dir.join(spec["values"].as_str().unwrap()));
        let got: Vec<f64> = image
            .frames
            .iter()
            .flat_map(|f| {
                assert_eq!((f.height, f.width), (rows, cols), "{case}");
                f.pixels.iter().map(|&p| f64::from(p))
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{case}");
        if let Some(tol) = spec.get("tolerance").and_then(|t| t.as_f64()) {
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(worst <= tol, "{case}: worst difference {worst} > {tol}");
        } else {
            let tol = spec["mean_abs_tolerance"].as_f64().unwrap();
            let mean = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
                / got.len() as f64;
            assert!(mean <= tol, "{case}: mean difference {mean} > {tol}");
        }
        checked.push(case.clone());
    }
    assert!(checked.len() >= 9, "decoded only {checked:?}");
    for (case, needle) in cases["bad"].as_object().unwrap() {
        let e = dicom::read(&dir.join(format!("{case}.dcm"))).unwrap_err();
        let line = e.to_string();
        assert!(
            line.contains(needle.as_str().unwrap()),
            "{case}: '{line}' lacks '{needle}'"
        );
        assert!(!line.contains('\n'), "{case}: one line: {line}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn phantom_dicom_files_pass_dcmdump_in_every_layout() {
    let dir = temp_dir("phantom-dcmdump");
    let summary = write_bone_phantoms(&dir, 6, 3, Layout::Mixed, [256, 64]).unwrap();
    assert_eq!(summary.patients_per_class.iter().sum::<usize>(), 6);
    let mut files: Vec<PathBuf> = Vec::new();
    for patient in std::fs::read_dir(dir.join("dicom")).unwrap() {
        for f in std::fs::read_dir(patient.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    // 2 patients each: two files, one multiframe, one side by side.
    assert_eq!(files.len(), 2 * 2 + 2 + 2);
    for f in &files {
        let out = Command::new("dcmdump")
            .arg("+E") // errors to stderr
            .arg(f)
            .output()
            .expect("dcmdump (make test installs dcmtk)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("(0008,0060) CS [NM]"), "{text}");
        assert!(text.contains("PHANTOM^SYNTHETIC"), "{text}");
        assert!(
            text.contains("=NuclearMedicineImageStorage"),
            "NM Image Storage: {text}"
        );
        assert!(text.contains("(0028,0100) US 16"), "{text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn auto_crop_keeps_the_whole_body_and_little_background() {
    let (h, w) = (1024, 256);
    for class in 0..3 {
        for i in 0..6 {
            let p = bone_patient(h, w, class, 17, i);
            for (canvas, body) in [
                (&p.anterior, &p.anterior_body),
                (&p.posterior, &p.posterior_body),
            ] {
                let plane = Plane::new(h, w, canvas.pixels.clone());
                let b = prep::body_box(&plane);
                let rows: Vec<usize> = (0..h)
                    .filter(|&y| (0..w).any(|x| body[y * w + x]))
                    .collect();
                let cols: Vec<usize> = (0..w)
                    .filter(|&x| (0..h).any(|y| body[y * w + x]))
                    .collect();
                let (top, bottom) = (rows[0], rows[rows.len() - 1] + 1);
                let (left, right) = (cols[0], cols[cols.len() - 1] + 1);
                assert!(
                    b.top <= top && b.bottom >= bottom && b.left <= left && b.right >= right,
                    "class {class} patient {i}: box {b:?} misses body rows {top}..{bottom} cols {left}..{right}"
                );
                let above = top - b.top;
                let below = b.bottom - bottom;
                let limit = (0.05 * b.height() as f64).floor() as usize;
                assert!(
                    above <= limit && below <= limit,
                    "class {class} patient {i}: {above} rows above the head, {below} below the feet (limit {limit})"
                );
            }
        }
    }
}

#[test]
fn ingest_reads_every_layout_keys_patients_and_lists_bad_files() {
    let dir = temp_dir("ingest");
    let data = dir.join("phantoms");
    write_bone_phantoms(&data, 9, 5, Layout::Mixed, [512, 128]).unwrap();
    // Bad files among the good ones do not stop the walk.
    let bad = data.join("dicom/junk");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("random.dcm"), [7u8; 3000]).unwrap();
    std::fs::write(bad.join("README.txt"), "export notes\n").unwrap();
    let good = std::fs::read_dir(data.join("dicom/SYNTH-00001"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(bad.join("cut.dcm"), &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.join("ingested");
    let opts = IngestOptions {
        size: [256, 64],
        labels: Some(data.join("labels.csv")),
        ..Default::default()
    };
    let report = ingest::ingest(&data.join("dicom"), &out, &opts).unwrap();
    assert_eq!(report.patients, 9);
    assert_eq!(
        report.images.len(),
        18,
        "two views per patient in every layout"
    );
    assert_eq!(report.unlabelled, 0);
    for pair in report.images.chunks(2) {
        assert_eq!(pair[0].patient, pair[1].patient);
        assert_eq!(
            (pair[0].view.as_str(), pair[1].view.as_str()),
            ("anterior", "posterior")
        );
        assert!(!pair[0].class.is_empty());
    }
    let skipped: Vec<&str> = report.skipped.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        skipped,
        vec!["junk/README.txt", "junk/cut.dcm", "junk/random.dcm"]
    );
    assert!(
        report.skipped[1].1.starts_with("truncated"),
        "{}",
        report.skipped[1].1
    );
    assert!(
        report.skipped[2].1.starts_with("not DICOM"),
        "{}",
        report.skipped[2].1
    );
    // The shareable outputs hold no raw patient ID or name.
    let manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    assert!(
        !manifest.contains("SYNTH") && !manifest.contains("PHANTOM"),
        "{manifest}"
    );
    for entry in std::fs::read_dir(out.join("images")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SYNTH"),
            "{}",
            path.display()
        );
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), (64, 256));
        assert!(
            matches!(img, image::DynamicImage::ImageLuma16(_)),
            "16-bit gray"
        );
    }
    // Labels follow the raw ID through the key: compare with labels.csv.
    let labels = std::fs::read_to_string(data.join("labels.csv")).unwrap();
    let mut want: Vec<String> = labels
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    let mut got: Vec<String> = report
        .images
        .iter()
        .step_by(2)
        .map(|i| i.class.clone())
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_single_tagged_view_is_never_cut_in_two() {
    // 256x128 views (2:1) in one file per view: the tags name the view,
    // so the side-by-side split must not apply.
    let dir = temp_dir("ingest-tagged");
    write_bone_phantoms(&dir, 3, 2, Layout::TwoFiles, [256, 128]).unwrap();
    let out = dir.join("out");
    let opts = IngestOptions {
        size: [128, 64],
        ..Default::default()
    };
    let report = ingest::ingest(&dir.join("dicom"), &out, &opts).unwrap();
    assert_eq!(
        report.images.len(),
        6,
        "{:?}",
        report.images.iter().map(|i| &i.file).collect::<Vec<_>>()
    );
    assert!(report.images.iter().all(|i| !i.file.ends_with("_2.png")));
    // A truncated salt is an error, not a silent new key set.
    std::fs::write(out.join(".patient-salt"), "abc\n").unwrap();
    let e = ingest::ingest(&dir.join("dicom"), &out, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(".patient-salt") && e.contains("32 hex digits"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
