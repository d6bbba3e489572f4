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
use dicom::core::header::{DataElementHeader, SequenceItemHeader};
use dicom::core::value::PrimitiveValue;
use dicom::core::{Tag, VR};
use dicom::dictionary_std::tags;
use dicom::encoding::Codec;
use dicom::encoding::decode::Decode as _;
use dicom::encoding::text::SpecificCharacterSet;
use dicom::object::meta::FileMetaTable;
use dicom::object::{DefaultDicomObject, OpenFileOptions};
use dicom::parser::dataset::read::DataSetReaderOptions;
use dicom::parser::stateful::decode::{CharacterSetOverride, Error as DecodeError};
use dicom::parser::{DataSetReader, DynStatefulDecoder, StatefulDecode};
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};
use std::io::{BufReader, Read, Seek, SeekFrom};
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
    /// Over one of the limits on what one file may make the reader
    /// allocate ([`MAX_FILE_BYTES`], [`MAX_PIXELS`], [`MAX_ELEMENTS`],
    /// [`MAX_TEXT_BYTES`]).
    #[error("too large: {0}")]
    TooLarge(String),
}

/// Smallest image side read (pixels).
pub const MIN_SIDE: i64 = 8;
/// Most frames read: a whole-body file holds one or two; more is a dynamic
/// or tomographic series, refused before decoding it.
pub const MAX_FRAMES: i64 = 16;

// What one file, however malformed, may make `read` allocate. Every
// declared length is also checked against the bytes left in the file before
// anything is allocated for it (see `check_bounds`), so the parsed data set
// is at most about the file's size, plus what text and element overhead add
// (bounded by the two limits below); decoding is bounded by `MAX_PIXELS`.

/// Largest file read (bytes), and the most a deflated data set may inflate
/// to: 64 MiB; a whole-body scan is a few MB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Most pixels decoded from one file: rows x columns x frames, and for a
/// JPEG or JPEG 2000 codestream its width x height x components (8.4 M:
/// 4096x2048, or 2 frames of 2048x2048; a whole-body view is 1024x256 to
/// 2048x512).
pub const MAX_PIXELS: u64 = 1 << 23;
/// Most data elements and sequence items in one file's data set (131072;
/// an image has a few hundred).
pub const MAX_ELEMENTS: u64 = 1 << 17;
/// Most bytes of text values in one file's data set: 1 MiB. The parser
/// makes a string of each backslash-separated value, up to 24 bytes of
/// memory per byte of file.
pub const MAX_TEXT_BYTES: u64 = 1 << 20;

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

/// Text value representations: the parser turns each into one string per
/// backslash-separated value, the one place where a few bytes of file
/// become many bytes of memory.
fn is_text(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::TM
            | VR::UC
            | VR::UI
            | VR::UR
            | VR::UT
    )
}

/// A data set decoder that refuses, before anything is allocated for it, a
/// value longer than what is left of the data set, and a data set with more
/// than [`MAX_ELEMENTS`] elements or [`MAX_TEXT_BYTES`] of text. Otherwise
/// it is the decoder `open_file` uses, reading the same bytes in the same
/// order, so it sees exactly the lengths the real read will act on.
struct Bounded<S> {
    inner: S,
    /// Length of the data set stream.
    len: u64,
    /// "the file" or "the inflated data set", for messages.
    place: &'static str,
    elements: u64,
    text: u64,
    refused: Option<SkipReason>,
}

impl<S: StatefulDecode> Bounded<S> {
    fn refuse(&mut self, reason: SkipReason) -> DecodeError {
        self.refused.get_or_insert(reason);
        DecodeError::ReadValueData {
            position: self.inner.position(),
            source: std::io::Error::other("over the DICOM reader's limits"),
            backtrace: std::backtrace::Backtrace::disabled(),
        }
    }

    fn check_len(&mut self, what: &dyn Fn() -> String, len: u32) -> Result<(), DecodeError> {
        let left = self.len.saturating_sub(self.inner.position());
        if u64::from(len) > left {
            let reason = SkipReason::Truncated(format!(
                "{} declares {len} bytes, but only {left} are left in {} (a damaged length field or a cut file)",
                what(),
                self.place
            ));
            return Err(self.refuse(reason));
        }
        Ok(())
    }

