"""DICOM fixtures with known pixel values, one per transfer syntax, for the
DICOM reader's tests (src/data/dicom.rs).

    .venv/bin/python scripts/dicom_fixtures.py OUT_DIR

Needs pydicom and numpy in the interpreter and dcmtk's and OpenJPEG's command
line tools on PATH: `scripts/setup-dicom-tools.sh VENV_DIR` installs all of
them.

Every image is synthetic: a gradient with a few Gaussian "hot spots" and a
little noise, scaled so that it spans the whole stored range (its minimum and
maximum are the smallest and largest representable stored values). pydicom
writes the uncompressed files; dcmtk (dcmconv, dcmcrle, dcmcjpeg, dcmcjpls)
transcodes them, and JPEG 2000 is made with opj_compress and encapsulated
with pydicom. Nothing here decodes a fixture to make its expected values:
they come from the numpy array that was encoded.

OUT_DIR receives, for each good case, `<case>.dcm` and `<case>.f64` (the
expected modality values as raw little-endian float64, frames x rows x
columns: stored * RescaleSlope + RescaleIntercept, slope 1 and intercept 0
where absent, and for MONOCHROME1 mirrored within the representable range so
that larger is brighter), five `bad_*.dcm` files that a reader must refuse,
and `expected.json`:

    {
      "<case>": {"file": "<case>.dcm", "transfer_syntax": "<uid>",
                 "rows": R, "columns": C, "frames": F,
                 "values": "<case>.f64",
                 "tolerance": 0},               # lossless: largest |error|
      "<lossy case>": {..., "mean_abs_tolerance": T},  # lossy: mean |error|
      "bad": {"<bad case>": "<text its one-line reason contains>"}
    }

Each fixture is checked before it is listed: dcmdump must parse it, and its
pixels, decompressed by an independent decoder (dcmdrle, dcmdjpeg, dcmdjpls,
opj_decompress; pydicom itself for uncompressed data) and converted to
modality values from the file's own attributes, must match the expected
values exactly (lossless) or within the tolerance (lossy). A case that a tool
cannot produce, or that fails its check, is reported and left out.

Exit status: 0 when every case was written and verified; 1 when a tool or
module is missing or the arguments are wrong (nothing written); 2 when some
cases were left out (expected.json lists the others).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.sequence import Sequence
    from pydicom.uid import (
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        JPEG2000Lossless,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLosslessSV1,
        JPEGLSLossless,
        RLELossless,
    )
except ImportError as e:  # pragma: no cover - depends on the environment
    sys.exit(f"error: {e.name} is missing; run scripts/setup-dicom-tools.sh VENV_DIR "
             "and use that venv's python")

SEED = 20240917
ROWS, COLS = 48, 32

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# Lossy JPEG: IJG quality factor and the mean absolute error (in stored
# units, slope 1) the decoded values may have. At quality 95 the IJG
# quantisation steps are a tenth of the standard tables' (1 to 10); the 12-bit
# process uses the same steps in 12-bit units, so both depths lose about one
# stored unit per pixel. Measured with dcmdjpeg on these images: mean 1.23
# (8-bit, max 6) and 1.52 (12-bit, max 7); the quality sweep 75/90/95/100
# gives 1.96/1.59/1.23/0.10 (8-bit) and 7.7/3.1/1.5/0.10 (12-bit). The
# tolerances leave headroom for a decoder whose IDCT rounds differently (at
# most about +-1 on a pixel) and stay far below what a wrong decode gives:
# the mean distance of these images from their own mean is 31 (8-bit) and
# 583 (12-bit), and a misread bit depth, byte order or sign is larger still.
JPEG_QUALITY = 95
MEAN_ABS_TOL_8BIT = 2.0    # 0.8 % of the 8-bit range
MEAN_ABS_TOL_12BIT = 3.0   # 0.07 % of the 12-bit range

REQUIRED_TOOLS = [
    "dcmdump", "dcmconv", "dcmcrle", "dcmdrle", "dcmcjpeg", "dcmdjpeg",
    "dcmcjpls", "dcmdjpls", "opj_compress", "opj_decompress",
]


class CaseFailed(Exception):
    """A case could not be produced or did not verify; it is left out."""


# --- pixel data --------------------------------------------------------------

def stored_range(bits_stored: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest stored value that BitsStored/PixelRepresentation allow."""
    if signed:
        return -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    return 0, (1 << bits_stored) - 1


