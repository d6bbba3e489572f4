//! Image folders with a label file: `data = { source = "folder", path =
//! DIR, labels = "labels.csv" }`.
//!
//! Two forms are read:
//! - CSV with a header row naming a file column (`file`, `image`,
//!   `filename` or `path`), a class column (`class` or `label`) and
//!   optionally a patient column (`patient` or `patient_id`): the manifest
//!   `scintigan data ingest` writes is one;
//! - headerless lines `NAME LABEL` (comma, tab or spaces between; `#`
//!   starts a comment), as public sets such as BS-80K ship them.
//!
//! Files are relative to DIR (a name without an extension also matches
//! NAME.png, .jpg or .jpeg). A label is a class name, or a 0-based index
//! into the configured `classes`. Images sharing a patient stay in one
//! split; without a patient column the views of a scan are paired by their
//! names (`data::patients`), and every other image is its own patient.

use super::folder::read_gray_resized;
use super::{DataError, Item};
use crate::config::ImageFit;
use std::path::{Path, PathBuf};

fn bad(path: &Path, line: usize, message: String) -> DataError {
    DataError::Folder {
        path: PathBuf::from(format!("{}:{line}", path.display())),
        message,
    }
}

/// Split one CSV line (double quotes may wrap a field holding commas).
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

/// One row: (line number, file, label, patient).
type Row = (usize, String, String, Option<String>);

fn parse_rows(labels: &Path) -> Result<Vec<Row>, DataError> {
    let text = std::fs::read_to_string(labels).map_err(|e| DataError::Folder {
        path: labels.to_path_buf(),
        message: format!("cannot read labels file: {e}"),
    })?;
    // A spreadsheet's UTF-8 export starts with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let Some(&(_, first)) = lines.first() else {
        return Err(bad(
            labels,
            1,
            "empty labels file; expected rows 'FILE,CLASS'".into(),
        ));
    };
    let header: Vec<String> = csv_fields(first).iter().map(|f| f.to_lowercase()).collect();
    let find = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let file_col = find(&["file", "image", "filename", "path"]);
    let class_col = find(&["class", "label"]);
    let mut rows = Vec::new();
    if let (Some(fc), Some(cc)) = (file_col, class_col) {
        let pc = find(&["patient", "patient_id"]);
        for &(n, line) in &lines[1..] {
            let f = csv_fields(line);
            let get = |i: usize| f.get(i).cloned().unwrap_or_default();
            if f.len() <= fc.max(cc) {
                return Err(bad(
                    labels,
                    n,
                    format!(
                        "{} fields; expected at least {} (columns: {first})",
                        f.len(),
                        fc.max(cc) + 1
                    ),
                ));
            }
            rows.push((n, get(fc), get(cc), pc.map(get).filter(|p| !p.is_empty())));
        }
    } else {
        // Headerless lines: `#` at the start of a line is a comment.
        for &(n, line) in lines.iter().filter(|(_, l)| !l.starts_with('#')) {
            let parts: Vec<&str> = line
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .collect();
            match parts.as_slice() {
                [file, label] => rows.push((n, file.to_string(), label.to_string(), None)),
                _ => {
                    return Err(bad(
                        labels,
                        n,
                        format!(
                            "'{line}': expected 'NAME LABEL', or a CSV header with file and class columns"
                        ),
                    ));
                }
            }
        }
    }
    Ok(rows)
}

