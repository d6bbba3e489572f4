#!/usr/bin/env bash
# A project-local single-node Slurm for the Slurm executor's integration
# tests. It never reads or writes the system's Slurm or munge setup
# (/etc/slurm, /etc/munge, /run/munge, /var/spool/slurm*): everything lives
# in .slurm/ at the repository root, with its own munged socket and key,
# its own slurm.conf (SLURM_CONF), ports, state, spool, logs and pid files.
# A system Slurm on this machine is left alone, and the script says so.
#
#   scripts/setup-slurm.sh            # install packages if missing; start
#   scripts/setup-slurm.sh --check    # exit 0 when the local node is up
#   scripts/setup-slurm.sh --conf     # print the local slurm.conf's path
#   scripts/setup-slurm.sh --stop     # stop the local daemons
#
# Point Slurm's commands at it with SLURM_CONF="$(scripts/setup-slurm.sh
# --conf)"; the tests do (tests/common/slurm.rs).
#
# Needs root (packages; slurmd runs jobs as their users). Not root: outside
# CI it says why and exits 0, and the Slurm tests skip with that reason;
# under CI=true it fails, as do those tests.
#
# The configuration follows ../shared/design/REFERENCES.md ("A real
# single-node Slurm"): munge authentication, one partition `main` holding
# this host, no accounting (jobs are tracked with squeue and scontrol), and
# a long MinJobAge so finished jobs stay visible for the daemon's last look.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.slurm
conf=$dir/slurm.conf
socket=$dir/munge/munge.socket
log=$dir/setup.log
die() { echo "setup-slurm: error: $*" >&2; exit 1; }

# The local cluster answers and its node takes jobs.
node_up() {
  [[ -f $conf ]] && command -v sinfo >/dev/null || return 1
  local state
  state=$(SLURM_CONF=$conf timeout 10 sinfo --noheader --format=%T 2>/dev/null | head -n1) || return 1
  [[ "$state" == idle* || "$state" == mix* || "$state" == alloc* ]]
}

# The pid in pid file $1 is alive and is program $2 (a pid file left from
# before a reboot may name another process now).
alive() {
  [[ -s $1 ]] || return 1
  local pid
  pid=$(cat "$1")
  [[ $pid =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$2" ]]
}

# Pids of program $1 that are not ours (not named by our pid file $2).
others() {
  local ours=""
  alive "$2" "$1" && ours=$(cat "$2")
  pgrep -x "$1" | grep -vx "${ours:-none}" || true
}

case "${1:-}" in
  --check) node_up; exit $? ;;
  --conf) echo "$conf"; exit 0 ;;
  --stop)
    for p in slurmd slurmctld; do
      if alive "$dir/run/$p.pid" "$p"; then kill "$(cat "$dir/run/$p.pid")"; fi
    done
    [[ -S $socket ]] && munged --stop --socket="$socket" >/dev/null 2>&1 || true
    exit 0 ;;
  "") ;;
  *) die "unknown option '$1' (expected --check, --conf or --stop)" ;;
esac

node_up && exit 0

if [[ $(id -u) -ne 0 ]]; then
  if [[ "${CI:-}" == true ]]; then
    die "not root, so no local Slurm can be installed or started, and CI=true needs the Slurm tests to run"
  fi
  echo "setup-slurm: not root, so no local Slurm is installed or started; the Slurm tests will skip" >&2
  exit 0
fi

if [[ -e /etc/slurm/slurm.conf || -n "$(others slurmctld "$dir/run/slurmctld.pid")" || -n "$(others slurmd "$dir/run/slurmd.pid")" ]]; then
  echo "setup-slurm: this machine has a system Slurm (/etc/slurm/slurm.conf or its daemons); leaving it alone and starting a project-local one in $dir" >&2
fi

mkdir -p "$dir"
: >"$log"

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

# --- munge: a private daemon with its own key and socket ---------------------
# munged wants the socket's folder searchable by all, the key private.
mkdir -p "$dir/munge" "$dir/run" "$dir/log" "$dir/state" "$dir/spool"
chmod 755 "$dir" "$dir/munge"
key=$dir/munge/munge.key
if [[ ! -s $key ]]; then
  head -c 1024 /dev/urandom >"$key"
fi
chmod 400 "$key"
# --force: munged refuses a socket folder whose ancestors another user owns
# or a group may write (a checkout under /home/alice run with sudo, a 775
# repository); this private test daemon runs anyway.
if ! alive "$dir/munge/munged.pid" munged; then
  rm -f "$socket"
  munged --force --socket="$socket" --key-file="$key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" >>"$log" 2>&1 ||
    die "munged did not start; see $log and $dir/log/munged.log"
fi

# --- slurm.conf --------------------------------------------------------------
# Ports: the first free pair from 16817 (a system Slurm keeps 6817/6818);
# kept across restarts once written.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -f $conf ]] && grep -q '^SlurmctldPort=' "$conf"; then
  ctld_port=$(sed -n 's/^SlurmctldPort=//p' "$conf")
  slurmd_port=$(sed -n 's/^SlurmdPort=//p' "$conf")
else
  ctld_port=16817
  while port_busy "$ctld_port" || port_busy $((ctld_port + 1)); do
    ctld_port=$((ctld_port + 2))
    ((ctld_port < 16917)) || die "no free pair of ports in 16817-16917 for slurmctld and slurmd"
  done
  slurmd_port=$((ctld_port + 1))
fi
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
: >"$dir/plugstack.conf"
cat >"$conf" <<EOF
# Written by scintigan's scripts/setup-slurm.sh: a project-local
# single-node test cluster. Use it with SLURM_CONF=$conf
ClusterName=scintigan-local
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SlurmUser=root
SlurmdUser=root
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
ReturnToService=2
MinJobAge=600
KillWait=30
OverTimeLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF

export SLURM_CONF=$conf
alive "$dir/run/slurmctld.pid" slurmctld || slurmctld -f "$conf" >>"$log" 2>&1 ||
  die "slurmctld did not start; see $log and $dir/log/slurmctld.log"
alive "$dir/run/slurmd.pid" slurmd || slurmd -f "$conf" >>"$log" 2>&1 ||
  die "slurmd did not start; see $log and $dir/log/slurmd.log"

for _ in $(seq 1 60); do
  node_up && exit 0
  sleep 1
done
scontrol update NodeName="$host" State=RESUME >>"$log" 2>&1 || true
for _ in $(seq 1 10); do
  node_up && exit 0
  sleep 1
done
die "the local Slurm started but node $host is not idle: $(sinfo --noheader 2>&1 | head -n1); see $dir/log/"
