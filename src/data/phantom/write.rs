//! Writing phantom data sets to disk as a user's data would arrive: bone
//! scans as DICOM NM files from a dual-head camera (in the layouts the
//! ingester reads) with a `labels.csv`, chest X-rays in the COVID-19
//! Radiography Database's folder layout.
//!
//! Every identifying field is plainly synthetic (`PHANTOM^SYNTHETIC`,
//! birth date 1900-01-01, IDs `SYNTH-nnnnn`).

use super::bone::{BonePatient, bone_patient};
use super::chest_xray;
use crate::config::{BONE_CLASSES, CHEST_CLASSES};
use crate::rng::SplitMix64;
use dicom::core::value::{DataSetSequence, PrimitiveValue};
use dicom::core::{DataElement, Tag, VR};
use dicom::dictionary_std::{tags, uids};
use dicom::object::{FileMetaTableBuilder, InMemDicomObject};
use std::fmt;
use std::path::{Path, PathBuf};

/// How the two views of a patient are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One file per view, the view named in its tags.
    TwoFiles,
    /// One file with two frames (detector 1 anterior, 2 posterior).
    Multiframe,
    /// One single-frame file, anterior on the left, posterior on the right.
    SideBySide,
    /// The three in turn, patient by patient.
    Mixed,
}

impl Layout {
    pub const NAMES: [&str; 4] = ["two-files", "multiframe", "side-by-side", "mixed"];

    pub fn parse(s: &str) -> Option<Layout> {
        Some(match s {
            "two-files" => Layout::TwoFiles,
            "multiframe" => Layout::Multiframe,
            "side-by-side" => Layout::SideBySide,
            "mixed" => Layout::Mixed,
            _ => return None,
        })
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = [
            Layout::TwoFiles,
            Layout::Multiframe,
            Layout::SideBySide,
            Layout::Mixed,
        ]
        .iter()
        .position(|l| l == self)
        .unwrap_or(0);
        f.write_str(Self::NAMES[i])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: cannot write: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: cannot build the DICOM object: {message}")]
    Dicom { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> WriteError + '_ {
    move |e| WriteError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Split `total` in proportion to `ratio`, each part at least 1, summing to
/// `total` (largest remainders first).
pub fn apportion(total: usize, ratio: &[usize]) -> Vec<usize> {
    let sum: usize = ratio.iter().sum();
    let total = total.max(ratio.len());
    let exact: Vec<f64> = ratio
        .iter()
        .map(|&r| total as f64 * r as f64 / sum as f64)
        .collect();
    let mut parts: Vec<usize> = exact.iter().map(|e| (e.floor() as usize).max(1)).collect();
    let mut order: Vec<usize> = (0..ratio.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let mut k = 0;
    while parts.iter().sum::<usize>() < total {
        parts[order[k % order.len()]] += 1;
        k += 1;
    }
    while parts.iter().sum::<usize>() > total {
        if let Some(i) = (0..parts.len())
            .filter(|&i| parts[i] > 1)
            .max_by_key(|&i| parts[i])
        {
            parts[i] -= 1;
        } else {
            break;
        }
    }
    parts
}

/// The paper's class ratio (Table 1): 162 healthy, 126 metastasis and 58
/// benign images, i.e. 81:63:29 patients.
pub const PAPER_PATIENT_RATIO: [usize; 3] = [81, 63, 29];
/// The COVID-19 Radiography Database's image counts (COVID, Lung_Opacity,
/// Normal, Viral Pneumonia).
pub const COVID_DB_RATIO: [usize; 4] = [3616, 6012, 10192, 1345];

/// A DICOM UID under the 2.25 (UUID-derived) root, from random bits.
fn uid(rng: &mut SplitMix64) -> String {
    let v = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) >> 2;
    format!("2.25.{v}")
}

fn elem(tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, value.into())
}

fn view_code(view: &str) -> InMemDicomObject {
    let code = InMemDicomObject::from_element_iter([
        elem(
            tags::CODE_VALUE,
            VR::SH,
            if view == "anterior" { "ANT" } else { "POST" },
        ),
        elem(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "99SCINTIGAN"),
        elem(tags::CODE_MEANING, VR::LO, view),
    ]);
    InMemDicomObject::from_element_iter([DataElement::new(
        tags::VIEW_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![code]),
    )])
}

/// The patient, study and image-pixel module attributes shared by every
/// file of a patient.
struct Header<'a> {
    patient_id: &'a str,
    patient_number: usize,
    study_uid: &'a str,
    series_uid: String,
    instance_uid: String,
    rows: usize,
    cols: usize,
    pixel_mm: f64,
}