fn resolve(dir: &Path, name: &str) -> Option<PathBuf> {
    let direct = dir.join(name);
    if direct.is_file() {
        return Some(direct);
    }
    if Path::new(name).extension().is_none() {
        for ext in ["png", "jpg", "jpeg", "PNG", "JPG"] {
            let p = dir.join(format!("{name}.{ext}"));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Read the images a label file lists under `dir`, brought to `h` x `w` by
/// `fit`.
/// `wanted` names the classes in label order (empty: the labels' distinct
/// names, sorted).
pub fn load_labelled(
    dir: &Path,
    labels: &Path,
    wanted: &[String],
    h: usize,
    w: usize,
    fit: ImageFit,
) -> Result<(Vec<String>, Vec<Item>), DataError> {
    let rows = parse_rows(labels)?;
    let classes: Vec<String> = if wanted.is_empty() {
        let mut names: Vec<String> = rows
            .iter()
            .map(|r| r.2.clone())
            .filter(|c| !c.is_empty())
            .collect();
        names.sort();
        names.dedup();
        names
    } else {
        wanted.to_vec()
    };
    if classes.len() < 2 {
        return Err(DataError::Folder {
            path: labels.to_path_buf(),
            message: format!(
                "labels name {} class(es) ({}); expected at least two",
                classes.len(),
                classes.join(", ")
            ),
        });
    }
    let mut items = Vec::with_capacity(rows.len());
    for (n, file, label, patient) in rows {
        if label.is_empty() {
            return Err(bad(
                labels,
                n,
                format!("'{file}' has no class; label it or remove the row"),
            ));
        }
        let class = classes
            .iter()
            .position(|c| *c == label)
            .or_else(|| {
                label
                    .parse::<usize>()
                    .ok()
                    .filter(|&i| !wanted.is_empty() && i < classes.len())
            })
            .ok_or_else(|| {
                bad(
                    labels,
                    n,
                    format!(
                        "unknown class '{label}'; expected one of {} (or its 0-based index)",
                        classes.join(", ")
                    ),
                )
            })?;
        let path = resolve(dir, &file).ok_or_else(|| {
            bad(
                labels,
                n,
                format!("no image '{file}' under {}", dir.display()),
            )
        })?;
        items.push(Item {
            pixels: read_gray_resized(&path, h, w, fit)?,
            class,
            name: path.display().to_string(),
            patient: patient
                .or_else(|| super::patients::paired_patient(&path))
                .unwrap_or_else(|| path.display().to_string()),
        });
    }
    for (c, name) in classes.iter().enumerate() {
        if !items.iter().any(|i| i.class == c) {
            return Err(DataError::Folder {
                path: labels.to_path_buf(),
                message: format!("class '{name}' has no images; expected at least one row with it"),
            });
        }
    }
    Ok((classes, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, v: u8) {
        image::GrayImage::from_pixel(8, 16, image::Luma([v]))
            .save(path)
            .unwrap();
    }

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("scintigan-labels-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn csv_with_patients_and_txt_with_indices() {
        let d = dir("ok");
        for (n, v) in [("a", 10), ("b", 20), ("c", 30), ("d", 40)] {
            png(&d.join(format!("{n}.png")), v);
        }
        let csv = d.join("manifest.csv");
        std::fs::write(&csv, "\u{feff}patient,view,class,file\np1,anterior,healthy,a.png\np1,posterior,healthy,b.png\np2,anterior,\"metastasis\",c.png\n").unwrap();
        std::fs::copy(d.join("d.png"), d.join("scan#4.png")).unwrap();
        let hash = d.join("hash.csv");
        std::fs::write(&hash, "file,class\nscan#4.png,y\na.png,x\n").unwrap();
        let (_, items) = load_labelled(&d, &hash, &[], 16, 8, ImageFit::Pad).unwrap();
        assert_eq!(items.len(), 2, "'#' in a CSV file name is not a comment");
        let (classes, items) = load_labelled(&d, &csv, &[], 16, 8, ImageFit::Pad).unwrap();
        assert_eq!(classes, vec!["healthy", "metastasis"]);
        assert_eq!(
            items.iter().map(|i| i.patient.as_str()).collect::<Vec<_>>(),
            vec!["p1", "p1", "p2"]
        );
        assert!((items[2].pixels[0] - 30.0 / 255.0).abs() < 1e-3);
        let txt = d.join("labels.txt");
        std::fs::write(&txt, "# BS-80K style\r\na 0\r\nb\t1\nd 1\n").unwrap();
        let wanted = vec!["normal".to_string(), "abnormal".to_string()];
        let (_, items) = load_labelled(&d, &txt, &wanted, 16, 8, ImageFit::Pad).unwrap();
        assert_eq!(
            items.iter().map(|i| i.class).collect::<Vec<_>>(),
            vec![0, 1, 1]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let d = dir("bad");
        png(&d.join("a.png"), 1);
        png(&d.join("b.png"), 2);
        let f = d.join("l.csv");
        let wanted = vec!["x".to_string(), "y".to_string()];
        std::fs::write(&f, "file,class\na.png,x\nb.png,z\n").unwrap();
        let e = load_labelled(&d, &f, &wanted, 16, 8, ImageFit::Pad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("l.csv:3") && e.contains("unknown class 'z'"),
            "{e}"
        );
        std::fs::write(&f, "file,class\na.png,x\nmissing.png,y\n").unwrap();
        let e = load_labelled(&d, &f, &wanted, 16, 8, ImageFit::Pad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("l.csv:3") && e.contains("no image 'missing.png'"),
            "{e}"
        );
        std::fs::write(&f, "file,class\na.png,x\nb.png,x\n").unwrap();
        let e = load_labelled(&d, &f, &wanted, 16, 8, ImageFit::Pad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("class 'y' has no images"), "{e}");
        std::fs::write(d.join("c.png"), b"not a png").unwrap();
        std::fs::write(&f, "file,class\na.png,x\nc.png,y\n").unwrap();
        let e = load_labelled(&d, &f, &wanted, 16, 8, ImageFit::Pad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.png") && e.contains("cannot read image"),
            "{e}"
        );
    }
}