def synth_frame(rng: np.random.Generator, lo: int, hi: int, *, blobs: int = 4,
                noise: float = 0.01) -> np.ndarray:
    """One ROWS x COLS frame: a diagonal gradient plus Gaussian hot spots and
    a little noise, scaled to span exactly lo..hi (both values occur)."""
    y, x = np.mgrid[0:ROWS, 0:COLS].astype(np.float64)
    field = 0.35 * y / (ROWS - 1) + 0.15 * x / (COLS - 1)
    for _ in range(blobs):
        cy, cx = rng.uniform(0, ROWS), rng.uniform(0, COLS)
        sigma = rng.uniform(1.5, 5.0)
        field += rng.uniform(0.3, 1.0) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    field += rng.normal(0.0, noise, field.shape)
    field = (field - field.min()) / (field.max() - field.min())
    return np.rint(lo + field * (hi - lo)).astype(np.int64)


def case_rng(name: str) -> np.random.Generator:
    """A generator of its own for each case, so cases do not depend on order."""
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


# --- datasets ----------------------------------------------------------------

@dataclass
class Image:
    """What is encoded: stored values (frames x rows x cols) and the
    attributes that turn them into modality values."""

    pixels: np.ndarray
    bits_allocated: int
    bits_stored: int
    signed: bool = False
    photometric: str = "MONOCHROME2"
    slope: float | None = None
    intercept: float | None = None
    # Write NumberOfFrames even for one frame (the NM IOD requires it).
    number_of_frames_tag: bool = True

    def expected_values(self) -> np.ndarray:
        """Modality values from the source array, larger = brighter."""
        slope = 1.0 if self.slope is None else self.slope
        intercept = 0.0 if self.intercept is None else self.intercept
        values = self.pixels.astype(np.float64) * slope + intercept
        if self.photometric == "MONOCHROME1":
            smin, smax = stored_range(self.bits_stored, self.signed)
            values = (smax * slope + intercept) + (smin * slope + intercept) - values
        return values

    def pixel_bytes(self) -> bytes:
        if self.bits_allocated == 8:
            dtype = "i1" if self.signed else "u1"
        else:
            dtype = "<i2" if self.signed else "<u2"
        info = np.iinfo(dtype)
        assert self.pixels.min() >= info.min and self.pixels.max() <= info.max
        return self.pixels.astype(dtype).tobytes()


