//! `scintigan data ...`: phantom data sets, DICOM ingestion, contact sheets.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use scintigan::data::ingest::{self, IngestOptions};
use scintigan::data::phantom::write::{self, Layout};
use scintigan::data::prep::{self, Plane, Window};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Subcommand)]
pub enum DataAction {
    /// Write a synthetic data set: whole-body bone scans as DICOM NM files
    /// with labels.csv (--kind bone), or chest X-rays in the COVID-19
    /// Radiography Database's layout (--kind chest).
    Phantom {
        #[arg(long)]
        out: PathBuf,
        /// bone or chest.
        #[arg(long, default_value = "bone")]
        kind: String,
        /// Bone: patients (two views each), in the paper's class ratio
        /// 81:63:29 (its 162:126:58 images). Chest: images, in the
        /// database's ratio.
        #[arg(long, default_value_t = 173)]
        patients: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Bone: two-files, multiframe, side-by-side or mixed (the three in turn).
        #[arg(long, default_value = "two-files")]
        layout: String,
        /// HEIGHTxWIDTH of a view (bone, default 1024x256) or of the square
        /// image (chest, default 299x299).
        #[arg(long)]
        size: Option<String>,
    },
    /// Turn a folder of DICOM files into cropped, windowed 16-bit PNGs
    /// (OUT/images/), OUT/manifest.csv (patient key, view, class, file,
    /// source, crop box) and OUT/skipped.csv (every file left out and why).
    /// Patient IDs are replaced by salted hashes.
    Ingest {
        dicom_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// CSV with patient_id and class columns.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// HEIGHTxWIDTH of the written images.
        #[arg(long, default_value = "1024x256")]
        size: String,
        /// Intensity window as LOW,HIGH percentiles.
        #[arg(long, default_value = "1,99.5")]
        window: String,
    },
    /// A PNG with one patient per class (anterior and posterior side by
    /// side, classes left to right in name order) from an ingested folder.
    Sheet {
        ingested: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Height of each view in the sheet, pixels.
        #[arg(long, default_value_t = 384)]
        height: usize,
    },
}

pub fn parse_size(s: &str) -> Result<[usize; 2]> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("size '{s}': expected HEIGHTxWIDTH, e.g. 1024x256"))?;
    let parse = |v: &str| -> Result<usize> {
        let n: usize = v
            .trim()
            .parse()
            .with_context(|| format!("size '{s}': '{v}' is not a whole number"))?;
        if !(8..=8192).contains(&n) {
            bail!("size '{s}': {n} is out of range; expected 8 to 8192 pixels");
        }
        Ok(n)
    };
    Ok([parse(h)?, parse(w)?])
}

fn parse_window(s: &str) -> Result<Window> {
    let bad = || {
        format!(
            "window '{s}': expected LOW,HIGH percentiles with 0 <= LOW < HIGH <= 100, e.g. 1,99.5"
        )
    };
    let (lo, hi) = s.split_once(',').with_context(bad)?;
    let lo: f64 = lo.trim().parse().ok().with_context(bad)?;
    let hi: f64 = hi.trim().parse().ok().with_context(bad)?;
    if !(lo.is_finite() && hi.is_finite() && (0.0..100.0).contains(&lo) && lo < hi && hi <= 100.0) {
        bail!(bad());
    }
    Ok(Window { low: lo, high: hi })
}

