"""Group commit: the submissions that arrive together are written in one transaction.

Each HTTP request's thread hands its submission to :class:`SubmissionWriter` and waits;
one writer thread takes everything queued (up to :data:`MAX_GROUP`) and writes it with
:meth:`RegistryDB.submit_many`: one commit, one fsync, for the whole group. Under load the
groups grow by themselves (requests queue while the previous commit runs); alone, a
request is written at once, with no added wait. A submission is answered only once its
transaction committed, so an accepted one is never lost.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any

from mrv_ml.errors import RegistryUnavailableError
from mrv_ml.registry_service.db import RegistryDB, SubmitResult

MAX_GROUP = 256  # submissions per transaction: bounds a transaction's size and latency
ANSWER_TIMEOUT_S = 60.0


class SubmissionWriter:
    """The one thread that writes submissions, in groups."""

    def __init__(self, db: RegistryDB) -> None:
        self.db = db
        self._queue: queue.Queue[tuple[dict[str, Any], Future[SubmitResult]] | None] = \
            queue.Queue()
        self._thread = threading.Thread(target=self._run, name="mrv-registry-writer",
                                        daemon=True)
        self._thread.start()

    def submit(self, **kwargs: Any) -> SubmitResult:
        """:meth:`RegistryDB.submit`, written with whatever else arrives meanwhile."""
        if not self._thread.is_alive():
            raise RegistryUnavailableError("the registry is shutting down")
        future: Future[SubmitResult] = Future()
        self._queue.put((kwargs, future))
        return future.result(timeout=ANSWER_TIMEOUT_S)

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=ANSWER_TIMEOUT_S)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[tuple[dict[str, Any], Future[SubmitResult]]]) -> None:
        try:
            results = self.db.submit_many([kwargs for kwargs, _ in group])
        except BaseException as e:  # noqa: BLE001 - every waiting request gets the error
            for _, future in group:
                future.set_exception(e)
            return
        for (_, future), result in zip(group, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