    fn count(&mut self) -> Result<(), DecodeError> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            let reason = SkipReason::TooLarge(format!(
                "more than {MAX_ELEMENTS} data elements and items; expected an image's few hundred"
            ));
            return Err(self.refuse(reason));
        }
        Ok(())
    }

    fn check_value(&mut self, header: &DataElementHeader) -> Result<(), DecodeError> {
        // An undefined length here is refused by the decoder itself.
        let Some(len) = header.len.get() else {
            return Ok(());
        };
        self.check_len(&|| format!("element {}", header.tag), len)?;
        if is_text(header.vr) {
            self.text += u64::from(len);
            if self.text > MAX_TEXT_BYTES {
                let reason = SkipReason::TooLarge(format!(
                    "more than {MAX_TEXT_BYTES} bytes of text values; expected an image's few kB"
                ));
                return Err(self.refuse(reason));
            }
        }
        Ok(())
    }
}

impl<S: StatefulDecode> StatefulDecode for Bounded<S> {
    type Reader = S::Reader;

    fn decode_header(&mut self) -> dicom::parser::stateful::decode::Result<DataElementHeader> {
        let header = self.inner.decode_header()?;
        self.count()?;
        Ok(header)
    }

    fn decode_item_header(
        &mut self,
    ) -> dicom::parser::stateful::decode::Result<SequenceItemHeader> {
        let header = self.inner.decode_item_header()?;
        self.count()?;
        Ok(header)
    }

    fn read_value(
        &mut self,
        header: &DataElementHeader,
    ) -> dicom::parser::stateful::decode::Result<PrimitiveValue> {
        self.check_value(header)?;
        self.inner.read_value(header)
    }

    fn read_value_preserved(
        &mut self,
        header: &DataElementHeader,
    ) -> dicom::parser::stateful::decode::Result<PrimitiveValue> {
        self.check_value(header)?;
        self.inner.read_value_preserved(header)
    }

    fn read_value_bytes(
        &mut self,
        header: &DataElementHeader,
    ) -> dicom::parser::stateful::decode::Result<PrimitiveValue> {
        self.check_value(header)?;
        self.inner.read_value_bytes(header)
    }

    // A pixel data fragment (and whatever is read with `read_to`) is copied
    // as it comes, its declared length only reserved, never filled: the
    // last fragment of a file may run past its end, as the real read allows.
    fn read_to_vec(
        &mut self,
        length: u32,
        vec: &mut Vec<u8>,
    ) -> dicom::parser::stateful::decode::Result<()> {
        self.inner.read_to_vec(length, vec)
    }

    // The basic offset table is filled to its declared length, then read.
    fn read_u32_to_vec(
        &mut self,
        length: u32,
        vec: &mut Vec<u32>,
    ) -> dicom::parser::stateful::decode::Result<()> {
        self.check_len(&|| "the basic offset table".into(), length)?;
        self.inner.read_u32_to_vec(length, vec)
    }

    fn read_to<W>(&mut self, length: u32, out: W) -> dicom::parser::stateful::decode::Result<()>
    where
        Self: Sized,
        W: std::io::Write,
    {
        self.inner.read_to(length, out)
    }

    fn skip_bytes(&mut self, length: u32) -> dicom::parser::stateful::decode::Result<()> {
        self.inner.skip_bytes(length)
    }

    fn seek(&mut self, position: u64) -> dicom::parser::stateful::decode::Result<()>
    where
        Self::Reader: Seek,
    {
        self.inner.seek(position)
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }
}

/// The file meta group's lengths, walked as `FileMetaTable::from_reader`
/// walks them (it allocates each value's declared length), from just after
/// "DICM". Anything else wrong is left to the real read to report.
fn check_meta_lengths(file: &mut impl Read, file_len: u64) -> Result<(), SkipReason> {
    let decoder = dicom::encoding::decode::file_header_decoder();
    let Ok((first, n)) = decoder.decode_header(file) else {
        return Ok(());
    };
    let mut head = [0u8; 4];
    if first.tag != Tag(0x0002, 0x0000)
        || first.len.get() != Some(4)
        || file.read_exact(&mut head).is_err()
    {
        return Ok(());
    }
    let group_length = u32::from_le_bytes(head);
    let mut pos = 132 + n as u64 + 4;
    let mut total: u32 = 0;
    while total < group_length {
        let Ok((header, n)) = decoder.decode_header(file) else {
            return Ok(());
        };
        pos += n as u64;
        let Some(len) = header.len.get() else {
            return Ok(());
        };
        let left = file_len.saturating_sub(pos);
        if u64::from(len) > left {
            return Err(SkipReason::Truncated(format!(
                "file meta element {} declares {len} bytes, but only {left} are left in the file (a damaged length field or a cut file)",
                header.tag
            )));
        }
        match std::io::copy(&mut file.take(u64::from(len)), &mut std::io::sink()) {
            Ok(got) if got == u64::from(len) => {}
            _ => return Ok(()),
        }
        pos += u64::from(len);
        total = total.saturating_add(n as u32).saturating_add(len);
    }
    Ok(())
}