pub fn dispatch(action: &DataAction) -> Result<ExitCode> {
    match action {
        DataAction::Phantom {
            out,
            kind,
            patients,
            seed,
            layout,
            size,
        } => {
            let start = Instant::now();
            if !(1..=100_000).contains(patients) {
                bail!("--patients {patients}: expected 1 to 100000");
            }
            match kind.as_str() {
                "bone" => {
                    let layout = Layout::parse(layout).with_context(|| {
                        format!(
                            "layout '{layout}': expected one of {}",
                            Layout::NAMES.join(", ")
                        )
                    })?;
                    let size = parse_size(size.as_deref().unwrap_or("1024x256"))?;
                    let s = write::write_bone_phantoms(out, *patients, *seed, layout, size)?;
                    println!(
                        "wrote {} bone-scan patients ({} healthy, {} metastasis, {} benign) as {} DICOM files ({layout}) under {} and {} in {:.1} s",
                        s.patients_per_class.iter().sum::<usize>(),
                        s.patients_per_class[0],
                        s.patients_per_class[1],
                        s.patients_per_class[2],
                        s.files,
                        out.join("dicom").display(),
                        s.labels.display(),
                        start.elapsed().as_secs_f64()
                    );
                }
                "chest" => {
                    let [h, w] = parse_size(size.as_deref().unwrap_or("299x299"))?;
                    if h != w {
                        bail!(
                            "size {h}x{w}: chest phantoms are square like the database's 299x299"
                        );
                    }
                    let per_class = write::write_chest_phantoms(out, *patients, *seed, h)?;
                    println!(
                        "wrote {} chest X-rays (COVID {}, Lung_Opacity {}, Normal {}, Viral Pneumonia {}) under {} in {:.1} s",
                        per_class.iter().sum::<usize>(),
                        per_class[0],
                        per_class[1],
                        per_class[2],
                        per_class[3],
                        out.display(),
                        start.elapsed().as_secs_f64()
                    );
                }
                other => bail!("kind '{other}': expected bone or chest"),
            }
            Ok(ExitCode::SUCCESS)
        }
        DataAction::Ingest {
            dicom_dir,
            out,
            labels,
            size,
            window,
        } => {
            let start = Instant::now();
            let opts = IngestOptions {
                size: parse_size(size)?,
                window: parse_window(window)?,
                labels: labels.clone(),
            };
            let report = ingest::ingest(dicom_dir, out, &opts)?;
            // Source paths often carry names or IDs: the terminal gets the
            // reasons and their counts, skipped.csv (private) the paths.
            let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
            for (_, reason) in &report.skipped {
                let kind = reason.split(':').next().unwrap_or(reason).to_string();
                *reasons.entry(kind).or_default() += 1;
            }
            for (reason, n) in &reasons {
                println!("skipped {n} file(s): {reason}");
            }
            if !report.skipped.is_empty() {
                println!(
                    "every skipped file with its full reason: {} (mode 0600: it names source paths)",
                    out.join("skipped.csv").display()
                );
            }
            println!(
                "ingested {} images of {} patients into {} ({} files skipped) in {:.1} s",
                report.images.len(),
                report.patients,
                out.display(),
                report.skipped.len(),
                start.elapsed().as_secs_f64()
            );
            if report.without_patient_id > 0 {
                println!(
                    "warning: {} patient(s) come from files without a PatientID: each folder (or top-level file) stands for one patient",
                    report.without_patient_id
                );
            }
            if labels.is_some() {
                if report.unlabelled > 0 {
                    println!(
                        "warning: {} patients have no row in the labels file; their class is empty in manifest.csv",
                        report.unlabelled
                    );
                }
                if report.labels_unused > 0 {
                    println!(
                        "warning: {} labels rows name a patient found in no file",
                        report.labels_unused
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DataAction::Sheet {
            ingested,
            out,
            height,
        } => {
            if !(32..=4096).contains(height) {
                bail!("--height {height}: expected 32 to 4096 pixels");
            }
            sheet(ingested, out, *height)?;
            println!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One patient per class with both views, tiled left to right.
fn sheet(ingested: &Path, out: &Path, height: usize) -> Result<()> {
    let manifest = ingested.join("manifest.csv");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "{}: cannot read; expected the output folder of `scintigan data ingest`",
            manifest.display()
        )
    })?;
    // patient -> (class, [anterior file, posterior file])
    let mut patients: std::collections::BTreeMap<String, (String, [Option<String>; 2])> =
        Default::default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 4 {
            continue;
        }
        let e = patients
            .entry(f[0].to_string())
            .or_insert_with(|| (f[2].to_string(), [None, None]));
        match f[1] {
            "anterior" => e.1[0] = Some(f[3].to_string()),
            "posterior" => e.1[1] = Some(f[3].to_string()),
            _ => {}
        }
    }
    let mut chosen: std::collections::BTreeMap<String, [String; 2]> = Default::default();
    for (class, [a, p]) in patients.into_values() {
        if let (Some(a), Some(p)) = (a, p) {
            chosen.entry(class).or_insert([a, p]);
        }
    }
    if chosen.is_empty() {
        bail!("{}: no patient with both views", manifest.display());
    }
    let width = height / 4;
    let gap = 8;
    let tiles: Vec<Plane> = chosen
        .values()
        .flatten()
        .map(|file| {
            let path = ingested.join(file);
            let img = image::open(&path)
                .with_context(|| format!("{}: cannot read image", path.display()))?
                .into_luma16();
            let (w, h) = img.dimensions();
            let plane = Plane::new(
                h as usize,
                w as usize,
                img.pixels().map(|p| f32::from(p.0[0]) / 65535.0).collect(),
            );
            Ok(prep::resize_pad(&plane, height, width))
        })
        .collect::<Result<_>>()?;
    let total_w =
        tiles.len() * width + (tiles.len() - 1) * gap + chosen.len().saturating_sub(1) * gap;
    let mut canvas = image::GrayImage::from_pixel(total_w as u32, height as u32, image::Luma([40]));
    let mut x0 = 0;
    for (i, tile) in tiles.iter().enumerate() {
        for y in 0..height {
            for x in 0..width {
                // Inverted grey scale, as bone scans are read: uptake dark.
                let v = 255.0 - tile.at(y, x).clamp(0.0, 1.0) * 255.0;
                canvas.put_pixel((x0 + x) as u32, y as u32, image::Luma([v.round() as u8]));
            }
        }
        x0 += width + gap + if i % 2 == 1 { gap } else { 0 };
    }
    scintigan::store::save_png_atomic(out, canvas)
        .with_context(|| format!("{}: cannot write", out.display()))?;
    Ok(())
}
