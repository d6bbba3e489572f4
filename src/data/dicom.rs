//! Reading grayscale DICOM images: every frame as modality values
//! (`stored * RescaleSlope + RescaleIntercept`), MONOCHROME1 inverted so a
//! larger value is always brighter, signed pixels kept signed, the views of
//! whole-body scans told apart from their tags.
//!
//! Transfer syntaxes decoded (through `dicom-pixeldata`): implicit and
//! explicit VR little endian, explicit VR big endian, deflated explicit VR
//! little endian, RLE lossless, JPEG baseline (process 1), extended
//! (processes 2 and 4), lossless (process 14 and its selection value 1) and
//! JPEG 2000 (lossless and lossy, `openjp2`). Not decoded, reported as
//! "unsupported transfer syntax": JPEG-LS (needs the CharLS C++ library),
//! JPEG XL, HTJ2K, MPEG and HEVC video, and anything the registry does not
//! know. A file that is not DICOM, is truncated, has no pixel data or holds
//! a colour image is refused with a [`SkipReason`], never a panic.

use super::prep::Plane;
use dicom::dictionary_std::tags;
use dicom::object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};
use std::io::Read;
use std::path::Path;

/// Why a file was not ingested: one line, shown beside its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("not DICOM: {0}")]
    NotDicom(String),
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("no pixel data (a header-only object such as a report or structured data)")]
    NoPixelData,
    #[error("unsupported transfer syntax {uid} ({name})")]
    UnsupportedTransferSyntax { uid: String, name: String },
    #[error(
        "colour image ({photometric}, {samples} samples per pixel); expected a grayscale MONOCHROME1 or MONOCHROME2 image"
    )]
    Colour { photometric: String, samples: u16 },
    #[error("cannot decode pixel data: {0}")]
    Decode(String),
    #[error("cannot read file: {0}")]
    Io(String),
}

/// Smallest image side read (pixels).
pub const MIN_SIDE: i64 = 8;
/// Most frames read: a whole-body file holds one or two; more is a dynamic
/// or tomographic series, refused before decoding it.
pub const MAX_FRAMES: i64 = 16;

/// Which side of the patient a whole-body view looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum View {
    Anterior,
    Posterior,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Anterior => "anterior",
            View::Posterior => "posterior",
        }
    }

    /// "anterior"/"ant"/"AP"/"posterior"/"post"/"PA" as whole words (case
    /// ignored) in a tag's text; `None` when neither or both appear.
    pub fn from_text(text: &str) -> Option<View> {
        let upper = text.to_ascii_uppercase();
        let words: Vec<&str> = upper
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let ant = words
            .iter()
            .any(|w| matches!(*w, "ANT" | "ANTERIOR" | "AP" | "ANTERIOR_PROJECTION"));
        let post = words
            .iter()
            .any(|w| matches!(*w, "POST" | "POSTERIOR" | "PA" | "POS"));
        match (ant, post) {
            (true, false) => Some(View::Anterior),
            (false, true) => Some(View::Posterior),
            _ => None,
        }
    }
}

/// One decoded DICOM image. Only what training needs leaves this module:
/// the raw patient ID is read here to be pseudonymised by the ingester and
/// is never written anywhere.
#[derive(Debug, Clone)]
pub struct DicomImage {
    /// Every frame, modality values, larger = brighter.
    pub frames: Vec<Plane>,
    /// The view of each frame, where the tags say it.
    pub views: Vec<Option<View>>,
    /// PatientID (0010,0020), trimmed; `None` when absent or empty.
    pub patient_id: Option<String>,
    pub modality: Option<String>,
    pub transfer_syntax: String,
}

