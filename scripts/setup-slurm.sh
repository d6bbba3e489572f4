#!/usr/bin/env bash
# Bring up a real single-node Slurm on this machine for the Slurm executor's
# integration tests:
#
#   scripts/setup-slurm.sh            # install (Debian packages) and start
#   scripts/setup-slurm.sh --check    # exit 0 when a node is up, else 1
#
# Needs root (it installs packages, writes /etc/slurm/slurm.conf and starts
# munged, slurmctld and slurmd). Not root: it prints why it skipped and exits
# 0, so `make test` goes on and the Slurm tests skip themselves with that
# reason. Idempotent: a cluster that already answers `sinfo` is left alone.
#
# The configuration follows ../shared/design/REFERENCES.md ("A real
# single-node Slurm"): munge authentication, one partition `main` holding
# this host, no accounting (jobs are tracked with squeue and scontrol), and a
# short MinJobAge so finished jobs stay visible for the daemon's last look.
set -euo pipefail

log=/tmp/setup-slurm.log
die() { echo "error: $*" >&2; exit 1; }

node_up() {
  command -v sinfo >/dev/null || return 1
  local state
  state=$(timeout 10 sinfo --noheader --format=%T 2>/dev/null | head -n1) || return 1
  [[ "$state" == idle* || "$state" == mix* || "$state" == alloc* ]]
}

if [[ "${1:-}" == "--check" ]]; then
  node_up
  exit $?
fi

node_up && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-slurm: not root, so no local Slurm is installed or started; the Slurm tests will skip" >&2
  exit 0
fi

# --- packages ----------------------------------------------------------------
pkgs=()
for cmd in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
  command -v "${cmd%%:*}" >/dev/null || pkgs+=("${cmd##*:}")
done
if ((${#pkgs[@]})); then
  apt_install() {
    env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$log" 2>&1
  }
  if ! apt_install; then
    apt-get update >>"$log" 2>&1 && apt_install ||
      die "apt-get could not install ${pkgs[*]}; see $log"
  fi
fi

# --- munge -------------------------------------------------------------------
key=/etc/munge/munge.key
if [[ ! -s $key ]]; then
  mkdir -p /etc/munge
  head -c 1024 /dev/urandom >"$key"
fi
chown munge:munge "$key"
chmod 400 "$key"
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- munged >>"$log" 2>&1 || die "munged did not start; see $log"
fi

# --- slurm.conf --------------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >/etc/slurm/slurm.conf <<EOF
# Written by scintigan's scripts/setup-slurm.sh: a single-node test cluster.
ClusterName=scintigan-test
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
ReturnToService=2
MinJobAge=600
KillWait=30
OverTimeLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF

pgrep -x slurmctld >/dev/null || slurmctld >>"$log" 2>&1 || die "slurmctld did not start; see $log and /var/log/slurm/slurmctld.log"
pgrep -x slurmd >/dev/null || slurmd >>"$log" 2>&1 || die "slurmd did not start; see $log and /var/log/slurm/slurmd.log"

for _ in $(seq 1 60); do
  node_up && exit 0
  sleep 1
done
scontrol update NodeName="$host" State=RESUME >>"$log" 2>&1 || true
for _ in $(seq 1 10); do
  node_up && exit 0
  sleep 1
done
die "Slurm started but node $host is not idle: $(sinfo --noheader 2>&1 | head -n1); see /var/log/slurm/"
