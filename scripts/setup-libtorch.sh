#!/usr/bin/env bash
# Make sure a libtorch that tch 0.26 accepts (PyTorch 2.13.0) is available.
#
#   scripts/setup-libtorch.sh VENV_DIR
#
# With LIBTORCH set: checks that $LIBTORCH holds libtorch 2.13.0 and does
# nothing else. Otherwise: creates VENV_DIR with `python3 -m venv` when it is
# missing and installs torch==2.13.0 from PyPI into it (about 4.7 GB: the
# wheel carries CUDA, so the same build runs on GPU boxes and CPU-only ones).
# Every failure says what to do.
set -euo pipefail

want=2.13.0
venv=${1:?usage: setup-libtorch.sh VENV_DIR}
python=${PYTHON:-python3}

die() { echo "error: $*" >&2; exit 1; }

if [[ -n "${LIBTORCH:-}" ]]; then
  [[ -d "$LIBTORCH/lib" && -d "$LIBTORCH/include" ]] ||
    die "LIBTORCH=$LIBTORCH is not a libtorch folder (expected lib/ and include/ inside); unset LIBTORCH to use a project-local PyTorch instead"
  have=$(cat "$LIBTORCH/build-version" 2>/dev/null || echo unknown)
  [[ "$have" == "$want"* ]] ||
    die "LIBTORCH=$LIBTORCH is libtorch $have, but tch 0.26 needs $want; download libtorch $want or unset LIBTORCH to let make install torch==$want into $venv"
  echo "using libtorch $have from LIBTORCH=$LIBTORCH"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  command -v "$python" >/dev/null ||
    die "'$python' not found; install Python 3 (e.g. apt-get install python3 python3-venv) or set LIBTORCH to an existing libtorch $want"
  echo "creating virtualenv $venv for libtorch"
  "$python" -m venv "$venv" ||
    die "'$python -m venv $venv' failed; install the venv module (e.g. apt-get install python3-venv) or set LIBTORCH"
fi

have=$("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
if [[ "$have" != "$want"* ]]; then
  echo "installing torch==$want into $venv (about 4.7 GB, once)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$want" ||
    die "pip could not install torch==$want into $venv; check that PyPI is reachable and there is ~6 GB free disk, or set LIBTORCH to an existing libtorch $want"
  have=$("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
  [[ "$have" == "$want"* ]] ||
    die "$venv holds torch '$have' after installing; tch 0.26 needs $want: remove $venv and run make again"
fi
echo "using torch $have from $venv"