fn text(obj: &DefaultDicomObject, tag: dicom::core::Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok()??;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn int(obj: &DefaultDicomObject, tag: dicom::core::Tag) -> Option<i64> {
    obj.element_opt(tag).ok()??.to_int::<i64>().ok()
}

fn float(obj: &DefaultDicomObject, tag: dicom::core::Tag) -> Option<f64> {
    obj.element_opt(tag).ok()??.to_float64().ok()
}

/// The view a sequence item's ViewCodeSequence (0054,0220) names.
fn view_code(item: &dicom::object::InMemDicomObject) -> Option<View> {
    let seq = item.element_opt(tags::VIEW_CODE_SEQUENCE).ok()??;
    let code = seq.items()?.first()?;
    let meaning = code.element_opt(tags::CODE_MEANING).ok()??.to_str().ok()?;
    View::from_text(&meaning)
}

/// The view of each of `frames` frames, from (in this order) the
/// DetectorInformationSequence items' view codes indexed by DetectorVector,
/// the top-level ViewCodeSequence, ViewPosition, then the descriptive text
/// tags (series description, image comments, protocol, image ID).
fn frame_views(obj: &DefaultDicomObject, frames: usize) -> Vec<Option<View>> {
    let mut views = vec![None; frames];
    if let Ok(Some(det)) = obj.element_opt(tags::DETECTOR_INFORMATION_SEQUENCE)
        && let Some(items) = det.items()
    {
        let per_detector: Vec<Option<View>> = items.iter().map(view_code).collect();
        let vector: Vec<i64> = obj
            .element_opt(tags::DETECTOR_VECTOR)
            .ok()
            .flatten()
            .and_then(|e| e.to_multi_int::<i64>().ok())
            .unwrap_or_default();
        for (f, v) in views.iter_mut().enumerate() {
            let detector = vector.get(f).copied().unwrap_or(f as i64 + 1);
            *v = per_detector
                .get((detector - 1).max(0) as usize)
                .copied()
                .flatten();
        }
    }
    if frames == 1 && views[0].is_none() {
        let top = obj
            .element_opt(tags::VIEW_CODE_SEQUENCE)
            .ok()
            .flatten()
            .and_then(|s| s.items()?.first().cloned())
            .and_then(|code| {
                let m = code.element_opt(tags::CODE_MEANING).ok()??.to_str().ok()?;
                View::from_text(&m)
            });
        views[0] = top
            .or_else(|| text(obj, tags::VIEW_POSITION).and_then(|t| View::from_text(&t)))
            .or_else(|| {
                [
                    tags::SERIES_DESCRIPTION,
                    tags::IMAGE_COMMENTS,
                    tags::PROTOCOL_NAME,
                    tags::IMAGE_ID,
                ]
                .into_iter()
                .find_map(|t| text(obj, t).and_then(|s| View::from_text(&s)))
            });
    }
    views
}

fn open_error(e: &dicom::object::ReadError) -> SkipReason {
    // The open error's chain names what failed; an end of file inside an
    // element means the file was cut short.
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_lowercase();
    if lower.contains("eof")
        || lower.contains("end of file")
        || lower.contains("unexpected end")
        || lower.contains("fill whole buffer")
    {
        SkipReason::Truncated(format!("the file ends inside a data element ({chain})"))
    } else if lower.contains("transfer syntax") && lower.contains("unsupported") {
        SkipReason::UnsupportedTransferSyntax {
            uid: String::new(),
            name: chain,
        }
    } else {
        SkipReason::Decode(chain)
    }
}

/// Whether `path` starts like a DICOM Part-10 file ("DICM" at byte 128).
fn check_magic(path: &Path) -> Result<(), SkipReason> {
    let mut head = [0u8; 132];
    let mut f = std::fs::File::open(path).map_err(|e| SkipReason::Io(e.to_string()))?;
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(SkipReason::Io(e.to_string())),
        }
    }
    if got < 132 || &head[128..132] != b"DICM" {
        return Err(SkipReason::NotDicom(
            "no 'DICM' marker at byte 128 (expected a DICOM Part-10 file with its 128-byte preamble)"
                .into(),
        ));
    }
    Ok(())
}

