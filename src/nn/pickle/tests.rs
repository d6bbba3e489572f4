//! Unit tests of the checkpoint reader and the pickle machine.

use super::container::LEGACY_MAGIC;
use super::machine::Machine;
use super::read_torch_checkpoint;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use tch::{Kind, Tensor};

fn temp_file(bytes: &[u8]) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "scintigan-pickle-{}-{}.pth",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

fn read_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, String> {
    let path = temp_file(bytes);
    let result = read_torch_checkpoint(&path);
    let _ = std::fs::remove_file(&path);
    result
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pickle")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A tiny pickle writer for hand-made (and broken) checkpoints.
#[derive(Default)]
struct P(Vec<u8>);

impl P {
    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn s(self, text: &str) -> Self {
        let mut out = self.op(&[0x8c, text.len() as u8]);
        out.0.extend_from_slice(text.as_bytes());
        out
    }
    fn global(self, module: &str, name: &str) -> Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    fn int(self, v: u8) -> Self {
        self.op(&[b'K', v])
    }
}

/// A legacy checkpoint `{"w": float32 tensor}` over a storage of
/// `numel` floats 0, 1, 2...
fn legacy(numel: u8, size: u8, stride: u8, offset: u8, stored: u8) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&[0x80, 2, 0x8a, 10]);
    out.extend_from_slice(&LEGACY_MAGIC.to_le_bytes()[..10]);
    out.push(b'.');
    out.extend_from_slice(&[0x80, 2, b'M', 0xe9, 0x03, b'.']);
    let sys = P::default()
        .op(&[0x80, 2, b'}'])
        .s("little_endian")
        .op(&[0x88, b's', b'.']);
    out.extend_from_slice(&sys.0);
    let main = P::default()
        .op(&[0x80, 2])
        .global("collections", "OrderedDict")
        .op(b")R(")
        .s("w")
        .global("torch._utils", "_rebuild_tensor_v2")
        .op(b"((")
        .s("storage")
        .global("torch", "FloatStorage")
        .s("0")
        .s("cpu")
        .int(numel)
        .op(b"N")
        .op(b"t")
        .op(b"Q")
        .int(offset)
        .int(size)
        .op(&[0x85])
        .int(stride)
        .op(&[0x85, 0x89])
        .global("collections", "OrderedDict")
        .op(b")RtRu.");
    out.extend_from_slice(&main.0);
    let keys = P::default().op(&[0x80, 2, b'(']).s("0").op(b"l.");
    out.extend_from_slice(&keys.0);
    out.extend_from_slice(&i64::from(stored).to_le_bytes());
    for i in 0..stored {
        out.extend_from_slice(&f32::from(i).to_le_bytes());
    }
    out
}

#[test]
fn hand_made_legacy_checkpoint_reads() {
    let tensors = read_bytes(&legacy(6, 3, 2, 1, 6)).expect("valid checkpoint");
    assert_eq!(tensors.len(), 1);
    let (name, t) = &tensors[0];
    assert_eq!(name, "w");
    assert_eq!(t.kind(), Kind::Float);
    assert_eq!(t.stride(), vec![2]);
    assert_eq!(
        Vec::<f32>::try_from(t.contiguous()).unwrap(),
        vec![1.0, 3.0, 5.0]
    );
}

#[test]
fn out_of_bounds_views_are_errors() {
    // Last element at 1 + 2*3 = 7 in a storage of 6.
    let err = read_bytes(&legacy(6, 4, 2, 1, 6)).unwrap_err();
    assert!(
        err.contains("out of storage bounds") && err.contains("'w'"),
        "{err}"
    );
    let err = read_bytes(&legacy(6, 1, 1, 6, 6)).unwrap_err();
    assert!(err.contains("out of storage bounds"), "{err}");
}