/// Bytes a reader yields before its end, an error, or `limit + 1`.
fn count_bytes(mut reader: impl Read, limit: u64) -> u64 {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    while total <= limit {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    total
}

/// Walk the whole file as `OpenFileOptions::open_file` will read it (the
/// same decoders and data set reader, the same options), refusing it before
/// that read when a declared length runs past the end of the file (or of
/// the inflated data set), or when it is over [`MAX_FILE_BYTES`],
/// [`MAX_ELEMENTS`] or [`MAX_TEXT_BYTES`]. Each value this walk reads is
/// dropped at once. Errors of other kinds end the walk quietly: the real
/// read meets them at the same place, before any unchecked length.
fn check_bounds(path: &Path) -> Result<(), SkipReason> {
    let io = |e: std::io::Error| SkipReason::Io(e.to_string());
    let file_len = std::fs::metadata(path).map_err(io)?.len();
    if file_len > MAX_FILE_BYTES {
        return Err(SkipReason::TooLarge(format!(
            "{file_len} bytes; at most {MAX_FILE_BYTES} ({} MiB) are read, a whole-body scan is a few MB",
            MAX_FILE_BYTES >> 20
        )));
    }
    let mut file = BufReader::new(std::fs::File::open(path).map_err(io)?);
    file.seek(SeekFrom::Start(132)).map_err(io)?;
    check_meta_lengths(&mut file, file_len)?;
    file.seek(SeekFrom::Start(128)).map_err(io)?;
    let Ok(meta) = FileMetaTable::from_reader(&mut file) else {
        return Ok(());
    };
    let start = file.stream_position().map_err(io)?;
    use dicom::encoding::TransferSyntaxIndex;
    let Some(ts) = dicom::transfer_syntax::TransferSyntaxRegistry.get(meta.transfer_syntax())
    else {
        return Ok(());
    };
    let (source, len, place): (Box<dyn Read>, u64, &'static str) = match ts.codec() {
        Codec::Dataset(Some(adapter)) => {
            let mut again = BufReader::new(std::fs::File::open(path).map_err(io)?);
            again.seek(SeekFrom::Start(start)).map_err(io)?;
            let inflated = count_bytes(adapter.adapt_reader(Box::new(again)), MAX_FILE_BYTES);
            if inflated > MAX_FILE_BYTES {
                return Err(SkipReason::TooLarge(format!(
                    "the deflated data set inflates to more than {MAX_FILE_BYTES} bytes ({} MiB)",
                    MAX_FILE_BYTES >> 20
                )));
            }
            (
                adapter.adapt_reader(Box::new(file)),
                inflated,
                "the inflated data set",
            )
        }
        Codec::Dataset(None) => return Ok(()),
        _ => (Box::new(file), file_len - start, "the file"),
    };
    let Ok(decoder) = DynStatefulDecoder::new_with_override(
        source,
        ts,
        SpecificCharacterSet::default(),
        CharacterSetOverride::default(),
        0,
    ) else {
        return Ok(());
    };
    let mut bounded = Bounded {
        inner: decoder,
        len,
        place,
        elements: 0,
        text: 0,
        refused: None,
    };
    let mut tokens = DataSetReader::new(&mut bounded, DataSetReaderOptions::default());
    while let Some(Ok(_)) = tokens.next() {}
    drop(tokens);
    match bounded.refused {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// Width, height and components a JPEG (SOFn) or JPEG 2000 (SIZ) codestream
/// at the start of `fragment` declares: what its decoder allocates for.
fn codestream_size(fragment: &[u8]) -> Option<(&'static str, u64, u64, u64)> {
    let be16 = |b: &[u8], i: usize| -> Option<u64> {
        Some(u64::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])))
    };
    let be32 = |b: &[u8], i: usize| -> Option<u64> {
        Some(u64::from(u32::from_be_bytes(
            b.get(i..i + 4)?.try_into().ok()?,
        )))
    };
    if fragment.starts_with(&[0xFF, 0xD8]) {
        // Markers up to the first frame header; each segment has a length.
        let mut i = 2;
        loop {
            while fragment.get(i) == Some(&0xFF) && fragment.get(i + 1) == Some(&0xFF) {
                i += 1;
            }
            if fragment.get(i) != Some(&0xFF) {
                return None;
            }
            let marker = *fragment.get(i + 1)?;
            match marker {
                0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                    let (h, w) = (be16(fragment, i + 5)?, be16(fragment, i + 7)?);
                    let c = u64::from(*fragment.get(i + 9)?);
                    return Some(("JPEG", w, h, c));
                }
                0xD0..=0xD8 | 0x01 => i += 2,
                0xDA | 0xD9 => return None,
                _ => i += 2 + be16(fragment, i + 2)? as usize,
            }
        }
    }
    // A raw codestream, or one in JP2 boxes: SOC then SIZ near the start.
    let head = &fragment[..fragment.len().min(4096)];
    let at = head
        .windows(4)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])?
        + 4;
    let (x, y) = (be32(fragment, at + 4)?, be32(fragment, at + 8)?);
    let (x0, y0) = (be32(fragment, at + 12)?, be32(fragment, at + 16)?);
    let c = be16(fragment, at + 36)?;
    Some(("JPEG 2000", x.saturating_sub(x0), y.saturating_sub(y0), c))
}