fn base_object(h: &Header) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        elem(
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
        ),
        elem(tags::SOP_INSTANCE_UID, VR::UI, h.instance_uid.as_str()),
        elem(
            tags::IMAGE_TYPE,
            VR::CS,
            "ORIGINAL\\PRIMARY\\WHOLE BODY\\EMISSION",
        ),
        elem(tags::STUDY_DATE, VR::DA, "20000101"),
        elem(tags::MODALITY, VR::CS, "NM"),
        elem(tags::MANUFACTURER, VR::LO, "scintigan phantom (synthetic)"),
        elem(tags::INSTITUTION_NAME, VR::LO, "Synthetic Data"),
        elem(
            tags::STUDY_DESCRIPTION,
            VR::LO,
            "Whole body bone scan (synthetic)",
        ),
        elem(
            tags::PATIENT_NAME,
            VR::PN,
            format!("PHANTOM^SYNTHETIC^{}", h.patient_number).as_str(),
        ),
        elem(tags::PATIENT_ID, VR::LO, h.patient_id),
        elem(tags::PATIENT_BIRTH_DATE, VR::DA, "19000101"),
        elem(tags::PATIENT_SEX, VR::CS, "O"),
        elem(tags::STUDY_INSTANCE_UID, VR::UI, h.study_uid),
        elem(tags::SERIES_INSTANCE_UID, VR::UI, h.series_uid.as_str()),
        elem(tags::SERIES_NUMBER, VR::IS, "1"),
        elem(tags::INSTANCE_NUMBER, VR::IS, "1"),
        elem(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        elem(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        elem(tags::ROWS, VR::US, PrimitiveValue::from(h.rows as u16)),
        elem(tags::COLUMNS, VR::US, PrimitiveValue::from(h.cols as u16)),
        elem(
            tags::PIXEL_SPACING,
            VR::DS,
            format!("{:.4}\\{:.4}", h.pixel_mm, h.pixel_mm).as_str(),
        ),
        elem(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
        elem(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16)),
        elem(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16)),
        elem(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
    ])
}

fn counts_u16(frames: &[&[f32]]) -> Vec<u16> {
    frames
        .iter()
        .flat_map(|f| f.iter().map(|&c| c.clamp(0.0, 65535.0) as u16))
        .collect()
}

