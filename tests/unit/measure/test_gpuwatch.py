"""The GPUs measured and their other processes, through nvidia-ml-py's real module with a
fake device model behind it (tests/support/fake_nvml.py); NVML failing, a GPU lost."""

from __future__ import annotations

import os
import subprocess
import sys

import pynvml
import pytest

from mrv_ml.config import Settings
from mrv_ml.errors import GPULostError, GPUUnavailableError, NVMLFailedError
from mrv_ml.measure.gpu import nvml
from mrv_ml.measure.gpu import watch as gpuwatch
from mrv_ml.measure.gpu.watch import GpuWatch
from mrv_ml.measure.meter import EnergyMeter
from mrv_ml.record.schema import validate_record
from tests.support.confined import confinement_unavailable
from tests.support.fake_nvml import FakeGpu, FakeNVML
from tests.support.records import make_sample_record

UUID1 = "GPU-aaaaaaaa-0000-0000-0000-000000000001"


@pytest.fixture(autouse=True)
def on_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML's PIDs are ours to compare (the host's PID namespace), wherever the suite runs;
    the container case has its own tests below."""
    monkeypatch.setattr(gpuwatch, "pids_comparable_with_nvml", lambda: True)


def _two_gpus(monkeypatch: pytest.MonkeyPatch, **first: object) -> FakeNVML:
    return FakeNVML(monkeypatch, [FakeGpu(**first),  # type: ignore[arg-type]
                                  FakeGpu(name="NVIDIA A100-SXM4-40GB", uuid=UUID1)])


def test_names_every_device_and_sees_no_one_else(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _two_gpus(monkeypatch, compute_pids=[os.getpid()])  # ourselves: not "other"
    watch = GpuWatch(environ={})
    watch.start()
    watch.stop()
    fields = watch.to_record_fields()
    assert [d["nvml_index"] for d in fields["gpu_devices"]] == [0, 1]
    assert fields["gpu_devices"][1] == {"nvml_index": 1, "uuid": UUID1,
                                        "name": "NVIDIA A100-SXM4-40GB", "mig": None,
                                        "cuda_visible_index": None}
    assert fields["cuda_visible_devices"] is None
    assert fields["gpu_sharing"]["shared_with_other_processes"] is False
    assert fields["gpu_sharing"]["watched_whole_run"] is True
    assert fields["notes"] == []
    assert fake.inits == fake.shutdowns == 1  # NVML's init is paired with a shutdown


def test_cuda_visible_devices_picks_and_orders_the_devices(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _two_gpus(monkeypatch)
    watch = GpuWatch(environ={"CUDA_VISIBLE_DEVICES": "GPU-aaaaaaaa"})  # a UUID prefix
    watch.start()
    watch.stop()
    fields = watch.to_record_fields()
    assert fields["cuda_visible_devices"] == "GPU-aaaaaaaa"
    assert [(d["nvml_index"], d["cuda_visible_index"]) for d in fields["gpu_devices"]] == [(1, 0)]
    watch = GpuWatch(environ={"CUDA_VISIBLE_DEVICES": "1,0"})
    watch.start()
    watch.stop()
    assert [(d["nvml_index"], d["cuda_visible_index"])
            for d in watch.to_record_fields()["gpu_devices"]] == [(0, 1), (1, 0)]


def test_mig_instances_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNVML(monkeypatch, [FakeGpu(mig=["MIG-1", "MIG-2"])])
    [device] = nvml_devices()
    assert device.mig == {"enabled": True, "instances": [
        {"uuid": "MIG-1", "gpu_instance_id": 1, "compute_instance_id": 0},
        {"uuid": "MIG-2", "gpu_instance_id": 2, "compute_instance_id": 0}]}


def nvml_devices() -> list[nvml.GpuDevice]:
    with nvml.session():
        return nvml.list_devices()


def test_other_processes_are_counted_not_named(monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        fake = _two_gpus(monkeypatch, compute_pids=[os.getpid(), child.pid])
        watch = GpuWatch(environ={}, sample_every_s=0.0)
        watch.start()
        fake.gpus[1].graphics_pids = [999_991, 999_992]  # a neighbour shows up mid-run
        watch.sample()
        fake.gpus[1].graphics_pids = [999_992, 999_993]
        watch.stop()
    finally:
        child.kill()
        child.wait()
    sharing = watch.to_record_fields()["gpu_sharing"]
    # our child is ours; three other PIDs were seen over the run
    assert sharing == {"shared_with_other_processes": True, "other_process_count": 3,
                       "pids_comparable": True, "processes_seen": 5, "samples": 3,
                       "watched_whole_run": True}


def test_in_a_container_sharing_is_unknown_not_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML gives host PIDs; in a PID namespace of its own the run cannot tell its own
    process from a neighbour's, so the record claims neither."""
    _two_gpus(monkeypatch, compute_pids=[424_242])  # ours, numbered as the host numbers it
    watch = GpuWatch(environ={}, pids_comparable=False)
    watch.start()
    watch.stop()
    fields = watch.to_record_fields()
    assert fields["gpu_sharing"]["shared_with_other_processes"] is None
    assert fields["gpu_sharing"]["other_process_count"] is None
    assert fields["gpu_sharing"]["pids_comparable"] is False
    assert fields["gpu_sharing"]["processes_seen"] == 1
    assert any("cannot be told" in n and "NVML saw 1 process" in n for n in fields["notes"])
    validate_record(make_sample_record(energy_emissions={
        **make_sample_record()["energy_emissions"], **fields}))