impl SkipReason {
    /// The reason with control characters (a newline or NUL in a file's
    /// transfer syntax UID, photometric interpretation or an error message
    /// quoting them) escaped, so that it stays one line.
    fn one_line(self) -> Self {
        use crate::text::one_line as esc;
        match self {
            SkipReason::NotDicom(m) => SkipReason::NotDicom(esc(m)),
            SkipReason::Truncated(m) => SkipReason::Truncated(esc(m)),
            SkipReason::NoPixelData => SkipReason::NoPixelData,
            SkipReason::UnsupportedTransferSyntax { uid, name } => {
                SkipReason::UnsupportedTransferSyntax {
                    uid: esc(uid),
                    name: esc(name),
                }
            }
            SkipReason::Colour {
                photometric,
                samples,
            } => SkipReason::Colour {
                photometric: esc(photometric),
                samples,
            },
            SkipReason::Decode(m) => SkipReason::Decode(esc(m)),
            SkipReason::Io(m) => SkipReason::Io(esc(m)),
            SkipReason::TooLarge(m) => SkipReason::TooLarge(esc(m)),
        }
    }
}

/// Read and decode one file. A panic inside the DICOM libraries (a
/// malformed file can still reach one, e.g. in the RLE decoder) is caught
/// and becomes the file's [`SkipReason`], so it costs that file only. The
/// reason is always one line.
pub fn read(path: &Path) -> Result<DicomImage, SkipReason> {
    std::panic::catch_unwind(|| read_unguarded(path))
        .unwrap_or_else(|payload| {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(SkipReason::Decode(format!("the decoder panicked: {what}")))
        })
        .map_err(SkipReason::one_line)
}

