"""GPU slot assignment with fake device lists: slot logic, processes racing for slots, SLURM, CPU."""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from sigeo.config import load_config, load_settings
from sigeo.devices import (
    DeviceFailure,
    DeviceSettings,
    GpuSlotTimeout,
    assigned_device,
    deterministic_algorithms,
    visible_gpus,
)
from sigeo.errors import ConfigError

FORK = multiprocessing.get_context("fork")  # children inherit the imported torch: no second 2 s import


def fake(lock_dir: Path, visible: list[str], timeout_s: float | None = None, jobs_per_gpu: int = 1):
    """assigned_device on a pretend CUDA machine with the given GPU IDs, polling fast."""
    return assigned_device(
        lock_dir, timeout_s, visible=visible, cuda_available=True, env={}, poll_s=0.02, jobs_per_gpu=jobs_per_gpu
    )


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


def test_a_slurm_job_given_one_gpu_uses_it_without_locks(tmp_path):
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


def test_jobs_inside_a_slurm_allocation_of_several_gpus_take_slots_of_that_allocation(tmp_path):
    """``sbatch --gpus=2 snakemake --profile profiles/local``: the jobs spread over both GPUs (not all on
    cuda:0), locking in a folder of their allocation, since another allocation numbers its cards alike."""
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "0,1"}
    other = {"SLURM_JOB_ID": "43", "CUDA_VISIBLE_DEVICES": "0,1"}

    def slot(env, timeout_s=None):
        return assigned_device(tmp_path, timeout_s, env=env, cuda_available=True, poll_s=0.02)

    with slot(env) as a, slot(env) as b, slot(other) as c:
        assert (a, b, c) == (torch.device("cuda:0"), torch.device("cuda:1"), torch.device("cuda:0"))
        with pytest.raises(GpuSlotTimeout, match="slurm-42"), slot(env, 0.1):
            pass
    assert sorted(p.name for p in (tmp_path / "slurm-42").iterdir()) == ["gpu0.lock", "gpu1.lock"]
    assert (tmp_path / "slurm-43" / "gpu0.lock").exists()
    assert (tmp_path / "slurm-42").stat().st_mode & 0o7777 == 0o1777


@pytest.fixture
def fake_gpus(monkeypatch):
    """A pretend machine with CUDA and GPUs 4 and 6 visible; records the devices made current."""
    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return current


def test_job_device_makes_its_gpu_the_current_device(tmp_path, fake_gpus):
    settings = DeviceSettings(str(tmp_path), 1.0, False, "highest", False, 1)
    with settings.job_device() as first, settings.job_device() as second:
        assert (first, second) == (torch.device("cuda:0"), torch.device("cuda:1"))
    assert fake_gpus == [torch.device("cuda:0"), torch.device("cuda:1")]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 1 has a total capacity\nof"),
         "the job failed on cuda:0 (Fake GPU): out of memory: CUDA out of memory. Tried to allocate 20.00 GiB. GPU 1 "
         "has a total capacity (give the job more memory, smaller batches, or fewer jobs per GPU)"),
        (RuntimeError("CUDA error: device-side assert triggered\nCompile with TORCH_USE_CUDA_DSA"),
         "the job failed on cuda:0 (Fake GPU): device error: CUDA error: device-side assert triggered (the device is "
         "unusable for the rest of this process; rerun the job (it resumes))"),
    ],
)  # fmt: skip
def test_a_device_failure_in_a_job_is_one_line_naming_the_device(tmp_path, fake_gpus, error, expected):
    settings = DeviceSettings(str(tmp_path), 1.0, False, "highest", False, 1)
    with pytest.raises(DeviceFailure) as failure, settings.job_device():
        raise error
    assert str(failure.value) == expected
    with pytest.raises(RuntimeError, match="shapes"), settings.job_device():
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")  # not a device failure: unchanged


def test_deterministic_setting_turns_on_deterministic_kernels_and_the_cublas_workspace(tmp_path, monkeypatch):
    env = {}
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms(True, env):
        assert torch.are_deterministic_algorithms_enabled()
        assert env == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    assert not torch.are_deterministic_algorithms_enabled()
    kept = {"CUBLAS_WORKSPACE_CONFIG": ":16:8"}  # the other deterministic setting, chosen by the user
    with deterministic_algorithms(True, kept):
        assert kept == {"CUBLAS_WORKSPACE_CONFIG": ":16:8"}
    with deterministic_algorithms(False, env := {}):
        assert not torch.are_deterministic_algorithms_enabled() and env == {}
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with DeviceSettings(str(tmp_path), 1.0, False, "highest", deterministic=True, jobs_per_gpu=1).job_device():
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert not torch.are_deterministic_algorithms_enabled()


def test_visible_gpus_reads_cuda_visible_devices():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "5, 7,"}) == ["5", "7"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({}) == [str(i) for i in range(torch.cuda.device_count())]


def test_settings_come_from_the_schema_defaults():
    config = load_config({"datasets": {"d": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 10}}}})
    devices = load_settings(config).datasets["d"].devices
    assert devices == DeviceSettings("/tmp/sigeo-gpu-locks", 86400, False, "highest", False, 1)
    assert config["devices"]["conda_env_gpu"] == "envs/cpu.yaml"  # a rule's setting, not the job's
    config["devices"]["lock_dir"] = "relative/locks"
    with pytest.raises(ConfigError, match="relative/locks"):
        load_config(config)


def test_job_device_sets_the_matmul_precision_for_the_job_only(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sigeo.devices")
    settings = DeviceSettings(str(tmp_path), 1.0, False, "medium", False, 1)
    assert torch.get_float32_matmul_precision() == "highest"
    with settings.job_device() as device:
        assert torch.get_float32_matmul_precision() == "medium"
        assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch.get_float32_matmul_precision() == "highest"
    assert "float32 matrix products at precision 'medium'" in caplog.text
    with pytest.raises(RuntimeError), settings.job_device():
        raise RuntimeError("the job failed")
    assert torch.get_float32_matmul_precision() == "highest"


def test_jobs_per_gpu_gives_each_card_k_slots_filled_across_cards_first(tmp_path, monkeypatch):
    """Two cards seen by torch (no CUDA_VISIBLE_DEVICES), 2 jobs per card: 4 jobs run, spread 0, 1, 0, 1."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)  # no real card to make current
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    settings = DeviceSettings(str(tmp_path), 0.1, False, "highest", deterministic=False, jobs_per_gpu=2)
    with contextlib.ExitStack() as held:
        devices = [held.enter_context(settings.job_device()) for _ in range(4)]
        assert [d.index for d in devices] == [0, 1, 0, 1]
        with pytest.raises(GpuSlotTimeout), settings.job_device():
            pass
        with pytest.raises(GpuSlotTimeout), fake(tmp_path, ["0", "1"], 0.1):  # one job per card: excluded too
            pass
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["gpu0.lock", "gpu0.slot1.lock", "gpu1.lock", "gpu1.slot1.lock"]


def test_a_second_slot_frees_for_the_next_job(tmp_path):
    locks = tmp_path / "locks"
    with fake(locks, ["0"]) as first:
        with fake(locks, ["0"], 0.1, jobs_per_gpu=2) as two:
            assert first == two == torch.device("cuda:0")
        with fake(locks, ["0"], 0.1, jobs_per_gpu=2) as again:
            assert again == torch.device("cuda:0")
        with pytest.raises(GpuSlotTimeout), fake(locks, ["0"], 0.1):
            pass
