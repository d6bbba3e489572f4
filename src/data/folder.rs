//! A folder of class subfolders (`DIR/<class>/*.png`), as torchvision's
//! `ImageFolder` reads it. The COVID-19 Radiography Database's layout
//! (`DIR/<class>/images/*.png`, masks beside) is recognised too.

use super::{DataError, Item};
use crate::config::ImageFit;
use std::path::{Path, PathBuf};

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// Read every image under `root`'s class subfolders, resized to `h` x `w`
/// (aspect ratio kept, padded with black; [`load_class_folders_with`] for
/// another [`ImageFit`]). `wanted` picks and orders the
/// classes; empty means every subfolder, sorted by name.
pub fn load_class_folders(
    root: &Path,
    wanted: &[String],
    h: usize,
    w: usize,
) -> Result<(Vec<String>, Vec<Item>), DataError> {
    load_class_folders_with(root, wanted, h, w, ImageFit::Pad, false)
}

/// [`load_class_folders`], each image brought to `h` x `w` by `fit`; with
/// `allow_empty`, a class folder that is
/// missing or empty contributes no images instead of being an error (GAN
/// samples: a balanced majority class gets none).
pub fn load_class_folders_with(
    root: &Path,
    wanted: &[String],
    h: usize,
    w: usize,
    fit: ImageFit,
    allow_empty: bool,
) -> Result<(Vec<String>, Vec<Item>), DataError> {
    let err = |message: String| DataError::Folder {
        path: root.to_path_buf(),
        message,
    };
    let entries =
        std::fs::read_dir(root).map_err(|e| err(format!("cannot read data folder: {e}")))?;
    let mut found: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    found.sort();
    let classes = if wanted.is_empty() {
        found.clone()
    } else {
        wanted.to_vec()
    };
    if classes.len() < 2 {
        return Err(err(format!(
            "found {} class folder(s) ({}); expected at least two subfolders, one per class",
            found.len(),
            found.join(", ")
        )));
    }
    let mut items = Vec::new();
    for (class, name) in classes.iter().enumerate() {
        let mut dir = root.join(name);
        if !dir.is_dir() && allow_empty {
            continue;
        }
        if !dir.is_dir() {
            return Err(err(format!(
                "no folder for class '{name}'; found: {}",
                found.join(", ")
            )));
        }
        if dir.join("images").is_dir() {
            dir = dir.join("images");
        }
        let files = image_files(&dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        if files.is_empty() && !allow_empty {
            return Err(err(format!(
                "class folder '{}' holds no PNG or JPEG images",
                dir.display()
            )));
        }
        for file in files {
            items.push(Item {
                pixels: read_gray_resized(&file, h, w, fit)?,
                class,
                name: file.display().to_string(),
                patient: super::patients::paired_patient(&file)
                    .unwrap_or_else(|| file.display().to_string()),
            });
        }
    }
    Ok((classes, items))
}

fn image_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Decode one image to gray in [0, 1] (16-bit kept at full precision) and
/// bring it to `h` x `w`: with [`ImageFit::Pad`] scaled to fit keeping its
/// aspect ratio and centred on black, with [`ImageFit::Stretch`] scaled
/// along each axis to fill the frame.
pub fn read_gray_resized(
    path: &Path,
    h: usize,
    w: usize,
    fit: ImageFit,
) -> Result<Vec<f32>, DataError> {
    let img = image::open(path).map_err(|e| DataError::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let gray = img.into_luma16();
    let (iw, ih) = gray.dimensions();
    let (nw, nh) = match fit {
        ImageFit::Stretch => (w as u32, h as u32),
        ImageFit::Pad => {
            let scale = (w as f64 / f64::from(iw)).min(h as f64 / f64::from(ih));
            (
                ((f64::from(iw) * scale).round() as u32).clamp(1, w as u32),
                ((f64::from(ih) * scale).round() as u32).clamp(1, h as u32),
            )
        }
    };
    let resized = image::imageops::resize(&gray, nw, nh, image::imageops::FilterType::Triangle);
    let (ox, oy) = ((w as u32 - nw) / 2, (h as u32 - nh) / 2);
    let mut out = vec![0.0f32; h * w];
    for (x, y, p) in resized.enumerate_pixels() {
        out[(y + oy) as usize * w + (x + ox) as usize] = f32::from(p.0[0]) / 65535.0;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::phantom::write::write_chest_phantoms;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("scintigan-folder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn covid_radiography_layout_reads_as_written_by_the_chest_phantom() {
        let d = dir("covid");
        let per_class = write_chest_phantoms(&d, 12, 1, 299).unwrap();
        assert!(
            d.join("Viral Pneumonia/images/Viral Pneumonia-1.png")
                .is_file()
        );
        assert!(d.join("Lung_Opacity/images/Lung_Opacity-1.png").is_file());
        let (classes, items) = load_class_folders(&d, &[], 32, 32).unwrap();
        assert_eq!(
            classes,
            vec!["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
        );
        assert_eq!(items.len(), per_class.iter().sum::<usize>());
        assert!(items.iter().all(|i| i.pixels.len() == 32 * 32));
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_square_image_in_a_tall_frame_is_padded_or_stretched_to_fill_it() {
        let d = dir("fit");
        let file = d.join("square.png");
        image::GrayImage::from_pixel(20, 20, image::Luma([255]))
            .save(&file)
            .unwrap();
        let bright = |pixels: &[f32]| pixels.iter().filter(|&&p| p > 0.99).count();
        // 32 rows x 8 columns: padded, the square is 8x8 in the middle.
        let padded = read_gray_resized(&file, 32, 8, ImageFit::Pad).unwrap();
        assert_eq!(bright(&padded), 64);
        assert!(padded[..8 * 12].iter().all(|&p| p == 0.0), "black above");
        let stretched = read_gray_resized(&file, 32, 8, ImageFit::Stretch).unwrap();
        assert_eq!(bright(&stretched), 32 * 8, "fills the frame");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn mixed_sizes_resize_and_bad_folders_say_what_is_wrong() {
        let d = dir("generic");
        for (class, size) in [("a", (10, 20)), ("b", (40, 8))] {
            std::fs::create_dir_all(d.join(class)).unwrap();
            image::GrayImage::from_pixel(size.0, size.1, image::Luma([200]))
                .save(d.join(class).join("x.png"))
                .unwrap();
        }
        let (_, items) = load_class_folders(&d, &[], 16, 16).unwrap();
        assert!(items.iter().all(|i| i.pixels.len() == 256));
        // An empty class.
        std::fs::create_dir_all(d.join("c")).unwrap();
        let e = load_class_folders(&d, &[], 16, 16).unwrap_err().to_string();
        assert!(e.contains("holds no PNG or JPEG images"), "{e}");
        // An unknown class.
        let wanted = vec!["a".to_string(), "zebra".to_string()];
        let e = load_class_folders(&d, &wanted, 16, 16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no folder for class 'zebra'"), "{e}");
        // An unreadable image.
        std::fs::write(d.join("c/broken.png"), b"not a png").unwrap();
        let e = load_class_folders(&d, &[], 16, 16).unwrap_err().to_string();
        assert!(
            e.contains("broken.png") && e.contains("cannot read image"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).ok();
    }
}