def uid(*parts: str) -> str:
    """A deterministic UID (2.25 and a name-based UUID), so reruns write
    identical files."""
    name = "/".join(["scintigan-fixture", *parts])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def base_dataset(name: str, transfer_syntax: str, sop_class: str = NM_IMAGE_STORAGE) -> Dataset:
    """Patient/study/series/SOP attributes and a valid file meta."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid(name, "sop")
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = "20240101"
    ds.StudyTime = ds.SeriesTime = "120000"
    ds.Modality = "NM"
    ds.Manufacturer = "scintigan fixtures"
    ds.SeriesDescription = f"synthetic fixture {name}"
    ds.PatientName = "Synthetic^Fixture"
    ds.PatientID = "SYNTH-0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid(name, "series")
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    return ds


def image_dataset(name: str, transfer_syntax: str, img: Image) -> Dataset:
    """A full NM image object holding `img` uncompressed."""
    ds = base_dataset(name, transfer_syntax)
    frames, rows, cols = img.pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = img.photometric
    if img.number_of_frames_tag or frames > 1:
        ds.NumberOfFrames = frames
        # NM: frames are indexed by detector (anterior, posterior).
        ds.FrameIncrementPointer = pydicom.tag.Tag("DetectorVector")
        ds.DetectorVector = list(range(1, frames + 1))
        ds.NumberOfDetectors = frames
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = img.bits_allocated
    ds.BitsStored = img.bits_stored
    ds.HighBit = img.bits_stored - 1
    ds.PixelRepresentation = 1 if img.signed else 0
    if img.slope is not None:
        ds.RescaleSlope = f"{img.slope:g}"
    if img.intercept is not None:
        ds.RescaleIntercept = f"{img.intercept:g}"
    ds.add_new("PixelData", "OB" if img.bits_allocated == 8 else "OW", img.pixel_bytes())
    return ds


def save(ds: Dataset, path: Path) -> None:
    """Write a Part-10 file: preamble, DICM, file meta, data set."""
    ds.save_as(path, enforce_file_format=True)


# --- tools -------------------------------------------------------------------

def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a tool; a non-zero exit becomes CaseFailed with its output."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout).strip().splitlines()
        raise CaseFailed(f"{Path(str(cmd[0])).name} exited {proc.returncode}: {' | '.join(out[-3:])}")
    return proc


def with_tool(*args: str) -> Callable[[Path, Path, Path], None]:
    """A transcoder running `tool args... src dst` (dcmconv, dcmcrle, ...)."""
    def transcode(src: Path, dst: Path, _tmp: Path) -> None:
        run(*args, src, dst)
    return transcode


def to_j2k_lossless(src: Path, dst: Path, tmp: Path) -> None:
    """JPEG 2000 lossless: opj_compress each frame (reversible 5/3 wavelet,
    the default when no rate or quality is given) to a raw J2K codestream,
    then encapsulate the codestreams into a copy of the source dataset."""
    ds = pydicom.dcmread(src)
    frames = ds.get("NumberOfFrames", 1)
    rows, cols = ds.Rows, ds.Columns
    signed = "s" if ds.PixelRepresentation else "u"
    # The source's native pixel bytes, little endian as pydicom wrote them.
    arr = np.frombuffer(ds.PixelData, dtype=f"<{signed.replace('s', 'i')}2")
    arr = arr.reshape(frames, rows, cols)
    codestreams = []
    for f in range(frames):
        raw = tmp / f"j2k-frame{f}.rawl"  # .rawl: little-endian raw samples
        out = tmp / f"j2k-frame{f}.j2k"   # .j2k: bare codestream, as DICOM wants
        raw.write_bytes(arr[f].tobytes())
        run("opj_compress", "-i", raw, "-o", out, "-F", f"{cols},{rows},1,{ds.BitsStored},{signed}",
            "-n", "4", "-quiet")
        stream = out.read_bytes()
        # COD marker segment: byte 13 after FF52 is the wavelet, 1 = 5/3
        # reversible; the transfer syntax promises lossless.
        cod = stream.find(b"\xff\x52")
        if cod < 0 or stream[cod + 13] != 1:
            raise CaseFailed("opj_compress did not use the reversible 5/3 wavelet")
        codestreams.append(stream)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate(codestreams)
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "00"
    save(ds, dst)


def decode_j2k(path: Path, header: Dataset, tmp: Path) -> np.ndarray:
    """The stored values of a JPEG 2000 fixture, each frame's codestream
    decoded by opj_decompress."""
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(path)
    frames = header.get("NumberOfFrames", 1)
    planes = []
    for f, stream in enumerate(generate_frames(ds.PixelData, number_of_frames=frames)):
        j2k, raw = tmp / f"dec{f}.j2k", tmp / f"dec{f}.rawl"
        j2k.write_bytes(stream)
        run("opj_decompress", "-i", j2k, "-o", raw, "-quiet")
        planes.append(raw.read_bytes())
    return raw_stored(b"".join(planes), header)


# --- verification ------------------------------------------------------------
#
# pydicom only parses attributes here; pixel values come from dcmtk (dcmdump
# +W extracts native pixel data, dcmdrle/dcmdjpeg/dcmdjpls decompress first)
# or OpenJPEG, so a fixture is never checked against the library that wrote
# it.

def raw_stored(data: bytes, header: Dataset) -> np.ndarray:
    """frames x rows x cols stored values from little-endian native pixel
    bytes, as BitsAllocated/BitsStored/PixelRepresentation describe them."""
    signed = bool(header.PixelRepresentation)
    bits = header.BitsAllocated
    dtype = {8: "i1" if signed else "u1", 16: "<i2" if signed else "<u2"}[bits]
    shape = (header.get("NumberOfFrames", 1), header.Rows, header.Columns)
    n = int(np.prod(shape))
    if len(data) < n * bits // 8:
        raise CaseFailed(f"pixel data holds {len(data)} bytes, {shape} needs {n * bits // 8}")
    arr = np.frombuffer(data[: n * bits // 8], dtype=dtype).astype(np.int64)
    if header.BitsStored < bits:
        if signed:
            raise CaseFailed("signed data with BitsStored < BitsAllocated is not handled here")
        arr &= (1 << header.BitsStored) - 1
    return arr.reshape(shape)


def dcmtk_stored(path: Path, header: Dataset, tmp: Path) -> np.ndarray:
    """Stored values of an uncompressed file, extracted by dcmdump +W (which
    writes them little endian whatever the transfer syntax)."""
    out = tmp / "pixels"
    out.mkdir(exist_ok=True)
    run("dcmdump", "-q", "+W", out, path)
    raws = list(out.glob("*.raw"))
    if len(raws) != 1:
        raise CaseFailed(f"dcmdump +W wrote {len(raws)} raw files, expected one")
    data = raws[0].read_bytes()
    raws[0].unlink()
    return raw_stored(data, header)


def modality_values(stored: np.ndarray, header: Dataset) -> np.ndarray:
    """Modality values from stored values and the file's own attributes (the
    same rules as the expected values)."""
    slope = float(header.get("RescaleSlope", 1.0))
    intercept = float(header.get("RescaleIntercept", 0.0))
    values = stored.astype(np.float64) * slope + intercept
    if header.PhotometricInterpretation == "MONOCHROME1":
        smin, smax = stored_range(header.BitsStored, bool(header.PixelRepresentation))
        values = (smax * slope + intercept) + (smin * slope + intercept) - values
    return values


def check_part10(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        raise CaseFailed("no DICM marker at byte 128")


def dcmdump_ok(path: Path) -> None:
    """dcmdump must read the whole file without an error."""
    proc = run("dcmdump", "-q", path)
    if proc.stderr.strip():
        raise CaseFailed(f"dcmdump complained: {proc.stderr.strip().splitlines()[0]}")


DECODERS: dict[str, str] = {
    RLELossless: "dcmdrle",
    JPEGBaseline8Bit: "dcmdjpeg",
    JPEGExtended12Bit: "dcmdjpeg",
    JPEGLosslessSV1: "dcmdjpeg",
    JPEGLSLossless: "dcmdjpls",
}


def decoded_values(path: Path, tmp: Path) -> tuple[np.ndarray, str]:
    """The fixture's modality values as dcmtk/OpenJPEG decode them, and the
    decoder's name."""
    header = pydicom.dcmread(path, stop_before_pixels=True)
    ts = header.file_meta.TransferSyntaxUID
    if ts == JPEG2000Lossless:
        return modality_values(decode_j2k(path, header, tmp), header), "opj_decompress"
    if ts in DECODERS:
        out = tmp / "decoded.dcm"
        run(DECODERS[ts], path, out)
        header = pydicom.dcmread(out, stop_before_pixels=True)
        return modality_values(dcmtk_stored(out, header, tmp), header), DECODERS[ts]
    return modality_values(dcmtk_stored(path, header, tmp), header), "dcmdump +W"


