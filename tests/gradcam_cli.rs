//! `scintigan gradcam` on a trained classifier run writes one overlay per
//! target layer and image, at the image size the run trained on.

mod common;

use common::*;

#[test]
fn gradcam_writes_heat_map_overlays_for_a_trained_run() {
    let dir = scratch("gradcam_cli");
    write(
        &dir,
        "r34.toml",
        "kind = \"classifier\"\nmodel = { arch = \"resnet34\" }\n\
         data = { source = \"phantom-bone\", image_size = [64, 32], per_class = 4 }\n\
         train = { epochs = 1, batch_size = 4, device = \"cpu\" }\n",
    );
    run_ok(&dir, &["run", "r34.toml"]);
    let run = only_run(&dir);

    // A scan of another size: it is fitted to 64x32 like training images.
    let scan = scintigan::data::phantom::bone_scan(128, 64, 1, 9, 0);
    let bytes: Vec<u8> = scan.pixels.iter().map(|p| (p * 255.0) as u8).collect();
    let img = image::GrayImage::from_raw(64, 128, bytes).expect("image");
    img.save(dir.join("scan.png")).expect("save png");

    let root = run.root().to_string_lossy().into_owned();
    run_ok(
        &dir,
        &[
            "gradcam",
            &root,
            "scan.png",
            "--class",
            "metastasis",
            "--out",
            "cams",
        ],
    );
    let heat = image::open(dir.join("cams/scan-backbone.png")).expect("overlay written");
    assert_eq!((heat.width(), heat.height()), (32, 64));

    let out = run_in(&dir, &["gradcam", &root, "scan.png", "--class", "fracture"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--class 'fracture' is not a class of this run"),
        "{}",
        stderr(&out)
    );
}
