#!/usr/bin/env bash
# Install the tools that scripts/dicom_fixtures.py needs to write DICOM test
# fixtures:
#
#   scripts/setup-dicom-tools.sh VENV_DIR
#
# - Debian packages `dcmtk` (dcmdump, dcmconv, dcmcrle, dcmcjpeg, dcmcjpls and
#   their decoders) and `libopenjp2-tools` (opj_compress), installed with
#   apt-get only when their commands are missing (and `tmux`, which the
#   dashboard's end-to-end tests need);
# - Python packages pydicom (pinned) and numpy, installed into VENV_DIR only
#   when they cannot be imported there.
#
# Idempotent and silent on success; every failure prints one line saying what
# to do and exits 1.
set -euo pipefail

pydicom_version=3.0.2

venv=${1:?usage: setup-dicom-tools.sh VENV_DIR}
die() { echo "error: $*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------
missing=()
for cmd in dcmdump dcmconv dcmcrle dcmdrle dcmcjpeg dcmdjpeg dcmcjpls dcmdjpls; do
  command -v "$cmd" >/dev/null || { missing+=(dcmtk); break; }
done
command -v opj_compress >/dev/null || missing+=(libopenjp2-tools)
# Not a DICOM tool: the dashboard's end-to-end tests drive it in tmux.
command -v tmux >/dev/null || missing+=(tmux)

if ((${#missing[@]})); then
  # Root installs directly; otherwise passwordless sudo if there is one.
  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo -n true 2>/dev/null ||
      die "missing ${missing[*]}; run as root or install them yourself: apt-get install ${missing[*]}"
    as_root=(sudo -n)
  fi
  apt_install() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
      >/tmp/setup-dicom-tools.apt.log 2>&1
  }
  # Stale or absent package lists are the usual reason for a failed install:
  # refresh them once and retry.
  if ! apt_install; then
    "${as_root[@]}" apt-get update >>/tmp/setup-dicom-tools.apt.log 2>&1 && apt_install ||
      die "apt-get could not install ${missing[*]}; see /tmp/setup-dicom-tools.apt.log"
  fi
  for cmd in dcmdump dcmcjpeg opj_compress; do
    command -v "$cmd" >/dev/null ||
      die "'$cmd' still missing after installing ${missing[*]}; see /tmp/setup-dicom-tools.apt.log"
  done
fi

# --- Python packages ---------------------------------------------------------
py=$venv/bin/python
[[ -x "$py" ]] || die "$py not found; create the virtualenv first (e.g. python3 -m venv $venv)"

have=$("$py" -c 'import pydicom; print(pydicom.__version__)' 2>/dev/null || true)
pkgs=()
[[ "$have" == "$pydicom_version" ]] || pkgs+=("pydicom==$pydicom_version")
"$py" -c 'import numpy' 2>/dev/null || pkgs+=(numpy)
if ((${#pkgs[@]})); then
  "$py" -m pip install --quiet --disable-pip-version-check "${pkgs[@]}" ||
    die "pip could not install ${pkgs[*]} into $venv; check that PyPI is reachable"
fi
