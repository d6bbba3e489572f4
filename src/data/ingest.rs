//! `scintigan data ingest`: a tree of DICOM files to cropped, windowed,
//! resized 16-bit PNGs with a manifest, every skipped file listed with its
//! reason.
//!
//! Per view: crop to the body ([`prep::body_box`] on the modality values),
//! window the crop ([`prep::normalise`], percentiles 1 and 99.5 by default),
//! resize keeping the aspect ratio and pad ([`prep::resize_pad`]).
//!
//! Privacy: the raw PatientID is read from each file, hashed with a salt
//! (SHA-256 of salt and ID, first 12 hex digits) and dropped. The salt is
//! made once, kept in `OUT/.patient-salt` (mode 0600) beside the data and
//! reused, so a re-ingest gives the same keys; it never goes into runs.
//! PNG names, the manifest and everything downstream see only the key.

use super::dicom::{self, SkipReason, View};
use super::labels::csv_fields;
use super::prep::{self, Plane, Window};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Labels {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IngestError + '_ {
    move |e| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// `[height, width]` of the PNGs.
    pub size: [usize; 2],
    pub window: Window,
    /// CSV with `patient_id` and `class` columns (header row required).
    pub labels: Option<PathBuf>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            size: [1024, 256],
            window: Window::default(),
            labels: None,
        }
    }
}

/// One written image (a manifest row).
#[derive(Debug, Clone)]
pub struct Ingested {
    pub patient: String,
    pub view: String,
    pub class: String,
    /// Relative to the output folder.
    pub file: String,
    /// Relative to the DICOM folder (private: written to `sources.csv`
    /// only; the manifest names it by [`Ingested::source_key`]).
    pub source: String,
    /// `s` and 12 hex digits of the salted hash of `source`.
    pub source_key: String,
    pub crop: prep::CropBox,
}

#[derive(Debug, Default)]
pub struct IngestReport {
    pub images: Vec<Ingested>,
    pub skipped: Vec<(String, String)>,
    pub patients: usize,
    /// Patients whose ID the labels file does not list (class left empty).
    pub unlabelled: usize,
    /// Label rows whose patient appeared in no file.
    pub labels_unused: usize,
    /// Patients made up for files without a PatientID (their folder, or
    /// the file itself at the top level, stands for the patient).
    pub without_patient_id: usize,
}

/// The salted patient key. The salt is read from `out/.patient-salt`, or
/// made from the OS's random source and written there (mode 0600).
pub struct Pseudonymiser {
    salt: Vec<u8>,
}

impl Pseudonymiser {
    pub fn open(out: &Path) -> Result<Self, IngestError> {
        let path = out.join(".patient-salt");
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let salt = text.trim().as_bytes().to_vec();
            if salt.len() < 32 {
                return Err(IngestError::Io {
                    path,
                    message: format!(
                        "salt of {} characters; expected the 32 hex digits ingest wrote (a new salt changes every patient key: restore the file, or delete it to start afresh)",
                        salt.len()
                    ),
                });
            }
            return Ok(Self { salt });
        }
        let mut bytes = [0u8; 16];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(io(Path::new("/dev/urandom")))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&path, &format!("{hex}\n"))?;
        Ok(Self {
            salt: hex.into_bytes(),
        })
    }

    /// `p` and the first 12 hex digits of SHA-256(salt, ":", id).
    pub fn key(&self, patient_id: &str) -> String {
        let mut h = Sha256::new();
        h.update(&self.salt);
        h.update(b":");
        h.update(patient_id.as_bytes());
        let digest = h.finalize();
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("p{hex}")
    }
}

