#!/usr/bin/env bash
# Bring up a throw-away single-node Slurm cluster on localhost (munge, slurmctld, slurmd; no slurmdbd)
# with fake GPUs, for tests/test_slurm.py. Needs root and Debian's slurmctld slurmd slurm-client munge.
# tests/slurm/down.sh stops exactly what this started. Partition: debug. Node: localhost.
set -euo pipefail
SLURM_DIR=${SLURM_DIR:-/tmp/sigeo-slurm}
NGPU=${SLURM_FAKE_GPUS:-4}
HERE=$(cd "$(dirname "$0")" && pwd)

for tool in munged munge slurmctld slurmd sinfo sbatch squeue scontrol; do
  command -v "$tool" >/dev/null || { echo "up.sh: $tool is missing (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 1; }
done
# Never take over a real installation: the config must be ours or absent.
if [ -e /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" != "$SLURM_DIR/slurm.conf" ]; then
  echo "up.sh: /etc/slurm/slurm.conf exists and is not ours; not touching this machine's Slurm" >&2
  exit 1
fi
# A cluster left running by an interrupted run is stopped first.
[ -e "$SLURM_DIR/slurmctld.pid" ] && bash "$HERE/down.sh"
mkdir -p "$SLURM_DIR"/{state,spool,log}

# munge authenticates clients and daemons; start it only if it is not already running.
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
if ! munge -n >/dev/null 2>&1; then
  install -d -o munge -g munge -m 755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
  cp /run/munge/munged.pid "$SLURM_DIR/munged.pid"
fi

# Fake GPUs: Slurm hands out a GRES (and sets CUDA_VISIBLE_DEVICES) only for character or block
# devices, so harmless existing ones stand in for /dev/nvidia*.
FAKE_DEVS=(/dev/null /dev/zero /dev/full /dev/urandom)
[ "$NGPU" -le ${#FAKE_DEVS[@]} ] || { echo "up.sh: at most ${#FAKE_DEVS[@]} fake GPUs" >&2; exit 1; }
: >"$SLURM_DIR/gres.conf"
for i in $(seq 0 $((NGPU - 1))); do
  echo "NodeName=localhost Name=gpu File=${FAKE_DEVS[$i]}" >>"$SLURM_DIR/gres.conf"
done

# RealMemory must cover every --mem a job asks for.
MEM_MB=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10))
# No accounting database, so the executor must poll with squeue, which sees a finished job only
# for MinJobAge seconds (the plugin wants >= 120).
cat >"$SLURM_DIR/slurm.conf" <<CONF
ClusterName=sigeo-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
MinJobAge=3600
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
KillWait=5
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM_MB Gres=gpu:$NGPU State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
# The jobstep plugin strips SLURM_CONF (all SLURM_* but a few) before its inner srun, so the
# config must sit at the compiled-in default path.
mkdir -p /etc/slurm
ln -sf "$SLURM_DIR/slurm.conf" /etc/slurm/slurm.conf
ln -sf "$SLURM_DIR/gres.conf" /etc/slurm/gres.conf

slurmctld -i
slurmd -N localhost
for _ in $(seq 150); do
  sinfo -h -o %T 2>/dev/null | grep -qx idle && break
  sleep 0.2
done
if ! sinfo -h -o %T | grep -qx idle; then
  sinfo >&2 || true
  tail -n 30 "$SLURM_DIR"/log/*.log >&2
  echo "up.sh: the node did not become idle" >&2
  exit 1
fi
sinfo
