#!/usr/bin/env bash
# Stop the test cluster of .ci/slurm_up.sh by PID (slurmd, slurmctld, munged) and remove its /etc/slurm links;
# the state directory is kept for its logs.
#   .ci/slurm_down.sh [STATE_DIR]   (default $NEGTRAIN_SLURM_STATE or /tmp/negtrain-slurm)
set -uo pipefail
STATE=$(realpath -m "${1:-${NEGTRAIN_SLURM_STATE:-/tmp/negtrain-slurm}}")

stop() {  # stop PIDFILE NAME: TERM, wait up to 10 s, then KILL
  local pidfile=$1 name=$2 pid
  [ -s "$pidfile" ] || { echo "slurm_down: $name not running (no $pidfile)"; return 0; }
  pid=$(cat "$pidfile")
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then  # a stale file: never signal another process
    echo "slurm_down: $name not running (stale $pidfile)"
  elif kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { echo "slurm_down: $name ($pid) ignored TERM, killing" >&2; kill -KILL "$pid"; }
    echo "slurm_down: stopped $name ($pid)"
  fi
  rm -f "$pidfile"
}

stop "$STATE/slurmd.pid" slurmd
stop "$STATE/slurmctld.pid" slurmctld
stop "$STATE/munge/munged.pid" munged
for f in slurm.conf gres.conf; do  # the links slurm_up.sh made, and only those
  [ "$(readlink "/etc/slurm/$f" 2>/dev/null)" = "$STATE/$f" ] && rm -f "/etc/slurm/$f"
done
exit 0
