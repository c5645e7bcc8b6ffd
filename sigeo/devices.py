"""Which device a job runs on, and which GPU it may take.

Snakemake's ``--resources gpu=N`` only counts jobs: it admits N GPU jobs at once but never tells
one *which* card is free (snakemake issue #281), and picking "the least busy GPU" races when jobs
start together. So every job that trains or scores networks takes a slot here: a non-blocking
``flock`` on one ``gpu{id}.lock`` file per visible GPU in a node-local folder, and with
``devices.jobs_per_gpu`` = k > 1 also on ``gpu{id}.slot{j}.lock`` for j = 1 … k-1, so that k jobs
share a card (a small CTR network leaves most of one idle). The kernel drops
the lock when the holder exits or is killed (SIGKILL included), so a lock file left behind by a
dead job is free again at once, and two Snakemake runs on one workstation share the same slots.
A SLURM job given exactly one GPU uses it without a lock (the scheduler chose it); inside an
allocation of several (one ``sbatch`` running ``snakemake --profile profiles/local``) the jobs take
slots among the allocation's GPUs, in a lock folder of that allocation alone.

A job that runs out of memory or hits a CUDA error stops with one line naming what it was doing and
the device (:class:`DeviceFailure`): such an error is never a property of one candidate, and after
a CUDA error the device is unusable for the rest of the process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import re
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import SigeoError

log = logging.getLogger(__name__)

LOCK_POLL_S = 0.5
"""Mean pause between two sweeps over the lock files (jittered by ±50 % so waiters spread out)."""


CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS workspace setting that makes its products deterministic (CUDA >= 10.2); read when CUDA starts."""

#: Texts of the RuntimeErrors torch raises for device failures in versions without their own classes.
_DEVICE_FAILURE_TEXTS = (
    "CUDA error",
    "CUDA out of memory",
    "CUBLAS_STATUS_",
    "CUDNN_STATUS_",
    "cuDNN error",
    "device-side assert",
    "DefaultCPUAllocator: can't allocate memory",
)
_OUT_OF_MEMORY_TEXTS = ("out of memory", "can't allocate memory", "CUBLAS_STATUS_ALLOC_FAILED")


class GpuSlotTimeout(SigeoError, TimeoutError):
    """Every GPU slot stayed locked for the whole timeout."""


class DeviceFailure(SigeoError):
    """A job ran out of memory or hit a CUDA error; the message names what it was doing and the device."""


@dataclass(frozen=True)
class DeviceSettings:
    """The ``devices:`` settings a job uses (built by :func:`sigeo.config.load_settings`); not the
    conda environment of the GPU rules, which decides how a job starts, not what it computes.

    ``deterministic``: deterministic kernels only (:func:`deterministic_algorithms`).
    """

    lock_dir: str
    lock_timeout_s: float
    mixed_precision: bool
    matmul_precision: str
    deterministic: bool
    jobs_per_gpu: int

    @contextlib.contextmanager
    def job_device(self) -> Iterator[torch.device]:
        """The job's device (its GPU slot held, see :func:`assigned_device`, and made CUDA's current
        device) with float32 matrix products at ``matmul_precision`` and, with ``deterministic``,
        deterministic kernels only; the previous settings are restored when the block exits. An out
        of memory or CUDA error inside the block becomes a :class:`DeviceFailure` naming the device.

        "high" lets CUDA use TF32, "medium" also lets the CPU use bfloat16 products (oneDNN, on
        cores with AMX or AVX-512 BF16): faster, but every score and weight changes at the 1e-3 level.
        """
        previous = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(self.matmul_precision)
        log.info("float32 matrix products at precision %r", self.matmul_precision)
        try:
            with (
                deterministic_algorithms(self.deterministic),
                assigned_device(self.lock_dir, self.lock_timeout_s, jobs_per_gpu=self.jobs_per_gpu) as device,
                device_failures("the job", device),
            ):
                if device.type == "cuda":
                    torch.cuda.set_device(device)  # kernels and allocations without a device go to the job's GPU
                yield device
        finally:
            torch.set_float32_matmul_precision(previous)


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool, env: MutableMapping[str, str] | None = None) -> Iterator[None]:
    """With ``enabled``, only deterministic kernels inside the block (the previous setting is restored).

    ``torch.use_deterministic_algorithms(True)`` picks deterministic implementations where torch has
    them and raises for ops that have none on the device; cuBLAS is deterministic only with a fixed
    workspace (``CUBLAS_WORKSPACE_CONFIG``), which it reads when CUDA starts, so it is set here,
    before the job touches CUDA. Without ``enabled`` nothing changes.
    """
    if not enabled:
        yield
        return
    env = os.environ if env is None else env
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    log.info("deterministic algorithms only (CUBLAS_WORKSPACE_CONFIG=%s)", env["CUBLAS_WORKSPACE_CONFIG"])
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def is_device_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory or CUDA error rather than a failure of the computation itself."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    accelerator_error = getattr(torch, "AcceleratorError", None)  # torch >= 2.8 raises it for CUDA errors
    if accelerator_error is not None and isinstance(exc, accelerator_error):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _DEVICE_FAILURE_TEXTS)


