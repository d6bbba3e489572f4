//! Our optimizers against trajectories recorded from torch.optim (see
//! tests/fixtures/optim/make_reference.py): RAdam, Adam and SGD with momentum,
//! 20 steps on a least-squares problem, in float64, within 1e-9.

use scintigan::config::OptimizerKind;
use scintigan::train::optim::{OptimConfig, Optimizer};
use serde_json::Value;
use tch::{Device, Kind, Tensor, nn};

fn matrix(v: &Value) -> Tensor {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("matrix");
    let (r, c) = (rows.len() as i64, rows[0].len() as i64);
    Tensor::from_slice(&rows.concat())
        .view([r, c])
        .to_kind(Kind::Double)
}

fn replay(case: &str, kind: OptimizerKind, lr: f64, betas: [f64; 2], weight_decay: f64) {
    let text = std::fs::read_to_string("tests/fixtures/optim/reference.json").expect("fixture");
    let reference: Value = serde_json::from_str(&text).expect("json");
    let (x, y) = (matrix(&reference["x"]), matrix(&reference["y"]));
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _ = vs.root().var_copy("w", &matrix(&reference["w0"]));
    vs.double();
    let mut w = vs.variables()["w"].shallow_clone();
    // var_copy went through float32; set the exact float64 start.
    tch::no_grad(|| w.copy_(&matrix(&reference["w0"])));
    let mut opt = Optimizer::new(
        &vs,
        OptimConfig {
            kind,
            lr,
            betas,
            eps: 1e-8,
            weight_decay,
        },
    );
    let expected: Vec<Vec<f64>> =
        serde_json::from_value(reference["cases"][case].clone()).expect("case");
    for (step, want) in expected.iter().enumerate() {
        opt.zero_grad();
        let loss = (x.matmul(&w.tr()) - &y).square().sum(Kind::Double);
        loss.backward();
        opt.step();
        let got = Vec::<f64>::try_from(w.detach().flatten(0, -1)).expect("values");
        for (g, e) in got.iter().zip(want) {
            assert!(
                (g - e).abs() < 1e-9,
                "{case} step {}: got {got:?}, torch {want:?}",
                step + 1
            );
        }
    }
}

#[test]
fn radam_matches_torch_with_weight_decay() {
    replay("radam", OptimizerKind::Radam, 0.05, [0.9, 0.999], 0.01);
}

#[test]
fn radam_matches_torch_with_gan_betas() {
    replay("radam_gan", OptimizerKind::Radam, 0.05, [0.5, 0.999], 0.0);
}

#[test]
fn adam_matches_torch() {
    replay("adam", OptimizerKind::Adam, 0.05, [0.9, 0.999], 0.01);
}

#[test]
fn sgd_momentum_matches_torch() {
    replay("sgd", OptimizerKind::Sgd, 0.01, [0.9, 0.999], 0.01);
}