# --- cases -------------------------------------------------------------------

@dataclass
class Case:
    name: str
    transfer_syntax: str
    image: Image
    # How the uncompressed explicit-LE (or implicit-LE) source becomes the
    # fixture; None: the source is the fixture.
    transcode: Callable[[Path, Path, Path], None] | None = None
    # None: lossless, exact. Otherwise the mean |error| allowed.
    mean_abs_tolerance: float | None = None


def unsigned_frames(name: str, frames: int = 1, bits: int = 16) -> np.ndarray:
    """frames x ROWS x COLS unsigned stored values spanning 0..2**bits-1."""
    rng = case_rng(name)
    lo, hi = stored_range(bits, False)
    return np.stack([synth_frame(rng, lo, hi) for _ in range(frames)])


def cases() -> list[Case]:
    s16_lo, s16_hi = stored_range(16, True)
    s16 = synth_frame(case_rng("explicit_le_s16"), s16_lo, s16_hi)[None]
    # Two frames that differ: the second has its own hot spots and is
    # mirrored top to bottom, like a posterior view beside an anterior one.
    mf = unsigned_frames("multiframe_u16", frames=2)
    mf[1] = mf[1][::-1]
    return [
        # RescaleSlope 2 / Intercept -100; NumberOfFrames left out on purpose
        # (a reader must default it to 1).
        Case("implicit_le_u16", ImplicitVRLittleEndian,
             Image(unsigned_frames("implicit_le_u16"), 16, 16, slope=2.0, intercept=-100.0,
                   number_of_frames_tag=False)),
        Case("explicit_le_s16", ExplicitVRLittleEndian, Image(s16, 16, 16, signed=True)),
        Case("explicit_be_u16", ExplicitVRBigEndian,
             Image(unsigned_frames("explicit_be_u16"), 16, 16), with_tool("dcmconv", "+tb")),
        Case("deflate_u16", DeflatedExplicitVRLittleEndian,
             Image(unsigned_frames("deflate_u16"), 16, 16), with_tool("dcmconv", "+td")),
        Case("rle_u16", RLELossless, Image(unsigned_frames("rle_u16"), 16, 16), with_tool("dcmcrle")),
        # Lossy: +sr scales by the representable range, which for data that
        # already spans it is the identity; +un keeps the UIDs deterministic.
        Case("jpeg_baseline_u8", JPEGBaseline8Bit,
             Image(unsigned_frames("jpeg_baseline_u8", bits=8), 8, 8),
             with_tool("dcmcjpeg", "+eb", "+q", str(JPEG_QUALITY), "+sr", "+un"),
             mean_abs_tolerance=MEAN_ABS_TOL_8BIT),
        Case("jpeg_extended_u12", JPEGExtended12Bit,
             Image(unsigned_frames("jpeg_extended_u12", bits=12), 16, 12),
             with_tool("dcmcjpeg", "+ee", "+q", str(JPEG_QUALITY), "+sr", "+un"),
             mean_abs_tolerance=MEAN_ABS_TOL_12BIT),
        Case("jpeg_lossless_u16", JPEGLosslessSV1, Image(unsigned_frames("jpeg_lossless_u16"), 16, 16),
             with_tool("dcmcjpeg", "+e1", "+tl")),
        Case("jpegls_lossless_u16", JPEGLSLossless, Image(unsigned_frames("jpegls_lossless_u16"), 16, 16),
             with_tool("dcmcjpls", "+el")),
        Case("j2k_lossless_u16", JPEG2000Lossless, Image(unsigned_frames("j2k_lossless_u16"), 16, 16),
             to_j2k_lossless),
        Case("mono1_u8", ExplicitVRLittleEndian,
             Image(unsigned_frames("mono1_u8", bits=8), 8, 8, photometric="MONOCHROME1")),
        Case("multiframe_u16", ExplicitVRLittleEndian, Image(mf, 16, 16)),
    ]