fn read_unguarded(path: &Path) -> Result<DicomImage, SkipReason> {
    check_magic(path)?;
    check_bounds(path)?;
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
    let pixels = (rows * cols * frames) as u64;
    if pixels > MAX_PIXELS {
        return Err(SkipReason::TooLarge(format!(
            "{rows}x{cols} pixels x {frames} frames = {pixels} pixels; at most {MAX_PIXELS} are decoded"
        )));
    }
    // What a compressed frame's own header makes its decoder allocate.
    if let Ok(Some(px)) = obj.element_opt(tags::PIXEL_DATA)
        && let Some(fragments) = px.fragments()
    {
        // An RLE frame opens with a 64-byte header: the number of segments
        // (at most 15), then their offsets. The decoder allocates the
        // count it reads there and slices the fragment by it unchecked.
        if ts_uid == "1.2.840.10008.1.2.5" {
            for f in fragments {
                let segments = f
                    .get(..4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                if f.len() < 64 || !segments.is_some_and(|n| (1..=15).contains(&n)) {
                    return Err(SkipReason::Decode(format!(
                        "an RLE frame of {} bytes declares {} segments; expected a 64-byte header and 1 to 15 segments",
                        f.len(),
                        segments.map_or("no".to_string(), |n| n.to_string())
                    )));
                }
            }
        }
        for (kind, w, h, c) in fragments.iter().filter_map(|f| codestream_size(f)) {
            if w.saturating_mul(h).saturating_mul(c) > MAX_PIXELS {
                return Err(SkipReason::TooLarge(format!(
                    "a {kind} frame declares {w}x{h} pixels with {c} components; at most {MAX_PIXELS} values are decoded"
                )));
            }
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

    /// A 16-bit MONOCHROME2 file written by dicom-rs: `pixels` is the Pixel
    /// Data value (native words, or a fragment sequence for `ts`).
    fn write_file(
        path: &Path,
        ts: &str,
        rows: u16,
        cols: u16,
        pixels: dicom::core::value::Value<dicom::object::InMemDicomObject>,
    ) {
        use dicom::core::{DataElement, PrimitiveValue};
        use dicom::object::{FileMetaTableBuilder, InMemDicomObject};
        let sop_class = "1.2.840.10008.5.1.4.1.1.20";
        let vr = if pixels.fragments().is_some() {
            VR::OB
        } else {
            VR::OW
        };
        let obj = InMemDicomObject::from_element_iter([
            DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from(sop_class)),
            DataElement::new(
                tags::SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("2.25.1"),
            ),
            DataElement::new(tags::PATIENT_ID, VR::LO, PrimitiveValue::from("P1")),
            DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
            DataElement::new(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                PrimitiveValue::from("MONOCHROME2"),
            ),
            DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(rows)),
            DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(cols)),
            DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
            DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16)),
            DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16)),
            DataElement::new(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(0u16),
            ),
            DataElement::new(tags::PIXEL_DATA, vr, pixels),
        ]);
        obj.with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(ts)
                .media_storage_sop_class_uid(sop_class),
        )
        .unwrap()
        .write_to_file(path)
        .unwrap();
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("scintigan-dicom-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn native(rows: u16, cols: u16) -> dicom::core::value::Value<dicom::object::InMemDicomObject> {
        let words: Vec<u16> = (0..u32::from(rows) * u32::from(cols))
            .map(|i| (i % 1000) as u16)
            .collect();
        dicom::core::PrimitiveValue::U16(words.into()).into()
    }

    #[test]
    fn a_length_past_the_end_of_the_file_is_refused_before_it_is_allocated() {
        let dir = temp_dir("bounds");
        let path = dir.join("good.dcm");
        write_file(&path, "1.2.840.10008.1.2.1", 16, 16, native(16, 16));
        let image = read(&path).expect("the untouched file reads");
        assert_eq!((image.frames[0].height, image.frames[0].width), (16, 16));
        // Pixel Data (7FE0,0010) OW: its 4-byte length says 4 GB.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(6)
            .position(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
            .unwrap();
        bytes[at + 8..at + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let bad = dir.join("bad.dcm");
        std::fs::write(&bad, &bytes).unwrap();
        let e = read(&bad).unwrap_err();
        assert!(matches!(e, SkipReason::Truncated(_)), "{e}");
        let line = e.to_string();
        assert!(
            line.contains("(7FE0,0010) declares 4294967280 bytes, but only 512 are left"),
            "{line}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn images_and_codestreams_over_the_pixel_cap_are_refused() {
        use dicom::core::value::PixelFragmentSequence;
        let dir = temp_dir("pixels");
        // RLE, 4096x4096 declared: the decoder would allocate for all of it.
        let path = dir.join("rle.dcm");
        let fragments = PixelFragmentSequence::new_fragments(vec![vec![0u8; 64]]);
        write_file(&path, "1.2.840.10008.1.2.5", 4096, 4096, fragments.into());
        let e = read(&path).unwrap_err();
        assert!(matches!(e, SkipReason::TooLarge(_)), "{e}");
        assert!(
            e.to_string().starts_with("too large: 4096x4096 pixels"),
            "{e}"
        );
        // JPEG baseline, 64x64 declared, its frame header says 65535x65535.
        let sof = [
            0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x01, 0x11,
            0x00, 0xFF, 0xD9,
        ];
        let path = dir.join("jpeg.dcm");
        let fragments = PixelFragmentSequence::new_fragments(vec![sof.to_vec()]);
        write_file(&path, "1.2.840.10008.1.2.4.50", 64, 64, fragments.into());
        let e = read(&path).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "too large: a JPEG frame declares 65535x65535 pixels with 1 components"
            ),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_reason_quoting_the_file_stays_one_line() {
        let dir = temp_dir("one-line");
        let path = dir.join("ts.dcm");
        write_file(&path, "1.2.840.10008.1.2.1", 16, 16, native(16, 16));
        // The transfer syntax UID "1.2.840.10008.1.2.1" becomes "1.2.8\n0...".
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(19)
            .position(|w| w == b"1.2.840.10008.1.2.1")
            .unwrap();
        bytes[at + 5] = b'\n';
        std::fs::write(&path, &bytes).unwrap();
        let line = read(&path).unwrap_err().to_string();
        assert!(!line.contains('\n') && line.contains("1.2.8\\n"), "{line}");
        std::fs::remove_dir_all(&dir).ok();
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
