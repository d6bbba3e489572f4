//! Grad-CAM (Selvaraju et al. 2017): where a classifier looked.
//!
//! For target feature maps `A [B, K, h, w]` and the class score `y_c` before
//! softmax: `alpha_k = mean over space of dy_c/dA_k`,
//! `map = ReLU(sum_k alpha_k A_k)`, upsampled bilinearly to the input size
//! and scaled to [0, 1] per image. Target layers: the last feature maps of
//! each backbone (torchvision's `layer4`, `features.norm5` + ReLU, the last
//! VGG pool, ...); for the multi-scale model one map per branch and their
//! mean as the combined map.

use super::backbones::{BackboneClassifier, imagenet_input};
use super::multiscale::MultiScale;
use tch::{Kind, Tensor};

/// A classifier that exposes its Grad-CAM target layers.
pub trait CamTarget {
    /// Eval-mode forward of grayscale `[B, 1, H, W]` in [0, 1]: the named
    /// target feature maps (part of the autograd graph) and the logits.
    fn cam_forward(&self, x: &Tensor) -> (Vec<(String, Tensor)>, Tensor);
}

impl CamTarget for BackboneClassifier {
    fn cam_forward(&self, x: &Tensor) -> (Vec<(String, Tensor)>, Tensor) {
        let maps = self.body().feature_maps(&imagenet_input(x), false);
        let logits = self.head(&maps, false);
        (vec![("backbone".to_string(), maps)], logits)
    }
}

impl CamTarget for MultiScale {
    fn cam_forward(&self, x: &Tensor) -> (Vec<(String, Tensor)>, Tensor) {
        let maps = self.branch_maps(&imagenet_input(x), false);
        let logits = self.head(&maps);
        let named = super::multiscale::BRANCHES
            .iter()
            .map(|b| b.to_string())
            .zip(maps)
            .collect();
        (named, logits)
    }
}

/// Heat maps `[B, 1, H, W]` in [0, 1] for `class` (per image; `None` takes
/// each image's predicted class), one per target layer, plus `combined`
/// (their mean) when there are several.
pub fn grad_cam(
    model: &dyn CamTarget,
    x: &Tensor,
    class: Option<i64>,
) -> Result<Vec<(String, Tensor)>, String> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let (maps, logits) = model.cam_forward(x);
    let classes = match class {
        Some(c) => Tensor::full([x.size()[0]], c, (Kind::Int64, x.device())),
        None => logits.argmax(1, false),
    };
    let score = logits
        .gather(1, &classes.unsqueeze(1), false)
        .sum(Kind::Float);
    let targets: Vec<&Tensor> = maps.iter().map(|(_, m)| m).collect();
    let grads =
        Tensor::f_run_backward(&[score], &targets, false, false).map_err(|e| e.to_string())?;
    let mut out: Vec<(String, Tensor)> = maps
        .iter()
        .zip(grads)
        .map(|((name, a), g)| (name.clone(), cam_from(a, &g, h, w)))
        .collect();
    if out.len() > 1 {
        let all: Vec<Tensor> = out.iter().map(|(_, m)| m.shallow_clone()).collect();
        out.push((
            "combined".to_string(),
            normalise(&Tensor::stack(&all, 0).mean_dim(0, false, Kind::Float)),
        ));
    }
    Ok(out)
}

/// The map from activations `a` and their gradients `g`, at `h` x `w`.
pub fn cam_from(a: &Tensor, g: &Tensor, h: i64, w: i64) -> Tensor {
    tch::no_grad(|| {
        let alpha = g.mean_dim(&[2i64, 3][..], true, Kind::Float);
        let cam = (a * alpha).sum_dim_intlist(1, true, Kind::Float).relu();
        normalise(&cam.upsample_bilinear2d([h, w], false, None, None))
    })
}

/// Scale each image of `[B, 1, H, W]` to [0, 1] (an all-zero map stays zero).
fn normalise(cam: &Tensor) -> Tensor {
    let flat = cam.flatten(1, -1);
    let min = flat.min_dim(1, true).0.view([-1, 1, 1, 1]);
    let max = flat.max_dim(1, true).0.view([-1, 1, 1, 1]);
    (cam - &min) / (max - min).clamp_min(1e-12)
}
