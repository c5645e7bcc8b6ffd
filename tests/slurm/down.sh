#!/usr/bin/env bash
# Stop what tests/slurm/up.sh started (by its pid files) and remove its config and state.
SLURM_DIR=${SLURM_DIR:-/tmp/sigeo-slurm}

running() { # pid: alive and not a zombie (an init that does not reap leaves those behind)
  [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
stop() { # pid: SIGTERM, wait up to 10 s, then SIGKILL
  running "$1" || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do running "$1" || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

if [ -e "$SLURM_DIR/slurmctld.pid" ]; then
  scancel --user="$(id -un)" 2>/dev/null || true
fi
for daemon in slurmd slurmctld munged; do
  pid=$(cat "$SLURM_DIR/$daemon.pid" 2>/dev/null) && stop "$pid"
done
if [ "$(readlink /etc/slurm/slurm.conf)" = "$SLURM_DIR/slurm.conf" ]; then
  rm -f /etc/slurm/slurm.conf /etc/slurm/gres.conf
fi
rm -rf "$SLURM_DIR"
