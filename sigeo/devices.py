"""Which device a job runs on, and which GPU it may take.

Snakemake's ``--resources gpu=N`` only counts jobs: it admits N GPU jobs at once but never tells
one *which* card is free (snakemake issue #281), and picking "the least busy GPU" races when jobs
start together. So every job that trains or scores networks takes a slot here: a non-blocking
``flock`` on one ``gpu{id}.lock`` file per visible GPU in a node-local folder. The kernel drops
the lock when the holder exits or is killed (SIGKILL included), so a lock file left behind by a
dead job is free again at once, and two Snakemake runs on one workstation share the same slots.
Under SLURM the scheduler already chose (GRES sets ``CUDA_VISIBLE_DEVICES``), so no lock is taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import SigeoError

log = logging.getLogger(__name__)

LOCK_POLL_S = 0.5
"""Mean pause between two sweeps over the lock files (jittered by ±50 % so waiters spread out)."""


class GpuSlotTimeout(SigeoError, TimeoutError):
    """Every GPU slot stayed locked for the whole timeout."""


@dataclass(frozen=True)
class DeviceSettings:
    """The config's ``devices:`` section (defaults filled in by ``config/schema.yaml``)."""

    lock_dir: str
    lock_timeout_s: float
    mixed_precision: bool
    matmul_precision: str

    @classmethod
    def from_config(cls, config: Mapping) -> DeviceSettings:
        return cls(**config["devices"])

    @contextlib.contextmanager
    def job_device(self) -> Iterator[torch.device]:
        """The job's device (its GPU slot held, see :func:`assigned_device`) with float32 matrix
        products at ``matmul_precision``; the previous precision is restored when the block exits.

        "high" lets CUDA use TF32, "medium" also lets the CPU use bfloat16 products (oneDNN, on
        cores with AMX or AVX-512 BF16): faster, but every score and weight changes at the 1e-3 level.
        """
        previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(self.matmul_precision)
        log.info("float32 matrix products at precision %r", self.matmul_precision)
        try:
            with assigned_device(self.lock_dir, self.lock_timeout_s) as device:
                yield device
        finally:
            torch.set_float32_matmul_precision(previous)


def visible_gpus(env: Mapping[str, str] | None = None) -> list[str]:
    """IDs of the GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` if set (empty: none), else all torch sees.

    The IDs are kept as written (indices, or ``GPU-…`` UUIDs) because they name the lock files, which
    must be the same for every process on the node whatever its own ``CUDA_VISIBLE_DEVICES``.
    """
    env = os.environ if env is None else env
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return [str(i) for i in range(torch.cuda.device_count())]
    return [gpu.strip() for gpu in value.split(",") if gpu.strip()]


@contextlib.contextmanager
def assigned_device(
    lock_dir: str | os.PathLike,
    timeout_s: float | None = None,
    *,
    visible: Sequence[str] | None = None,
    cuda_available: bool | None = None,
    env: Mapping[str, str] | None = None,
    poll_s: float = LOCK_POLL_S,
) -> Iterator[torch.device]:
    """Yield the device this job should use, holding its GPU slot until the block exits.

    * No CUDA (``cuda_available`` false, by default ``torch.cuda.is_available()``) or no visible GPU:
      ``cpu``, logged as "no GPU visible; running on CPU".
    * Under SLURM (``SLURM_JOB_ID`` and a non-empty ``CUDA_VISIBLE_DEVICES`` in ``env``): ``cuda:0``,
      the first GPU Slurm allocated; no lock.
    * Otherwise: lock ``lock_dir/gpu{id}.lock`` for the first free ID of ``visible`` (by default
      :func:`visible_gpus`), retrying every ``poll_s`` (jittered) for up to ``timeout_s`` seconds (None:
      no limit; then :class:`GpuSlotTimeout`), and yield ``cuda:{position of that ID in the list}``:
      torch numbers the visible GPUs from 0, and ``CUDA_VISIBLE_DEVICES`` cannot be changed once CUDA
      may have been initialised.

    ``lock_dir`` should be node-local (flock over NFS is unreliable) and absolute, so that every
    Snakemake run on the node shares it (the config schema requires an absolute path).
    """
    env = os.environ if env is None else env
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if not cuda_available:
        log.info("no GPU visible; running on CPU (torch finds no CUDA device)")
        yield torch.device("cpu")
        return
    if env.get("SLURM_JOB_ID") and env.get("CUDA_VISIBLE_DEVICES"):
        log.info("Slurm job %s was given GPU(s) %s; using cuda:0", env["SLURM_JOB_ID"], env["CUDA_VISIBLE_DEVICES"])
        yield torch.device("cuda:0")
        return
    pool = list(visible) if visible is not None else visible_gpus(env)
    if not pool:
        log.info("no GPU visible; running on CPU (CUDA_VISIBLE_DEVICES is empty)")
        yield torch.device("cpu")
        return
    with _gpu_slot(Path(lock_dir), pool, timeout_s, poll_s) as position:
        yield torch.device(f"cuda:{position}")


@contextlib.contextmanager
def _gpu_slot(lock_dir: Path, pool: list[str], timeout_s: float | None, poll_s: float) -> Iterator[int]:
    """Hold the flock of the first free GPU of ``pool``; yield its position in ``pool``."""
    paths = [lock_dir / f"gpu{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu)}.lock" for gpu in pool]
    fds = _open_lock_files(lock_dir, paths)
    held = None
    try:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (held := _lock_first_free(fds)) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise GpuSlotTimeout(
                    f"no free GPU after {timeout_s:g} s: all of {pool} stay locked in {lock_dir} by other jobs "
                    f"(`fuser {lock_dir}/gpu*.lock` names them); run fewer GPU jobs at once "
                    "(--resources gpu=N) or raise devices.lock_timeout_s"
                )
            time.sleep(poll_s * random.uniform(0.5, 1.5))
        log.info("took GPU %s (lock %s); using cuda:%d", pool[held], paths[held], held)
        yield held
    finally:
        if held is not None:
            # Unlock explicitly: forked children (data loader workers) may still hold the descriptor.
            fcntl.flock(fds[held], fcntl.LOCK_UN)
        for fd in fds:
            os.close(fd)


def _open_lock_files(lock_dir: Path, paths: list[Path]) -> list[int]:
    """Open (creating) the lock files; the folder is made like /tmp so every user's jobs share the slots."""
    fds: list[int] = []
    try:
        with contextlib.suppress(FileExistsError):
            lock_dir.mkdir(parents=True)
            lock_dir.chmod(0o1777)
        for path in paths:
            fds.append(_open_lock_file(path))
    except PermissionError as exc:
        for fd in fds:
            os.close(fd)
        raise SigeoError(f"cannot use the GPU lock folder {lock_dir} ({exc}); set devices.lock_dir") from exc
    return fds


def _open_lock_file(path: Path) -> int:
    """Read-only suffices for flock, so a lock file another user made works too; O_CREAT only when it is
    missing, because Linux refuses O_CREAT on another user's file in a sticky folder (protected_regular)."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)


def _lock_first_free(fds: list[int]) -> int | None:
    for position, fd in enumerate(fds):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        return position
    return None