/// Read and decode one file.
pub fn read(path: &Path) -> Result<DicomImage, SkipReason> {
    check_magic(path)?;
    let obj = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| open_error(&e))?;
    let ts_uid = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    use dicom::encoding::TransferSyntaxIndex;
    let registry = dicom::transfer_syntax::TransferSyntaxRegistry;
    match registry.get(&ts_uid) {
        None => {
            return Err(SkipReason::UnsupportedTransferSyntax {
                name: "unknown to this build".into(),
                uid: ts_uid,
            });
        }
        Some(ts) if ts.is_unsupported_pixel_encapsulation() || !ts.can_decode_all() => {
            return Err(SkipReason::UnsupportedTransferSyntax {
                name: format!("{}, no decoder in this build", ts.name()),
                uid: ts_uid,
            });
        }
        Some(_) => {}
    }
    if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        let float = [tags::FLOAT_PIXEL_DATA, tags::DOUBLE_FLOAT_PIXEL_DATA]
            .into_iter()
            .any(|t| obj.element_opt(t).ok().flatten().is_some());
        if float {
            return Err(SkipReason::Decode(
                "floating-point pixel data (7FE0,0008/0009); expected integer Pixel Data (7FE0,0010)".into(),
            ));
        }
        return Err(SkipReason::NoPixelData);
    }
    let samples = int(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1) as u16;
    let photometric = text(&obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    let monochrome1 = photometric == "MONOCHROME1";
    if samples != 1 || !(monochrome1 || photometric == "MONOCHROME2" || photometric.is_empty()) {
        return Err(SkipReason::Colour {
            photometric: if photometric.is_empty() {
                "no PhotometricInterpretation".into()
            } else {
                photometric
            },
            samples,
        });
    }
    let rows = int(&obj, tags::ROWS).unwrap_or(0);
    let cols = int(&obj, tags::COLUMNS).unwrap_or(0);
    let frames = int(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let allocated = int(&obj, tags::BITS_ALLOCATED).unwrap_or(16);
    if !(MIN_SIDE..=65535).contains(&rows) || !(MIN_SIDE..=65535).contains(&cols) {
        return Err(SkipReason::Decode(format!(
            "image size {rows}x{cols}; expected Rows and Columns from {MIN_SIDE} to 65535"
        )));
    }
    if frames > MAX_FRAMES {
        return Err(SkipReason::Decode(format!(
            "{frames} frames (a dynamic or tomographic series?); expected at most {MAX_FRAMES}"
        )));
    }
    if ![8, 16, 32].contains(&allocated) {
        return Err(SkipReason::Decode(format!(
            "BitsAllocated {allocated}; expected 8, 16 or 32"
        )));
    }
    let (rows, cols, frames) = (rows as usize, cols as usize, frames as usize);
    // Native pixel data shorter than the header promises: cut short.
    if let Ok(Some(px)) = obj.element_opt(tags::PIXEL_DATA)
        && px.items().is_none()
        && px.fragments().is_none()
    {
        let want = rows * cols * frames * (allocated as usize / 8);
        let have = px.value().primitive().map_or(0, |v| v.calculate_byte_len());
        if have < want {
            return Err(SkipReason::Truncated(format!(
                "pixel data holds {have} bytes; {rows}x{cols}x{frames} frames of {allocated}-bit pixels need {want}"
            )));
        }
    }
    let decoded = obj
        .decode_pixel_data()
        .map_err(|e| SkipReason::Decode(e.to_string()))?;
    let raw: Vec<f64> = decoded
        .to_vec_with_options(&ConvertOptions::new().with_modality_lut(ModalityLutOption::None))
        .map_err(|e| SkipReason::Decode(e.to_string()))?;
    if raw.len() < rows * cols * frames {
        return Err(SkipReason::Truncated(format!(
            "decoded {} pixels; {rows}x{cols}x{frames} expected",
            raw.len()
        )));
    }
    let slope = float(&obj, tags::RESCALE_SLOPE).unwrap_or(1.0);
    let intercept = float(&obj, tags::RESCALE_INTERCEPT).unwrap_or(0.0);
    if !slope.is_finite() || slope == 0.0 || !intercept.is_finite() {
        return Err(SkipReason::Decode(format!(
            "RescaleSlope {slope}, RescaleIntercept {intercept}; expected a finite, non-zero slope and a finite intercept"
        )));
    }
    let stored = int(&obj, tags::BITS_STORED)
        .unwrap_or(allocated)
        .clamp(1, 32) as u32;
    let signed = int(&obj, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
    let (smin, smax) = if signed {
        (
            -(2f64.powi(stored as i32 - 1)),
            2f64.powi(stored as i32 - 1) - 1.0,
        )
    } else {
        (0.0, 2f64.powi(stored as i32) - 1.0)
    };
    // MONOCHROME1: the smallest value is white. Mirror within the
    // representable range so larger is brighter, like MONOCHROME2.
    let flip = (smin * slope + intercept) + (smax * slope + intercept);
    let frame_len = rows * cols;
    let planes: Vec<Plane> = raw
        .chunks(frame_len)
        .take(frames)
        .map(|chunk| {
            let pixels = chunk
                .iter()
                .map(|&s| {
                    let v = s * slope + intercept;
                    (if monochrome1 { flip - v } else { v }) as f32
                })
                .collect();
            Plane::new(rows, cols, pixels)
        })
        .collect();
    Ok(DicomImage {
        views: frame_views(&obj, planes.len()),
        frames: planes,
        patient_id: text(&obj, tags::PATIENT_ID),
        modality: text(&obj, tags::MODALITY),
        transfer_syntax: ts_uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_words() {
        assert_eq!(View::from_text("WB ANT"), Some(View::Anterior));
        assert_eq!(
            View::from_text("wholebody posterior"),
            Some(View::Posterior)
        );
        assert_eq!(View::from_text("ANT/POST"), None);
        assert_eq!(View::from_text("ANTERIOR_POSTERIOR"), None);
        assert_eq!(View::from_text("Pantograph"), None);
    }

    #[test]
    fn random_bytes_and_text_are_not_dicom() {
        let dir = std::env::temp_dir().join(format!("scintigan-dicom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("notes.dcm");
        std::fs::write(&text, "patient list\n").unwrap();
        let e = read(&text).unwrap_err();
        assert!(matches!(e, SkipReason::NotDicom(_)), "{e}");
        assert!(e.to_string().starts_with("not DICOM"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
