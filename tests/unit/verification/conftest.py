"""Fixtures of the verification tests: two real timestamp authorities (tests/support/tsa.py)
with unrelated roots, ``authorities`` = (ours, other), one pair per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tsa import LocalTSA


@pytest.fixture(scope="module")
def authorities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalTSA,
                                                                              LocalTSA]]:
    base = tmp_path_factory.mktemp("tsa")
    with LocalTSA(base / "ours") as ours, LocalTSA(base / "other", "other TSA") as other:
        yield ours, other