def produce(case: Case, out_dir: Path, tmp: Path) -> dict:
    """Write and verify one good case; its expected.json entry."""
    dst = out_dir / f"{case.name}.dcm"
    values_file = out_dir / f"{case.name}.f64"
    img = case.image
    # pydicom writes implicit or explicit VR little endian; tools do the rest.
    implicit = case.transfer_syntax == ImplicitVRLittleEndian
    ds = image_dataset(case.name, ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian, img)
    if case.transcode is None:
        save(ds, dst)
    else:
        src = tmp / "source.dcm"
        save(ds, src)
        case.transcode(src, dst, tmp)

    # The file is what it claims to be ...
    check_part10(dst)
    dcmdump_ok(dst)
    header = pydicom.dcmread(dst, stop_before_pixels=True)
    if header.file_meta.TransferSyntaxUID != case.transfer_syntax:
        raise CaseFailed(f"written with transfer syntax {header.file_meta.TransferSyntaxUID}, "
                         f"expected {case.transfer_syntax}")
    frames, rows, cols = img.pixels.shape
    for key, want in [("Rows", rows), ("Columns", cols), ("PatientID", "SYNTH-0001"),
                      ("Modality", "NM"), ("PhotometricInterpretation", img.photometric),
                      ("BitsStored", img.bits_stored)]:
        if header.get(key) != want:
            raise CaseFailed(f"{key} is {header.get(key)!r} after encoding, expected {want!r}")

    # ... and an independent decoder gets the expected values back.
    expected = img.expected_values()
    got, decoder = decoded_values(dst, tmp)
    if got.shape != expected.shape:
        raise CaseFailed(f"{decoder} decoded shape {got.shape}, expected {expected.shape}")
    err = np.abs(got - expected)
    entry = {"file": dst.name, "transfer_syntax": case.transfer_syntax, "rows": rows,
             "columns": cols, "frames": frames, "values": values_file.name}
    if case.mean_abs_tolerance is None:
        if err.max() != 0:
            raise CaseFailed(f"{decoder} decoded values differ (max |error| {err.max():g})")
        entry["tolerance"] = 0
        how = f"exact via {decoder}"
    else:
        if err.mean() > case.mean_abs_tolerance:
            raise CaseFailed(f"{decoder} decoded mean |error| {err.mean():.3f} "
                             f"> tolerance {case.mean_abs_tolerance}")
        entry["mean_abs_tolerance"] = case.mean_abs_tolerance
        how = (f"via {decoder}: mean |error| {err.mean():.3f} (<= {case.mean_abs_tolerance}), "
               f"max {err.max():g}")

    values_file.write_bytes(expected.astype("<f8").tobytes())
    print(f"ok    {case.name:<20} {case.transfer_syntax:<24} {frames}x{rows}x{cols}  {how}")
    return entry