/// Every file under `root`, sorted, skipping hidden entries. Links to files
/// are read; links to folders are not followed (no loops).
fn walk(root: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io(&dir))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                || (kind.is_symlink() && path.metadata().is_ok_and(|m| m.is_file()))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Labels: raw patient ID -> class, from a CSV with a header naming
/// `patient_id` (or `patient`) and `class` (or `label`) columns.
fn read_labels(path: &Path) -> Result<HashMap<String, String>, IngestError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    // A spreadsheet's UTF-8 export starts with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let bad = |line: usize, message: String| IngestError::Labels {
        path: path.to_path_buf(),
        line,
        message,
    };
    let Some((_, header)) = lines.next() else {
        return Err(bad(
            1,
            "empty labels file; expected a header row 'patient_id,class'".into(),
        ));
    };
    let cols: Vec<String> = csv_fields(header)
        .iter()
        .map(|c| c.to_lowercase())
        .collect();
    let find = |names: &[&str]| cols.iter().position(|c| names.contains(&c.as_str()));
    let (Some(pid), Some(cls)) = (find(&["patient_id", "patient"]), find(&["class", "label"]))
    else {
        return Err(bad(
            1,
            format!("header '{header}' lacks the columns; expected 'patient_id' and 'class'"),
        ));
    };
    let mut labels: HashMap<String, String> = HashMap::new();
    for (i, line) in lines {
        let fields = csv_fields(line);
        let (Some(id), Some(class)) = (fields.get(pid), fields.get(cls)) else {
            return Err(bad(
                i + 1,
                format!(
                    "{} fields; expected at least {}",
                    fields.len(),
                    pid.max(cls) + 1
                ),
            ));
        };
        if id.is_empty() || class.is_empty() {
            return Err(bad(i + 1, "empty patient_id or class".into()));
        }
        if let Some(before) = labels.insert(id.clone(), class.clone())
            && before != *class
        {
            return Err(bad(
                i + 1,
                format!(
                    "patient listed again with class '{class}' (before: '{before}'); expected one class per patient"
                ),
            ));
        }
    }
    Ok(labels)
}

/// One decoded file split into its views.
struct FileViews {
    patient_id: String,
    /// Whether the file had no PatientID (its folder or name stands in).
    no_patient_id: bool,
    views: Vec<(Option<View>, Plane)>,
}

/// Frames to views: two frames are two views; one frame whose tags name no
/// view and that is 3/8 to 3/4 as wide as it is tall holds two whole-body
/// views side by side (left anterior, right posterior); any other frame is
/// one view.
fn views_of(image: dicom::DicomImage, source: &str) -> Result<FileViews, SkipReason> {
    let no_patient_id = image.patient_id.is_none();
    let patient_id = image.patient_id.clone().unwrap_or_else(|| {
        // No PatientID: the folder holding the file stands for the
        // patient; a file at the top level is its own.
        match Path::new(source).parent() {
            Some(p) if !p.as_os_str().is_empty() => format!("folder:{}", p.display()),
            _ => format!("file:{source}"),
        }
    });
    let tagged = image.views.first().copied().flatten();
    let mut frames = image.frames.into_iter();
    let views = match (frames.next(), frames.next(), frames.next()) {
        (Some(frame), None, None) => {
            // Whole-body views are about 4:1, two side by side about 2:1;
            // squarer images (spot views) stay whole.
            let ratio = frame.width as f64 / frame.height.max(1) as f64;
            if tagged.is_none() && ratio > 0.375 && ratio <= 0.75 {
                let (l, r) = prep::split_side_by_side(&frame);
                vec![(Some(View::Anterior), l), (Some(View::Posterior), r)]
            } else {
                vec![(tagged, frame)]
            }
        }
        (Some(a), Some(b), None) => {
            let mut views: Vec<Option<View>> = image.views.clone();
            if views.iter().all(Option::is_none) {
                // Dual-head convention: detector 1 anterior, 2 posterior.
                views = vec![Some(View::Anterior), Some(View::Posterior)];
            }
            views.into_iter().zip([a, b]).collect()
        }
        _ => {
            return Err(SkipReason::Decode(
                "expected 1 frame (one view, or two side by side) or 2 (anterior and posterior)"
                    .into(),
            ));
        }
    };
    Ok(FileViews {
        patient_id,
        no_patient_id,
        views,
    })
}

