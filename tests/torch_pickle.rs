//! Our `torch.save` reader against an independent reference: each fixture
//! `tests/fixtures/pickle/<name>.pth` (written by `make_fixtures.py` with
//! torch 2.13) comes with `<name>.safetensors`, the same tensors written by
//! the `safetensors` package, with the state dict's key order in its
//! metadata. Keys, order, dtypes, shapes and every byte of every value must
//! agree.

use scintigan::nn::pickle::read_torch_checkpoint;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pickle")
        .join(name)
}

/// The key order a safetensors fixture keeps in its `order` metadata.
fn reference_order(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read safetensors");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + len]).expect("safetensors header");
    let order = header["__metadata__"]["order"]
        .as_str()
        .expect("order metadata");
    serde_json::from_str(order).expect("order is a JSON list")
}

/// A tensor's values as raw bytes, in row-major order (NaNs and -0.0 too).
fn raw_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.contiguous();
    let numel = t.numel();
    let mut out = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut out, numel);
    out
}

/// Reads `<name>.pth` and compares it with `<name>.safetensors`.
fn check_against_reference(name: &str) -> Vec<(String, Tensor)> {
    let pth = fixture(&format!("{name}.pth"));
    let reference_path = fixture(&format!("{name}.safetensors"));
    let got = read_torch_checkpoint(&pth).unwrap_or_else(|e| panic!("{}: {e}", pth.display()));
    let order = reference_order(&reference_path);
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, order, "{name}: keys or their order differ");

    let reference: HashMap<String, Tensor> = Tensor::read_safetensors(&reference_path)
        .expect("read reference")
        .into_iter()
        .collect();
    assert_eq!(reference.len(), got.len(), "{name}");
    for (key, tensor) in &got {
        let expected = &reference[key];
        assert_eq!(tensor.device(), Device::Cpu, "{name}: {key}");
        assert_eq!(tensor.kind(), expected.kind(), "{name}: {key} dtype");
        assert_eq!(tensor.size(), expected.size(), "{name}: {key} shape");
        assert_eq!(
            raw_bytes(tensor),
            raw_bytes(expected),
            "{name}: {key} values"
        );
    }
    got
}

fn get<'a>(tensors: &'a [(String, Tensor)], key: &str) -> &'a Tensor {
    &tensors
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key}"))
        .1
}

/// The fixtures hold every dtype we claim to read, plus views.
fn check_contents(tensors: &[(String, Tensor)]) {
    assert_eq!(tensors.len(), 25);
    assert_eq!(tensors[0].0, "0.weight");
    let kinds = [
        ("0.weight", Kind::Float),
        ("1.num_batches_tracked", Kind::Int64),
        ("extra.float64", Kind::Double),
        ("extra.float16", Kind::Half),
        ("extra.bfloat16", Kind::BFloat16),
        ("extra.int64", Kind::Int64),
        ("extra.int32", Kind::Int),
        ("extra.int16", Kind::Int16),
        ("extra.int8", Kind::Int8),
        ("extra.uint8", Kind::Uint8),
        ("extra.bool", Kind::Bool),
    ];
    for (key, kind) in kinds {
        assert_eq!(get(tensors, key).kind(), kind, "{key}");
    }
    assert_eq!(get(tensors, "0.weight").size(), vec![4, 2, 3, 3]);
    assert_eq!(
        get(tensors, "1.num_batches_tracked").size(),
        Vec::<i64>::new()
    );
    assert_eq!(get(tensors, "1.num_batches_tracked").int64_value(&[]), 1);
    assert_eq!(get(tensors, "extra.empty").size(), vec![0, 3]);
    // Strides as stored: a transposed view and a broadcast.
    assert_eq!(get(tensors, "extra.transposed").stride(), vec![1, 6]);
    assert_eq!(get(tensors, "extra.slice").stride(), vec![6, 2]);
    assert_eq!(get(tensors, "extra.expanded").stride(), vec![1, 0]);
    assert!(!get(tensors, "extra.transposed").is_contiguous());
}

#[test]
fn zip_format_state_dict() {
    let tensors = check_against_reference("tiny_zip");
    check_contents(&tensors);
    // Views of one storage share it, offset included.
    let base = get(&tensors, "extra.base");
    let slice = get(&tensors, "extra.slice");
    assert_eq!(slice.storage_offset(), 7);
    assert_eq!(
        get(&tensors, "extra.transposed").data_ptr(),
        base.data_ptr()
    );
}

#[test]
fn zip_format_with_pickle_protocol_5() {
    check_contents(&check_against_reference("tiny_proto5"));
}

#[test]
fn legacy_format_state_dict() {
    let tensors = check_against_reference("tiny_legacy");
    check_contents(&tensors);
    assert_eq!(get(&tensors, "extra.slice").storage_offset(), 7);
}

#[test]
fn training_checkpoint_with_state_dict_key() {
    check_contents(&check_against_reference("tiny_wrapped"));
}

#[test]
fn legacy_format_as_written_by_pytorch_0_3_and_python_2() {
    let tensors = check_against_reference("tiny_legacy_2017");
    check_contents(&tensors);
    // The slice lies in a storage view starting at element 6.
    assert_eq!(get(&tensors, "extra.slice").storage_offset(), 1);
}

#[test]
fn weights_read_tensors_reads_pth_through_our_reader() {
    for name in ["tiny_zip.pth", "tiny_legacy.pth", "tiny_legacy_2017.pth"] {
        let tensors = scintigan::nn::weights::read_tensors(&fixture(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tensors.len(), 25, "{name}");
    }
}

#[test]
fn errors_name_the_problem() {
    let err = read_torch_checkpoint(&fixture("tiny_zip.safetensors")).unwrap_err();
    assert!(err.contains("not a torch.save checkpoint"), "{err}");
    let err = read_torch_checkpoint(&fixture("no_such_file.pth")).unwrap_err();
    assert!(err.contains("cannot open"), "{err}");
    let err = scintigan::nn::weights::read_tensors(&fixture("make_fixtures.py"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("make_fixtures.py") && err.contains("not a torch.save checkpoint"),
        "{err}"
    );
}
