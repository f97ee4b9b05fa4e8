"""Read what W&B's offline mode wrote: the records of a run's ``run-<id>.wandb`` file.

wandb (0.19 on) no longer ships a Python reader: its Go core writes the file, ``wandb sync``
reads it. The format is LevelDB's log (32 KiB blocks of records with a 7-byte header:
CRC, little-endian length, type FULL/FIRST/MIDDLE/LAST) behind a 7-byte file header
(``:W&B``, magic 0xBEE1, version 0); each record is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_FILE_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _chunks(data: bytes) -> Iterator[bytes]:
    """The payloads of the log's records, chunks joined."""
    if not data.startswith(_FILE_HEADER):
        raise ValueError("not a W&B transaction log")
    pos, pending = len(_FILE_HEADER), b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # the rest of a block too short for a header: padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if pos + 7 + length > len(data):
            return  # a record still being written
        payload = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:  # zero padding at the end of a block
            continue
        if kind == _FULL:
            yield payload
        elif kind == _FIRST:
            pending = payload
        elif kind == _MIDDLE:
            pending += payload
        elif kind == _LAST:
            yield pending + payload
        else:
            raise ValueError(f"record type {kind} at byte {pos}")


def records(run_dir: Path, timeout_s: float = 30.0) -> list[Any]:
    """The run's records (``Record`` messages), in order, once the log is complete.

    ``run.finish()`` returns before wandb-core's writer has flushed the log (seen here: one
    run in a dozen read short, the artifact and summary records missing), so this reads
    again until the run's last record, ``exit``, is there."""
    from wandb.proto import wandb_internal_pb2 as pb

    deadline = time.monotonic() + timeout_s
    while True:
        out = []
        for log_file in Path(run_dir).glob("run-*.wandb"):
            for chunk in _chunks(log_file.read_bytes()):
                record = pb.Record()
                record.ParseFromString(chunk)
                out.append(record)
        if (out and out[-1].WhichOneof("record_type") == "exit") \
                or time.monotonic() > deadline:
            return out
        time.sleep(0.05)