def test_a_pid_namespace_of_its_own_is_detected(tmp_path: object) -> None:
    """For real: a child in a new PID namespace (unshare -p, as root) finds NVML's PIDs not
    comparable; this process, in the host's namespace here, finds them comparable."""
    reason = confinement_unavailable()
    if reason is not None:
        pytest.skip(reason)
    probe = ("import mrv_ml.measure.gpu.watch as g, os; "
             "print(g.pids_comparable_with_nvml(), os.readlink('/proc/self/ns/pid'))")
    host = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    inside = subprocess.run(["unshare", "-p", "-f", "--mount-proc", sys.executable, "-c",
                             probe], capture_output=True, text=True, timeout=60)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.split()[0] == "False"
    assert inside.stdout.split()[1] != gpuwatch.HOST_PID_NAMESPACE
    # the suite's own namespace decides the other half: whichever it is, it is read
    assert host.stdout.split()[0] == str(host.stdout.split()[1] == gpuwatch.HOST_PID_NAMESPACE)


def test_sampling_is_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _two_gpus(monkeypatch)
    watch = GpuWatch(environ={}, sample_every_s=3600)
    watch.start()
    calls = fake.calls
    for _ in range(100):
        watch.sample()  # CodeCarbon's thread calls it at every measurement
    assert fake.calls == calls


def test_nvml_failing_mid_run_is_a_note_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _two_gpus(monkeypatch)
    watch = GpuWatch(environ={}, sample_every_s=0.0)
    watch.start()
    fake.fail_after = fake.calls + 1  # NVMLError_Unknown from the second call on
    watch.sample()
    watch.stop()
    fields = watch.to_record_fields()
    assert len(fields["gpu_devices"]) == 2  # what was known stays
    assert fields["gpu_sharing"]["watched_whole_run"] is False
    assert any("NVML failed during the run" in n and "Unknown" in n for n in fields["notes"])


def test_a_lost_gpu_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _two_gpus(monkeypatch)
    watch = GpuWatch(environ={}, sample_every_s=0.0)
    watch.start()

    def lost(handle: object) -> list[object]:
        raise pynvml.NVMLError_GpuIsLost()

    monkeypatch.setattr(pynvml, "nvmlDeviceGetComputeRunningProcesses", lost)
    watch.sample()
    watch.stop()
    fields = watch.to_record_fields()
    assert fields["gpu_sharing"]["watched_whole_run"] is False
    assert any("was lost during the run" in n for n in fields["notes"])
    assert fake.shutdowns == 1


def test_a_gpu_gone_from_the_count_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _two_gpus(monkeypatch)
    watch = GpuWatch(environ={}, sample_every_s=0.0)
    watch.start()
    del fake.gpus[1]  # a container restart: NVML now sees one GPU
    watch.sample()
    watch.stop()
    notes = watch.to_record_fields()["notes"]
    assert len(notes) == 1 and "GPU 1" in notes[0] and "disappeared" in notes[0]


def test_nvml_errors_are_translated_by_class(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _two_gpus(monkeypatch)
    fake.fail_with = pynvml.NVMLError_GpuIsLost
    fake.fail_after = 0
    with pytest.raises(GPULostError):
        nvml.total_energy_mj(0)
    fake.fail_with = pynvml.NVMLError_Unknown
    with pytest.raises(NVMLFailedError):
        nvml.device_count()

    def no_driver() -> None:
        raise pynvml.NVMLError_DriverNotLoaded()

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    with pytest.raises(GPUUnavailableError), nvml.session():
        pass
    watch = GpuWatch(environ={})
    watch.start()  # no driver: silent, nothing to say
    watch.stop()
    assert watch.to_record_fields() == {"notes": []}


def test_the_record_names_the_gpus_and_stays_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real EnergyMeter and CodeCarbon (which finds no nvidia-smi here and so
    measures no GPU itself): the fields land in energy_emissions and validate."""
    _two_gpus(monkeypatch, compute_pids=[999_999])
    meter = EnergyMeter(Settings())
    meter.start()
    section = meter.stop().to_record_section()
    assert section["measurement_status"] == "measured"
    assert [d["uuid"] for d in section["gpu_devices"]] == [FakeGpu().uuid, UUID1]
    assert section["gpu_sharing"]["shared_with_other_processes"] is True
    assert section["gpu_sharing"]["other_process_count"] == 1
    validate_record(make_sample_record(energy_emissions=section))


def test_nvml_failing_mid_run_is_in_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _two_gpus(monkeypatch)
    meter = EnergyMeter(Settings())
    meter.start()
    assert meter._thread is not None
    meter._thread.join(60)
    fake.fail_after = fake.calls  # every NVML call fails from now on
    section = meter.stop().to_record_section()
    assert section["measurement_status"] == "measured"  # the energy figures stand
    assert section["gpu_sharing"]["watched_whole_run"] is False
    assert any("NVML failed during the run" in n for n in section["notes"])
    validate_record(make_sample_record(energy_emissions=section))
