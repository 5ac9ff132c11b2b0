#!/usr/bin/env bash
# Start a single-node SLURM cluster for tests/test_slurm.py: munged, slurmctld and slurmd on this host, two fake GPUs
# (character devices), partitions `debug` (default) and `gpu`. Installs Debian's slurm-wlm and munge when missing.
# Everything lives in one state directory (config, PID files, logs, spool, munge key and socket); no systemd.
#   .ci/slurm_up.sh [STATE_DIR]     (default $NEGTRAIN_SLURM_STATE or /tmp/negtrain-slurm); needs root
# The config is written to STATE_DIR and linked from /etc/slurm/{slurm,gres}.conf (refused if those are real files),
# so sbatch / squeue / scontrol / `snakemake --profile profiles/slurm` and srun inside jobs all find it.
#   .ci/slurm_down.sh [STATE_DIR]   stops the three daemons by PID
# SLURM facts this relies on: DefMemPerCPU or jobs serialize; count-only gres makes the node INVALID;
# no accounting storage, so Snakemake polls with squeue and MinJobAge keeps finished jobs in `scontrol show job`.
set -euo pipefail
STATE=$(realpath -m "${1:-${NEGTRAIN_SLURM_STATE:-/tmp/negtrain-slurm}}")
[ "$(id -u)" -eq 0 ] || { echo "slurm_up: must run as root (starts munged, slurmctld, slurmd)" >&2; exit 1; }

install_if_missing() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sbatch >/dev/null && return 0
  echo "slurm_up: installing slurm-wlm and munge (apt-get)"
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep the packages from starting their own daemons
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; }
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
}

start_munge() {
  local dir="$STATE/munge"
  chmod 755 "$STATE"
  runuser -u munge -- test -x "$STATE" \
    || { echo "slurm_up: user munge cannot reach $STATE (a parent folder is private); use another STATE_DIR" >&2; exit 1; }
  mkdir -p "$dir" && chmod 755 "$dir"  # munged wants its socket folder searchable by all
  [ -s "$dir/munge.key" ] || mungekey --create --keyfile="$dir/munge.key"
  chown -R munge:munge "$dir" && chmod 600 "$dir/munge.key"
  runuser -u munge -- munged --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"
}

write_config() {
  local host node_line
  host=$(hostname -s)
  node_line=$(slurmd -C | sed -n 1p)  # NodeName=<host> CPUs=.. Boards=.. ... RealMemory=.. as slurmd sees the machine
  mkdir -p "$STATE/gpu" "$STATE/ctld" "$STATE/spool"
  for i in 0 1; do [ -c "$STATE/gpu/fakegpu$i" ] || mknod -m 666 "$STATE/gpu/fakegpu$i" c 1 3; done
  cat >"$STATE/slurm.conf" <<EOF
ClusterName=negtrain
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=600
GresTypes=gpu
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
$node_line Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
EOF
  cat >"$STATE/gres.conf" <<EOF
AutoDetect=off
NodeName=$host Name=gpu File=$STATE/gpu/fakegpu[0-1]
EOF
}

link_config() {  # clients find the config at Debian's default path: the jobstep plugin drops SLURM_CONF in jobs
  mkdir -p /etc/slurm
  for f in slurm.conf gres.conf; do
    if [ -e "/etc/slurm/$f" ] && [ "$(readlink "/etc/slurm/$f")" != "$STATE/$f" ]; then
      echo "slurm_up: /etc/slurm/$f exists and is not this test cluster's; refusing to replace it" >&2; exit 1
    fi
    ln -sfn "$STATE/$f" "/etc/slurm/$f"
  done
}

wait_idle() {  # the node must be schedulable before the first sbatch
  local state
  for _ in $(seq 1 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
    case "$state" in idle*|mixed*|allocated*) echo "slurm_up: node $state, /etc/slurm/slurm.conf -> $STATE/slurm.conf"; return 0 ;; esac
    sleep 0.5
  done
  echo "slurm_up: node not idle after 30 s (state '$state'); see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
  return 1
}

install_if_missing
if [ -s "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then
  echo "slurm_up: already running ($STATE)"; exit 0
fi
mkdir -p "$STATE"
start_munge
write_config
link_config
slurmctld
slurmd
wait_idle