# --- bad inputs --------------------------------------------------------------

def bad_cases(out_dir: Path, tmp: Path) -> dict[str, str]:
    """Files a reader must refuse, and what its reason must say."""
    bad: dict[str, str] = {}
    rng = case_rng("bad")

    # A valid explicit-LE file cut to 60 % of its length, inside PixelData.
    img = Image(unsigned_frames("bad_truncated"), 16, 16)
    full = tmp / "full.dcm"
    save(image_dataset("bad_truncated", ExplicitVRLittleEndian, img), full)
    data = full.read_bytes()
    # (7FE0,0010) OW, explicit LE: tag, VR, 2 reserved bytes, 4-byte length.
    marker = data.rfind(b"\xe0\x7f\x10\x00OW\x00\x00")
    cut = int(len(data) * 0.6)
    assert 0 < marker and marker + 12 < cut < len(data), "60 % must fall inside the pixel data"
    (out_dir / "bad_truncated.dcm").write_bytes(data[:cut])
    bad["bad_truncated"] = "truncated"

    # Header only: every image attribute except PixelData.
    img = Image(unsigned_frames("bad_no_pixels"), 16, 16)
    ds = image_dataset("bad_no_pixels", ExplicitVRLittleEndian, img)
    del ds.PixelData
    save(ds, out_dir / "bad_no_pixels.dcm")
    dcmdump_ok(out_dir / "bad_no_pixels.dcm")
    bad["bad_no_pixels"] = "no pixel data"

    # RGB, 8 bits, interleaved samples (PlanarConfiguration 0).
    ds = base_dataset("bad_colour", ExplicitVRLittleEndian, SECONDARY_CAPTURE)
    ds.Modality = "OT"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = ROWS, COLS
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    rgb = np.stack([synth_frame(rng, 0, 255) for _ in range(3)], axis=-1).astype(np.uint8)
    ds.add_new("PixelData", "OB", rgb.tobytes())
    save(ds, out_dir / "bad_colour.dcm")
    dcmdump_ok(out_dir / "bad_colour.dcm")
    bad["bad_colour"] = "colour"

    # Not DICOM at all: random bytes, and text.
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert noise[128:132] != b"DICM"
    (out_dir / "bad_random.dcm").write_bytes(noise)
    bad["bad_random"] = "not DICOM"
    (out_dir / "bad_text.dcm").write_text(
        "This is a plain text file with a .dcm name, not a DICOM object.\n")
    bad["bad_text"] = "not DICOM"

    # The broken ones really are broken for dcmtk too.
    for name in ["bad_truncated", "bad_random", "bad_text"]:
        proc = subprocess.run(["dcmdump", "-q", out_dir / f"{name}.dcm"], capture_output=True)
        if proc.returncode == 0:
            raise SystemExit(f"error: dcmdump accepts {name}.dcm, which should be unreadable")
    for name in bad:
        print(f"bad   {name:<20} reason should contain {bad[name]!r}")
    return bad


# --- main --------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder to write the fixtures into")
    args = parser.parse_args()

    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        print(f"error: missing {', '.join(missing)}; run scripts/setup-dicom-tools.sh VENV_DIR",
              file=sys.stderr)
        return 1

    start = time.monotonic()
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    expected: dict[str, object] = {}
    skipped = []
    with tempfile.TemporaryDirectory(prefix="dicom-fixtures-") as tmp_root:
        for case in cases():
            # Leave no stale file from an earlier run for a case that fails now.
            for suffix in (".dcm", ".f64"):
                (out_dir / f"{case.name}{suffix}").unlink(missing_ok=True)
            tmp = Path(tmp_root) / case.name
            tmp.mkdir()
            try:
                expected[case.name] = produce(case, out_dir, tmp)
            except CaseFailed as e:
                for suffix in (".dcm", ".f64"):
                    (out_dir / f"{case.name}{suffix}").unlink(missing_ok=True)
                print(f"SKIP  {case.name:<20} {e}")
                skipped.append(case.name)
        bad_tmp = Path(tmp_root) / "bad"
        bad_tmp.mkdir()
        expected["bad"] = bad_cases(out_dir, bad_tmp)

    (out_dir / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    good = len(expected) - 1
    print(f"{good} good and {len(expected['bad'])} bad fixtures in {out_dir} "
          f"({time.monotonic() - start:.1f} s)")
    if skipped:
        print(f"error: left out {', '.join(skipped)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