fn save(obj: InMemDicomObject, path: &Path) -> Result<(), WriteError> {
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .map_err(|e| WriteError::Dicom {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    file.write_to_file(path).map_err(|e| WriteError::Dicom {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Write one patient's files under `dir` in `layout`; returns the paths.
fn write_patient(
    dir: &Path,
    patient: &BonePatient,
    patient_id: &str,
    patient_number: usize,
    layout: Layout,
    rng: &mut SplitMix64,
) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (rows, cols) = (patient.anterior.height, patient.anterior.width);
    // A 1024-row frame spans about 2.25 m, like a whole-body acquisition.
    let pixel_mm = 2250.0 / rows as f64;
    let study_uid = uid(rng);
    let mut header = Header {
        patient_id,
        patient_number,
        study_uid: &study_uid,
        series_uid: uid(rng),
        instance_uid: uid(rng),
        rows,
        cols,
        pixel_mm,
    };
    let mut written = Vec::new();
    match layout {
        Layout::TwoFiles | Layout::Mixed => {
            for (k, (view, canvas)) in [
                ("anterior", &patient.anterior),
                ("posterior", &patient.posterior),
            ]
            .into_iter()
            .enumerate()
            {
                header.series_uid = uid(rng);
                header.instance_uid = uid(rng);
                let mut obj = base_object(&header);
                let short = if view == "anterior" { "ANT" } else { "POST" };
                obj.put(elem(
                    tags::SERIES_DESCRIPTION,
                    VR::LO,
                    format!("WB {short}").as_str(),
                ));
                obj.put(elem(
                    tags::SERIES_NUMBER,
                    VR::IS,
                    format!("{}", k + 1).as_str(),
                ));
                if let Ok(seq) = view_code(view).take_element(tags::VIEW_CODE_SEQUENCE) {
                    obj.put(seq);
                }
                obj.put(DataElement::new(
                    tags::PIXEL_DATA,
                    VR::OW,
                    PrimitiveValue::U16(counts_u16(&[&canvas.pixels]).into()),
                ));
                let path = dir.join(format!("IM{:04}.dcm", k + 1));
                save(obj, &path)?;
                written.push(path);
            }
        }
        Layout::Multiframe => {
            let mut obj = base_object(&header);
            obj.put(elem(tags::SERIES_DESCRIPTION, VR::LO, "WB ANT/POST"));
            obj.put(elem(tags::NUMBER_OF_FRAMES, VR::IS, "2"));
            obj.put(DataElement::new(
                tags::FRAME_INCREMENT_POINTER,
                VR::AT,
                PrimitiveValue::Tags(vec![tags::DETECTOR_VECTOR].into()),
            ));
            obj.put(DataElement::new(
                tags::DETECTOR_VECTOR,
                VR::US,
                PrimitiveValue::U16(vec![1u16, 2].into()),
            ));
            obj.put(elem(
                tags::NUMBER_OF_DETECTORS,
                VR::US,
                PrimitiveValue::from(2u16),
            ));
            obj.put(DataElement::new(
                tags::DETECTOR_INFORMATION_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![view_code("anterior"), view_code("posterior")]),
            ));
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(
                    counts_u16(&[&patient.anterior.pixels, &patient.posterior.pixels]).into(),
                ),
            ));
            let path = dir.join("IM0001.dcm");
            save(obj, &path)?;
            written.push(path);
        }
        Layout::SideBySide => {
            header.cols = 2 * cols;
            let mut obj = base_object(&header);
            obj.put(elem(tags::SERIES_DESCRIPTION, VR::LO, "WB ANT + POST"));
            obj.put(elem(
                tags::IMAGE_COMMENTS,
                VR::LT,
                "anterior left, posterior right",
            ));
            let mut pixels = Vec::with_capacity(rows * 2 * cols);
            for y in 0..rows {
                pixels.extend_from_slice(&patient.anterior.pixels[y * cols..(y + 1) * cols]);
                pixels.extend_from_slice(&patient.posterior.pixels[y * cols..(y + 1) * cols]);
            }
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(counts_u16(&[&pixels]).into()),
            ));
            let path = dir.join("IM0001.dcm");
            save(obj, &path)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// What [`write_bone_phantoms`] wrote.
#[derive(Debug)]
pub struct PhantomSummary {
    pub patients_per_class: Vec<usize>,
    pub files: usize,
    pub labels: PathBuf,
}

/// Write `patients` synthetic bone-scan patients, in the paper's class ratio,
/// as DICOM files under `out/dicom/<patient id>/` plus `out/labels.csv`
/// (`patient_id,class,findings`). Frames are `height` x `width` (default
/// 1024 x 256).
pub fn write_bone_phantoms(
    out: &Path,
    patients: usize,
    seed: u64,
    layout: Layout,
    [height, width]: [usize; 2],
) -> Result<PhantomSummary, WriteError> {
    let per_class = apportion(patients, &PAPER_PATIENT_RATIO);
    // Interleave classes so patient numbers do not reveal the class.
    let mut order: Vec<(usize, u64)> = per_class
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| (0..n as u64).map(move |i| (c, i)))
        .collect();
    let perm = SplitMix64::derive(seed, 0x1D5).permutation(order.len());
    order = perm.into_iter().map(|k| order[k]).collect();
    let dicom_dir = out.join("dicom");
    std::fs::create_dir_all(&dicom_dir).map_err(io_err(&dicom_dir))?;
    let mut labels = String::from("patient_id,class,findings\n");
    let mut files = 0;
    let mut number = 0;
    // Render on every core; write in order.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in order.chunks(threads * 2) {
        let rendered: Vec<BonePatient> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(class, i)| s.spawn(move || bone_patient(height, width, class, seed, i)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("phantom thread"))
                .collect()
        });
        for (&(class, i), patient) in chunk.iter().zip(&rendered) {
            number += 1;
            let patient_id = format!("SYNTH-{number:05}");
            let this_layout = match layout {
                Layout::Mixed => {
                    [Layout::TwoFiles, Layout::Multiframe, Layout::SideBySide][number % 3]
                }
                l => l,
            };
            let mut rng = SplitMix64::derive(seed ^ 0xD1C0, (class as u64) << 32 | i);
            files += write_patient(
                &dicom_dir.join(&patient_id),
                patient,
                &patient_id,
                number,
                this_layout,
                &mut rng,
            )?
            .len();
            labels.push_str(&format!(
                "{patient_id},{},{}\n",
                BONE_CLASSES[class],
                patient.findings.join("; ")
            ));
        }
    }
    let labels_path = out.join("labels.csv");
    crate::store::write_atomic(&labels_path, labels.as_bytes()).map_err(io_err(&labels_path))?;
    Ok(PhantomSummary {
        patients_per_class: per_class,
        files,
        labels: labels_path,
    })
}

