"""GPU slot assignment with fake device lists: slot logic, processes racing for slots, SLURM, CPU."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from sigeo.config import load_config
from sigeo.devices import DeviceSettings, GpuSlotTimeout, assigned_device, visible_gpus
from sigeo.errors import ConfigError

FORK = multiprocessing.get_context("fork")  # children inherit the imported torch: no second 2 s import


def fake(lock_dir: Path, visible: list[str], timeout_s: float | None = None):
    """assigned_device on a pretend CUDA machine with the given GPU IDs, polling fast."""
    return assigned_device(lock_dir, timeout_s, visible=visible, cuda_available=True, env={}, poll_s=0.02)


def test_slots_fill_in_order_and_free_on_exit(tmp_path):
    locks = tmp_path / "locks"
    with fake(locks, ["5", "7"]) as first, fake(locks, ["5", "7"]) as second:
        assert (first, second) == (torch.device("cuda:0"), torch.device("cuda:1"))
        with pytest.raises(GpuSlotTimeout, match=r"\['5', '7'\].*devices.lock_timeout_s"), fake(locks, ["5", "7"], 0.1):
            pass
    with fake(locks, ["5", "7"], 0.1) as again:
        assert again == torch.device("cuda:0")
    assert sorted(p.name for p in locks.iterdir()) == ["gpu5.lock", "gpu7.lock"]
    assert locks.stat().st_mode & 0o7777 == 0o1777


def test_slot_is_freed_when_the_block_raises(tmp_path):
    with pytest.raises(KeyError), fake(tmp_path, ["0"]):
        raise KeyError("boom")
    with fake(tmp_path, ["0"], 0.1) as device:
        assert device == torch.device("cuda:0")


def test_physical_ids_name_the_locks_so_differently_restricted_runs_share_them(tmp_path):
    # One run sees GPUs 2,3 (cuda:0, cuda:1), another sees 3 only (its cuda:0): both mean card 3.
    with fake(tmp_path, ["3"]) as only:
        assert only == torch.device("cuda:0")
        with fake(tmp_path, ["3", "2"]) as other:
            assert other == torch.device("cuda:1")  # card 2, second in that run's list
    with fake(tmp_path, ["MIG-GPU-ab12/1/0"]):
        assert (tmp_path / "gpuMIG-GPU-ab12_1_0.lock").exists()


def _hold(lock_dir: Path, visible: list[str], hold_s: float, out: Path) -> None:
    with fake(lock_dir, visible, 60) as device:
        start = time.monotonic()
        time.sleep(hold_s)
        end = time.monotonic()
    out.write_text(f"{device.index} {start} {end}")


def test_racing_processes_never_share_a_gpu(tmp_path):
    n_procs, visible = 8, ["0", "1", "2"]
    procs = [
        FORK.Process(target=_hold, args=(tmp_path / "locks", visible, 0.15, tmp_path / f"p{i}.txt"), daemon=True)
        for i in range(n_procs)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    intervals: dict[int, list[tuple[float, float]]] = {}
    for i in range(n_procs):
        index, start, end = (tmp_path / f"p{i}.txt").read_text().split()
        intervals.setdefault(int(index), []).append((float(start), float(end)))
    assert set(intervals) == {0, 1, 2}
    assert sum(len(v) for v in intervals.values()) == n_procs
    for spans in intervals.values():
        spans.sort()
        assert all(prev_end <= next_start for (_, prev_end), (next_start, _) in itertools.pairwise(spans))
    # Three slots were really used at the same time (the test is not passing by running serially).
    events = sorted((t, d) for spans in intervals.values() for s, e in spans for t, d in ((s, 1), (e, -1)))
    running = [sum(d for _, d in events[: k + 1]) for k in range(len(events))]
    assert max(running) == 3


def _hold_forever(lock_dir: Path, ready) -> None:
    with fake(lock_dir, ["0"]):
        ready.set()
        time.sleep(60)


def test_lock_of_a_killed_job_is_reclaimed(tmp_path):
    ready = FORK.Event()
    holder = FORK.Process(target=_hold_forever, args=(tmp_path, ready), daemon=True)
    holder.start()
    assert ready.wait(10)
    with pytest.raises(GpuSlotTimeout), fake(tmp_path, ["0"], 0.2):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    assert holder.exitcode == -signal.SIGKILL
    assert (tmp_path / "gpu0.lock").exists()  # the stale file is still there ...
    with fake(tmp_path, ["0"], 1.0) as device:  # ... and free
        assert device == torch.device("cuda:0")


def test_no_visible_gpu_means_cpu(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sigeo.devices")
    env = {"CUDA_VISIBLE_DEVICES": ""}
    with assigned_device(tmp_path / "locks", env=env, cuda_available=True) as device:
        assert device == torch.device("cpu")
    with assigned_device(tmp_path / "locks", visible=["0"], cuda_available=False) as device:
        assert device == torch.device("cpu")
    assert caplog.text.count("no GPU visible; running on CPU") == 2
    assert not (tmp_path / "locks").exists()


def test_this_cpu_machine_runs_on_cpu(tmp_path):
    with assigned_device(tmp_path) as device:
        assert device == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def test_slurm_allocation_is_used_as_given_without_locks(tmp_path):
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "3"}
    with (
        assigned_device(tmp_path / "locks", env=env, cuda_available=True) as a,
        assigned_device(tmp_path / "locks", env=env, cuda_available=True) as b,
    ):
        assert a == b == torch.device("cuda:0")
    assert not (tmp_path / "locks").exists()
    # A Slurm job that got no GPU is treated like any other process (here: nothing visible -> CPU).
    with assigned_device(tmp_path / "locks", env={"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": ""}) as device:
        assert device == torch.device("cpu")


def test_visible_gpus_reads_cuda_visible_devices():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "5, 7,"}) == ["5", "7"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({}) == [str(i) for i in range(torch.cuda.device_count())]


def test_settings_come_from_the_schema_defaults():
    config = load_config({"datasets": {"d": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 10}}}})
    assert DeviceSettings.from_config(config) == DeviceSettings("/tmp/sigeo-gpu-locks", 86400, False, "highest")
    config["devices"]["lock_dir"] = "relative/locks"
    with pytest.raises(ConfigError, match="relative/locks"):
        load_config(config)


def test_job_device_sets_the_matmul_precision_for_the_job_only(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sigeo.devices")
    settings = DeviceSettings(str(tmp_path), 1.0, False, "medium")
    assert torch.get_float32_matmul_precision() == "highest"
    with settings.job_device() as device:
        assert torch.get_float32_matmul_precision() == "medium"
        assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch.get_float32_matmul_precision() == "highest"
    assert "float32 matrix products at precision 'medium'" in caplog.text
    with pytest.raises(RuntimeError), settings.job_device():
        raise RuntimeError("the job failed")
    assert torch.get_float32_matmul_precision() == "highest"
