"""The registry API's bodies as the OpenAPI document states them (pydantic models).

The service builds its answers as plain dictionaries (the proof is the sidecar's own
``to_dict()``, byte for byte what a client saves); these models only *describe* them, so
clients, ``/docs`` and the schema-driven fuzzing tests know each field's type. A test
checks every answer against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mrv_ml.registry_service.inputs import ADDRESS, FINGERPRINT, MRV_ID, SIGNATURE


class SubmissionRequest(BaseModel):
    """A submission (the body is read strictly by the service: unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str = Field(pattern=FINGERPRINT,
                             description="SHA-256 (hex, 64 lowercase digits) of the record's "
                                         "RFC 8785 form: `mrv hash FILE`")
    mrv_id: str = Field(pattern=MRV_ID, description="The record's ID, "
                                                                    "MRV-<uuid4>")
    signer: str | None = Field(None, pattern=ADDRESS,
                               description="The researcher's address (with signature)")
    signature: str | None = Field(None, pattern=SIGNATURE,
                                  description="EIP-191 signature over the message of "
                                              "mrv_ml.chain.signing")
    record: dict[str, Any] | None = Field(None, description="The record itself, to publish "
                                                            "it (searchable, served as is)")


class ProofDocument(BaseModel):
    """A submission's state and its proof sidecar (``.proof.json``), as ``mrv anchor
    --upgrade`` saves it."""

    model_config = ConfigDict(extra="allow")  # record_published / note after a conflict

    status: Literal["pending", "anchored"]
    proof: dict[str, Any] = Field(description="The proof sidecar (proof_version 1.0)")


class RecordLinks(BaseModel):
    record: str
    proof: str


class RecordSummary(BaseModel):
    mrv_id: str
    fingerprint: str = Field(pattern=FINGERPRINT)
    experiment: str
    model_name: str | None
    tags: dict[str, str]
    signer: str | None
    started_at: str | None
    energy_kwh: float | None
    co2_kg: float | None
    published_at: str
    links: RecordLinks


class RecordsPage(BaseModel):
    records: list[RecordSummary]
    next: str | None = Field(description="The cursor of the next page (`after=`), or null")


class ExploreRow(BaseModel):
    mrv_id: str
    fingerprint: str = Field(pattern=FINGERPRINT)
    experiment: str
    model_name: str | None
    dataset_name: str | None
    status: str | None
    start_time: str | None
    duration_s: float | None
    energy_kwh: float | None
    co2_kg: float | None
    tags: dict[str, str]
    signer: str | None
    anchor_state: str
    trust: str


class ExploreTotals(BaseModel):
    count: int
    measured: int
    not_measured: int
    energy_kwh: float
    co2_kg: float
    duration_s: float


class ExplorePage(BaseModel):
    rows: list[ExploreRow]
    totals: ExploreTotals
    count: int
    source: Literal["registry"]
    trust: str


class ServiceInfo(BaseModel):
    service: Literal["mrv-ml registry"]
    version: str
    url: str
    network: str
    chain_id: int
    contract_address: str
    operator: str
    registry_block: int | None
    interval_s: float
    requires_token: bool
    max_record_bytes: int


class Health(BaseModel):
    status: Literal["ok", "ready"]