/// Crop, window and resize one view to 16-bit pixels.
pub fn prepare_view(plane: &Plane, size: [usize; 2], window: Window) -> (Vec<u16>, prep::CropBox) {
    let crop = prep::body_box(plane);
    let mut body = plane.crop(crop);
    prep::normalise(&mut body, window);
    let out = prep::resize_pad(&body, size[0], size[1]);
    let pixels = out
        .pixels
        .iter()
        .map(|&p| (p.clamp(0.0, 1.0) * 65535.0).round() as u16)
        .collect();
    (pixels, crop)
}

/// A decoded, prepared file: patient, whether it had an ID, and its views.
type Prepared = Result<(String, bool, Vec<(Option<View>, Vec<u16>, prep::CropBox)>), SkipReason>;

fn prepare_file(path: &Path, source: &str, opts: &IngestOptions) -> Prepared {
    let image = dicom::read(path)?;
    for (i, f) in image.frames.iter().enumerate() {
        let first = f.pixels.first().copied().unwrap_or(0.0);
        if f.pixels.iter().all(|&p| p == first) {
            return Err(SkipReason::Decode(format!(
                "frame {} is flat (every pixel {first}); expected an image",
                i + 1
            )));
        }
    }
    let fv = views_of(image, source)?;
    let views = fv
        .views
        .iter()
        .map(|(v, plane)| {
            let (px, crop) = prepare_view(plane, opts.size, opts.window);
            (*v, px, crop)
        })
        .collect();
    Ok((fv.patient_id, fv.no_patient_id, views))
}

