"""The shapes of the product's data, for readers and type checkers: the MRV record's
sections as TypedDicts, and the strings that mean one thing as NewTypes.

The JSON Schema (``schema/mrv-record-1.1.schema.json``) is what validates a record; these
types say what code may expect of one that passed (``total=False``: a section the schema
allows to lack a field). Like web3.py's ``types.py``: nothing here runs any logic.
"""

from __future__ import annotations

from typing import Any, Literal, NewType, TypedDict

__all__ = ["Address", "DistributedSection", "EnergySection", "ExperimentSection",
           "Fingerprint", "HardwareSection", "MRVRecord", "MrvId", "OutcomeSection",
           "SoftwareSection", "SourceSection", "TimestampsSection", "TrainingSection",
           "TxHash"]

#: A record's ID: a UUID4 string, the key it is stored and anchored under.
MrvId = NewType("MrvId", str)
#: A record's fingerprint: SHA-256 of its RFC 8785 canonical JSON, 64 lowercase hex.
Fingerprint = NewType("Fingerprint", str)
#: An EVM address, EIP-55 checksummed (0x + 40 hex).
Address = NewType("Address", str)
#: A transaction hash, 0x + 64 hex.
TxHash = NewType("TxHash", str)

OutcomeStatus = Literal["completed", "failed", "interrupted"]


class _ExperimentRequired(TypedDict):
    name: str
    model_name: str
    dataset_name: str


class ExperimentSection(_ExperimentRequired, total=False):
    framework: str | None
    description: str | None
    tags: dict[str, Any]


class TrainingSection(TypedDict, total=False):
    epochs: int | None
    batch_size: int | None
    command: list[str] | str | None
    details: dict[str, Any]


class _OutcomeRequired(TypedDict):
    status: OutcomeStatus


class OutcomeSection(_OutcomeRequired, total=False):
    error_type: str | None
    error_message: str | None
    exit_code: int | None
    stopped_by: Literal["budget"] | None


class HardwareSection(TypedDict, total=False):
    cpu_model: str | None
    cpu_physical_cores: int | None
    cpu_logical_cores: int | None
    ram_gb: float | None
    gpu_count: int
    gpus: list[dict[str, Any]]
    os: str | None
    machine: str | None


class EnergySection(TypedDict, total=False):
    """``energy_emissions``: what was measured, how, and how sure it is."""

    measurement_tool: str
    measurement_tool_version: str | None
    measurement_status: str
    measurement_error: str | None
    energy_kwh: float | None
    cpu_energy_kwh: float | None
    gpu_energy_kwh: float | None
    ram_energy_kwh: float | None
    co2_kg: float | None
    duration_seconds: float | None
    carbon_intensity_g_per_kwh: float | None
    pue: float | None
    country_iso_code: str | None
    region: str | None
    location_source: str | None
    methods: dict[str, Any]
    tracking_mode: str | None
    tracking_scope: dict[str, Any]
    gpu_devices: list[dict[str, Any]]
    cuda_visible_devices: str | None
    gpu_sharing: dict[str, Any]
    gpu_sync: str | None
    intervals: list[dict[str, Any]]
    power_series: dict[str, Any] | None
    forecast: dict[str, Any] | None


class _SoftwareRequired(TypedDict):
    python: str
    mrv_ml: str


class SoftwareSection(_SoftwareRequired, total=False):
    codecarbon: str | None
    frameworks: dict[str, Any]
    os: str | None


class SourceSection(TypedDict, total=False):
    git_commit: str | None
    git_dirty: bool | None


class DistributedSection(TypedDict, total=False):
    world_size: int
    backend: str | None
    ranks: list[dict[str, Any]]
    missing_ranks: list[int]


class TimestampsSection(TypedDict):
    start_time: str
    end_time: str


class _RecordRequired(TypedDict):
    schema_version: str
    mrv_id: MrvId
    experiment: ExperimentSection
    training: TrainingSection
    outcome: OutcomeSection
    hardware: HardwareSection
    energy_emissions: EnergySection
    software: SoftwareSection
    source: SourceSection | None
    distributed: DistributedSection | None
    timestamps: TimestampsSection


class MRVRecord(_RecordRequired, total=False):
    """A whole MRV record (schema 1.1); ``provenance`` only on imported records, ``budget``
    only on runs that had one."""

    provenance: dict[str, Any]
    budget: dict[str, Any]