#[test]
fn missing_or_short_storage_is_an_error() {
    let err = read_bytes(&legacy(6, 3, 2, 1, 5)).unwrap_err();
    assert!(err.contains("holds 5 elements"), "{err}");
    let full = legacy(6, 3, 2, 1, 6);
    for cut in [1, 4, 9, 20, full.len() / 2, full.len() - 30, full.len() - 1] {
        let err = read_bytes(&full[..cut]).unwrap_err();
        assert!(!err.contains('\n'), "{err}");
    }
    let err = read_bytes(&full[..full.len() - 1]).unwrap_err();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn empty_and_random_files_are_errors() {
    let err = read_bytes(b"").unwrap_err();
    assert!(err.contains("empty"), "{err}");
    let mut state = 0x2545f4914f6cdd1du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let err = read_bytes(&random).unwrap_err();
    assert!(err.contains("not a torch.save checkpoint"), "{err}");
    // Random bytes behind a pickle PROTO opcode, or a zip signature.
    for head in [&[0x80u8, 2][..], b"PK\x03\x04"] {
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(&random);
        let err = read_bytes(&bytes).unwrap_err();
        assert!(!err.is_empty() && !err.contains('\n'), "{err}");
    }
}

#[test]
fn pickle_errors_name_opcode_and_offset() {
    let run = |bytes: &[u8]| Machine::run(bytes, 0).map(|_| ()).unwrap_err();
    let err = run(&[0x80, 2, 0xff]);
    assert!(err.contains("0xff") && err.contains("offset 2"), "{err}");
    let err = run(&[0x80, 2, b'.']);
    assert!(err.contains("underflow"), "{err}");
    let err = run(&[0x80, 2, b'h', 7, b'.']);
    assert!(err.contains("memo entry 7"), "{err}");
    let err = run(&[0x80, 2, b'X', 0xff, 0xff, 0xff, 0x7f, b'a']);
    assert!(err.contains("truncated"), "{err}");
    let err = run(&[0x80, 2, b'N']);
    assert!(err.contains("before its STOP"), "{err}");
    let err = run(&[0x80, 2, b'(', b'N', b'1', b'0', b'.']);
    assert!(err.contains("underflow"), "{err}");
    let err = run(&[0x80, 2, b'S']);
    assert!(err.contains("STRING"), "{err}");
    // A list appended to itself is fine (no recursion anywhere).
    let (vm, id) = Machine::run(&[0x80, 2, b']', b'q', 0, b'h', 0, b'a', b'.'], 0).unwrap();
    assert_eq!(vm.describe(id), "list of 1");
}

#[test]
fn non_state_dicts_are_errors() {
    // A legacy file whose object is an empty list.
    let err = read_bytes(&{
        let mut b = vec![0x80, 2, 0x8a, 10];
        b.extend_from_slice(&LEGACY_MAGIC.to_le_bytes()[..10]);
        b.extend_from_slice(&[b'.', 0x80, 2, b'M', 0xe9, 0x03, b'.']);
        b.extend_from_slice(&[0x80, 2, b'}', b'.']);
        b.extend_from_slice(&[0x80, 2, b']', b'.']);
        b.extend_from_slice(&[0x80, 2, b']', b'.']);
        b
    })
    .unwrap_err();
    assert!(err.contains("list of 0"), "{err}");
}

#[test]
fn truncated_and_corrupted_zips_are_errors() {
    let good = fixture("tiny_zip.pth");
    assert!(read_bytes(&good).is_ok());
    let step = (good.len() / 97).max(1);
    for cut in (1..good.len()).step_by(step) {
        let err = read_bytes(&good[..cut]).unwrap_err();
        assert!(!err.contains('\n'), "cut {cut}: {err}");
    }
    // Flipped bytes must give a result or an error, never a panic.
    let mut state = 0x9e3779b97f4a7c15u64;
    for _ in 0..200 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bad = good.clone();
        let at = (state as usize) % bad.len();
        bad[at] ^= (state >> 40) as u8 | 1;
        let _ = read_bytes(&bad);
    }
}