/// Ingest every DICOM file under `dicom_dir` into `out`. PNGs are written
/// as each chunk of files is decoded; only the manifest rows stay in memory.
pub fn ingest(
    dicom_dir: &Path,
    out: &Path,
    opts: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    if !dicom_dir.is_dir() {
        return Err(IngestError::Io {
            path: dicom_dir.to_path_buf(),
            message: "not a folder; expected a folder of DICOM files".into(),
        });
    }
    let labels = match &opts.labels {
        Some(p) => Some(read_labels(p)?),
        None => None,
    };
    let images_dir = out.join("images");
    std::fs::create_dir_all(&images_dir).map_err(io(&images_dir))?;
    let keys = Pseudonymiser::open(out)?;
    let files = walk(dicom_dir)?;
    let mut report = IngestReport::default();
    let relative = |p: &Path| p.strip_prefix(dicom_dir).unwrap_or(p).display().to_string();
    // Per patient key: its class, and how many images of each view it has.
    let mut patients: BTreeMap<String, (String, HashMap<String, usize>)> = BTreeMap::new();
    let mut used_labels = std::collections::HashSet::new();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in files.chunks(threads * 4) {
        // Decode and prepare on every core; results in file order.
        let results: Vec<Prepared> = std::thread::scope(|s| {
            let per = chunk.len().div_ceil(threads).max(1);
            let handles: Vec<_> = chunk
                .chunks(per)
                .map(|part| {
                    let h = s.spawn(|| {
                        part.iter()
                            .map(|path| prepare_file(path, &relative(path), opts))
                            .collect::<Vec<Prepared>>()
                    });
                    (part.len(), h)
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|(n, h)| {
                    // A panic loses that part's results: one reason per file.
                    h.join().unwrap_or_else(|_| {
                        (0..n)
                            .map(|_| Err(SkipReason::Decode("the decoder panicked".into())))
                            .collect()
                    })
                })
                .collect()
        });
        for (path, result) in chunk.iter().zip(results) {
            let source = relative(path);
            let (patient_id, no_id, views) = match result {
                Ok(r) => r,
                Err(reason) => {
                    report.skipped.push((source, reason.to_string()));
                    continue;
                }
            };
            let key = keys.key(&patient_id);
            let (class, taken) = patients.entry(key.clone()).or_insert_with(|| {
                report.patients += 1;
                if no_id {
                    report.without_patient_id += 1;
                }
                let class = match &labels {
                    Some(l) => match l.get(&patient_id) {
                        Some(c) => {
                            used_labels.insert(patient_id.clone());
                            c.clone()
                        }
                        None => {
                            report.unlabelled += 1;
                            String::new()
                        }
                    },
                    None => String::new(),
                };
                (class, HashMap::new())
            });
            for (view, pixels, crop) in views {
                let view_name = view.map_or("unknown", View::as_str).to_string();
                let n = taken.entry(view_name.clone()).or_insert(0);
                *n += 1;
                let file = if *n == 1 {
                    format!("images/{key}_{view_name}.png")
                } else {
                    format!("images/{key}_{view_name}_{n}.png")
                };
                write_png16(&out.join(&file), &pixels, opts.size)?;
                report.images.push(Ingested {
                    patient: key.clone(),
                    view: view_name,
                    class: class.clone(),
                    file,
                    source_key: keys.key(&source).replacen('p', "s", 1),
                    source: source.clone(),
                    crop,
                });
            }
        }
    }
    // Manifest rows grouped by patient, in file order within each.
    report.images.sort_by(|a, b| a.patient.cmp(&b.patient));
    if let Some(l) = &labels {
        report.labels_unused = l.keys().filter(|k| !used_labels.contains(*k)).count();
    }
    // The images on disk before the manifest that names them.
    crate::store::sync_filesystem(out).map_err(io(out))?;
    write_manifest(out, &report)?;
    Ok(report)
}

fn write_png16(path: &Path, pixels: &[u16], [h, w]: [usize; 2]) -> Result<(), IngestError> {
    let img: image::ImageBuffer<image::Luma<u16>, Vec<u16>> =
        image::ImageBuffer::from_raw(w as u32, h as u32, pixels.to_vec()).ok_or_else(|| {
            IngestError::Io {
                path: path.to_path_buf(),
                message: "pixel buffer does not match the image size".into(),
            }
        })?;
    crate::store::save_png_batched(path, img).map_err(|e| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A CSV field, quoted when it holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Write `text` readable by its owner only (it names source files, whose
/// paths often carry patient names or IDs).
fn write_private(path: &Path, text: &str) -> Result<(), IngestError> {
    crate::store::write_atomic_private(path, text.as_bytes()).map_err(io(path))
}

/// `manifest.csv` (shareable: keys only), `sources.csv` (source key to
/// source path) and `skipped.csv` (source path and reason), the last two
/// private.
fn write_manifest(out: &Path, report: &IngestReport) -> Result<(), IngestError> {
    let mut text =
        String::from("patient,view,class,file,source,crop_top,crop_left,crop_bottom,crop_right\n");
    let mut sources = String::from("source,path\n");
    for i in &report.images {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            i.patient,
            i.view,
            csv_field(&i.class),
            csv_field(&i.file),
            i.source_key,
            i.crop.top,
            i.crop.left,
            i.crop.bottom,
            i.crop.right
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for i in &report.images {
        if seen.insert(&i.source_key) {
            sources.push_str(&format!("{},{}\n", i.source_key, csv_field(&i.source)));
        }
    }
    let path = out.join("manifest.csv");
    crate::store::write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
    write_private(&out.join("sources.csv"), &sources)?;
    let mut skipped = String::from("source,reason\n");
    for (source, reason) in &report.skipped {
        skipped.push_str(&format!("{},{}\n", csv_field(source), csv_field(reason)));
    }
    write_private(&out.join("skipped.csv"), &skipped)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_salted_stable_and_hide_the_id() {
        let dir = std::env::temp_dir().join(format!("scintigan-salt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Pseudonymiser::open(&dir).unwrap();
        let b = Pseudonymiser::open(&dir).unwrap();
        assert_eq!(a.key("12345"), b.key("12345"), "the salt is reused");
        assert_ne!(a.key("12345"), a.key("12346"));
        assert!(!a.key("12345").contains("12345"));
        let other = std::env::temp_dir().join(format!("scintigan-salt2-{}", std::process::id()));
        std::fs::create_dir_all(&other).unwrap();
        let c = Pseudonymiser::open(&other).unwrap();
        assert_ne!(
            a.key("12345"),
            c.key("12345"),
            "another data set, another salt"
        );
        std::fs::remove_dir_all(&dir).ok();
        std::fs::remove_dir_all(&other).ok();
    }
}