/// Write `images` synthetic chest X-rays as
/// `out/<Class>/images/<Class>-<n>.png` (8-bit grayscale, `size` x `size`,
/// 299 like the real database), in its class ratio; returns images per class.
pub fn write_chest_phantoms(
    out: &Path,
    images: usize,
    seed: u64,
    size: usize,
) -> Result<Vec<usize>, WriteError> {
    let per_class = apportion(images, &COVID_DB_RATIO);
    for (class, &n) in per_class.iter().enumerate() {
        let dir = out.join(CHEST_CLASSES[class]).join("images");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        for i in 0..n {
            let canvas = chest_xray(size, size, class, seed, i as u64);
            let bytes: Vec<u8> = canvas
                .pixels
                .iter()
                .map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect();
            let path = dir.join(format!("{}-{}.png", CHEST_CLASSES[class], i + 1));
            let img =
                image::GrayImage::from_raw(size as u32, size as u32, bytes).ok_or_else(|| {
                    WriteError::Io {
                        path: path.clone(),
                        message: "image buffer size".into(),
                    }
                })?;
            crate::store::save_png_atomic(&path, img).map_err(io_err(&path))?;
        }
    }
    Ok(per_class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_keeps_the_ratio_and_the_total() {
        assert_eq!(apportion(173, &PAPER_PATIENT_RATIO), vec![81, 63, 29]);
        let small = apportion(12, &PAPER_PATIENT_RATIO);
        assert_eq!(small.iter().sum::<usize>(), 12);
        assert!(small.iter().all(|&n| n >= 1));
        assert_eq!(apportion(2, &PAPER_PATIENT_RATIO), vec![1, 1, 1]);
        assert_eq!(apportion(8, &COVID_DB_RATIO).iter().sum::<usize>(), 8);
    }
}