def device_label(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3)``, or the bare device when CUDA can no longer name it."""
    if device.type != "cuda":
        return str(device)
    try:
        return f"{device} ({torch.cuda.get_device_name(device)})"
    except Exception:  # after a CUDA error even the name query may fail
        return str(device)


def describe_failure(what: str, device: torch.device, exc: BaseException) -> str:
    """One line: what failed on which device, torch's first line, and what to do."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    if len(first) > 300:
        first = first[:297] + "..."
    if isinstance(exc, torch.cuda.OutOfMemoryError) or any(t in str(exc) for t in _OUT_OF_MEMORY_TEXTS):
        kind = "out of memory"
        advice = "give the job more memory, smaller batches, or fewer jobs per GPU"
    else:
        kind = "device error"
        advice = "the device is unusable for the rest of this process; rerun the job (it resumes)"
    return f"{what} failed on {device_label(device)}: {kind}: {first} ({advice})"


@contextlib.contextmanager
def device_failures(what: str, device: torch.device) -> Iterator[None]:
    """Turn an out-of-memory or CUDA error inside the block into a :class:`DeviceFailure` saying ``what``
    failed on ``device``; every other exception passes unchanged."""
    try:
        yield
    except Exception as exc:
        if not is_device_failure(exc):
            raise
        raise DeviceFailure(describe_failure(what, device, exc)) from exc


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
    jobs_per_gpu: int = 1,
) -> Iterator[torch.device]:
    """Yield the device this job should use, holding its GPU slot until the block exits.

    * No CUDA (``cuda_available`` false, by default ``torch.cuda.is_available()``) or no visible GPU:
      ``cpu``, logged as "no GPU visible; running on CPU".
    * A SLURM job (``SLURM_JOB_ID`` in ``env``) that sees exactly one GPU: ``cuda:0``, the GPU Slurm
      allocated; no lock.
    * A SLURM job that sees several (Snakemake's local profile inside one allocation): as below, in
      ``lock_dir/slurm-{SLURM_JOB_ID}``, since GPU IDs are numbered within each allocation and
      another allocation on the node may use the same IDs for other cards.
    * Otherwise: lock ``lock_dir/gpu{id}.lock`` for the first free ID of ``visible`` (by default
      :func:`visible_gpus`), retrying every ``poll_s`` (jittered) for up to ``timeout_s`` seconds (None:
      no limit; then :class:`GpuSlotTimeout`), and yield ``cuda:{position of that ID in the list}``:
      torch numbers the visible GPUs from 0, and ``CUDA_VISIBLE_DEVICES`` cannot be changed once CUDA
      may have been initialised. With ``jobs_per_gpu`` = k, each GPU has k slots; every GPU's first
      slot is tried before any second one, so jobs spread over the cards before they share one.

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
    pool = list(visible) if visible is not None else visible_gpus(env)
    if not pool:
        log.info("no GPU visible; running on CPU (CUDA_VISIBLE_DEVICES is empty)")
        yield torch.device("cpu")
        return
    slurm_job = env.get("SLURM_JOB_ID")
    if slurm_job and len(pool) == 1:
        log.info("Slurm job %s was given GPU %s; using cuda:0", slurm_job, pool[0])
        yield torch.device("cuda:0")
        return
    folder = Path(lock_dir) / f"slurm-{slurm_job}" if slurm_job else Path(lock_dir)
    with _gpu_slot(folder, pool, timeout_s, poll_s, jobs_per_gpu) as position:
        yield torch.device(f"cuda:{position}")


@contextlib.contextmanager
def _gpu_slot(
    lock_dir: Path, pool: list[str], timeout_s: float | None, poll_s: float, jobs_per_gpu: int = 1
) -> Iterator[int]:
    """Hold the flock of the first free slot of a GPU of ``pool``; yield that GPU's position in ``pool``.

    Slot 0 of a GPU is ``gpu{id}.lock`` whatever ``jobs_per_gpu``, so runs with different settings
    still exclude each other on it."""
    names = [re.sub(r"[^A-Za-z0-9_.-]", "_", gpu) for gpu in pool]
    paths = [lock_dir / (f"gpu{name}.lock" if slot == 0 else f"gpu{name}.slot{slot}.lock")
             for slot in range(jobs_per_gpu) for name in names]  # fmt: skip
    fds = _open_lock_files(lock_dir, paths)
    held = None
    try:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (held := _lock_first_free(fds)) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise GpuSlotTimeout(
                    f"no free GPU after {timeout_s:g} s: all of {pool} stay locked in {lock_dir} by other jobs "
                    f"(`fuser {lock_dir}/gpu*.lock` names them); run fewer GPU jobs at once "
                    "(--resources gpu=N, at most GPUs x devices.jobs_per_gpu) or raise devices.lock_timeout_s"
                )
            time.sleep(poll_s * random.uniform(0.5, 1.5))
        position = held % len(pool)
        log.info("took GPU %s (lock %s); using cuda:%d", pool[position], paths[held], position)
        yield position
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
        for folder in reversed([lock_dir, *lock_dir.parents]):
            if not folder.exists():
                with contextlib.suppress(FileExistsError):
                    folder.mkdir()
                    folder.chmod(0o1777)
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
