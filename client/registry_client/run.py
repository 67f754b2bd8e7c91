"""A run being logged: params, tags, buffered metrics, datasets, artifacts and the model versions it produces."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_client import profiling, rules, transfer
from registry_client.checks import checked, checked_tags
from registry_client.errors import RegistryError
from registry_client.http import json_float
from registry_client.progress import Progress, wanted

if TYPE_CHECKING:
    from registry_client.client import Registry


# The server takes up to 100,000 points per batch; 10,000 keep each request near 1 MB.
FLUSH_POINTS = 10_000
FLUSH_SECONDS = 5.0


class Run:
    """A run on the registry. Get one from `Registry.start_run()` (a new run) or `Registry.run(id)` (an existing one).

    As a context manager it ends the run on exit: `finished`, or `failed` if the block raised (`killed` on Ctrl-C),
    after sending any metrics still buffered. Without `with`, call `end()`.
    """

    def __init__(self, registry: Registry, info: dict[str, Any]):
        self.registry = registry
        self.info = info
        self.id: str = info["id"]
        self.ended = False
        self._points: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._lock = threading.RLock()  # training loops may log from callbacks on other threads

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.info.get('experiment', '')}/{self.info.get('name', '')}>"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if self.ended:
            return False
        if exc_type is None or (exc_type is SystemExit and exc.code in (0, None)):
            try:
                self.end("finished")
            except RegistryError:
                with contextlib.suppress(RegistryError):  # the last metrics were refused: not a clean finish
                    self.end("failed")
                raise
            return False
        status = "killed" if issubclass(exc_type, KeyboardInterrupt) else "failed"
        with contextlib.suppress(RegistryError):  # the block's own exception is the one worth seeing
            self.end(status)
        return False

    # --- Params and tags --------------------------------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params now. Logging a param again with the same value is fine; a different value is an error (409)."""
        if params:
            self._batch(params={str(k): _param_value(v) for k, v in params.items()})

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set (or overwrite) tags on the run now."""
        if tags:
            self._batch(tags=checked_tags(tags))

    # --- Metrics ----------------------------------------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Buffer one metric point; NaN and the infinities are fine.

        `timestamp` is epoch milliseconds, by default the moment of this call. Points are sent in batches: when
        10,000 are waiting, when a point is logged more than a few seconds after the last send, on `flush()`
        and when the run ends.
        """
        point = {
            "key": key,
            "value": json_float(float(value)),
            "step": int(step),
            "timestamp": int(time.time() * 1000) if timestamp is None else int(timestamp),
        }
        with self._lock:
            self._points.append(point)
            if len(self._points) >= FLUSH_POINTS or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
        """Buffer several metrics of the same step."""
        stamp = int(time.time() * 1000) if timestamp is None else timestamp
        for key, value in metrics.items():
            self.log_metric(key, value, step=step, timestamp=stamp)

    def flush(self) -> None:
        """Send every buffered metric point now.

        A batch the server refuses (4xx: an invalid key, a deleted run) is dropped, since sending it again would
        fail again, and the error is raised; after a connection failure the points stay buffered for the next try.
        """
        with self._lock:
            self._last_flush = time.monotonic()
            while self._points:
                batch = self._points[:FLUSH_POINTS]
                try:
                    self._batch(metrics=batch)
                except RegistryError as exc:
                    if exc.status is not None and 400 <= exc.status < 500:
                        del self._points[: len(batch)]
                    raise
                del self._points[: len(batch)]

    def _batch(self, **payload: Any) -> dict:
        return self.registry.http.post(f"/runs/{self.id}/log-batch", payload)

    # --- Datasets ---------------------------------------------------------------------------------------------------

    def log_dataset(
        self,
        data: Any,
        name: str,
        context: str = "training",
        source_uri: str = "",
    ) -> dict:
        """Profile `data`, register it as a dataset and record it as an input of this run; return the dataset.

        `data` is a pandas DataFrame, a numpy array (2-D, or 1-D for one column) or the path of a CSV file with a
        header row (read with the csv module: pandas is not needed). Registering the same content under the same
        name again returns the existing dataset.
        """
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            described = profiling.profile_csv(path)
            source_type = "csv"
            source_uri = source_uri or path.resolve().as_uri()
        elif hasattr(data, "columns") and hasattr(data, "dtypes"):
            described = profiling.profile_dataframe(data)
            source_type = "pandas"
        elif hasattr(data, "shape") and hasattr(data, "tolist"):
            described = profiling.profile_array(data)
            source_type = "numpy"
        else:
            raise TypeError(
                f"log_dataset takes a pandas DataFrame, a numpy array or a CSV path, not {type(data).__name__}."
            )
        dataset = self.registry.http.post(
            "/datasets",
            {
                "name": name,
                "digest": described.digest,
                "source_uri": source_uri,
                "source_type": source_type,
                "schema": described.schema,
                "profile": described.profile,
            },
        )
        self.registry.http.post(f"/runs/{self.id}/inputs", {"dataset_id": dataset["id"], "context": context})
        return dataset

    # --- Artifacts and models ---------------------------------------------------------------------------------------

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None, *, progress: bool | None = None
    ) -> list[dict]:
        """Upload a file, or a directory recursively, to the run; return the stored artifacts.

        A file goes into the folder `artifact_path` (the run's root by default). A directory's files keep their
        paths relative to it under `artifact_path`, which defaults to the directory's own name. Files are streamed
        and each one's sha256 is checked against the server's. A progress bar is drawn on stderr when it is a
        terminal, or always with `progress=True`.
        """
        pairs = transfer.local_files(Path(local_path), artifact_path)
        for _, remote in pairs:  # every path before any byte is sent: a folder goes up whole or not at all
            checked(rules.check_artifact_path, remote)
        total = sum(local.stat().st_size for local, _ in pairs)
        enabled = wanted(self.registry.progress if progress is None else progress)
        stored = []
        with Progress(total, f"Uploading {Path(local_path).name}", enabled=enabled) as bar:
            for local, remote in pairs:
                threshold = self.registry.multipart_threshold
                if threshold is not None and local.stat().st_size >= threshold:
                    stored.append(transfer.upload_file_in_parts(self.registry.http, self.id, local, remote, bar))
                else:
                    stored.append(transfer.upload_file(self.registry.http, self.id, local, remote, bar))
        return stored

    def register_model(
        self,
        name: str,
        artifact_path: str = "model",
        description: str = "",
        tags: Mapping[str, str] | None = None,
        signature: Any = None,
        input_example: Any = None,
    ) -> dict:
        """Make the run's files under `artifact_path` a new version of model `name` (created if missing).

        `signature`: a dict, or a pandas DataFrame / numpy array (or an `(input, output)` pair) to infer the input
        and output columns from (see registry_client.signature); `input_example` overrides the example kept.

        Returns the version, e.g. `{"model": "iris", "version": 3, "stage": "None", "artifacts": [...], ...}`.
        """
        self.flush()  # the version shows the run's latest metrics
        return self.registry.register_model(
            name,
            run_id=self.id,
            artifact_path=artifact_path,
            description=description,
            tags=tags,
            signature=signature,
            input_example=input_example,
        )

    # --- Ending -----------------------------------------------------------------------------------------------------

    def end(self, status: str = "finished") -> dict:
        """Send buffered metrics, then set the run's status (finished, failed or killed) and end time."""
        try:
            self.flush()
        except RegistryError:
            if status == "finished":
                raise
            # A failing run still gets its status even if its last metrics were refused.
        self.info = self.registry.http.patch(
            f"/runs/{self.id}", {"status": status, "end_time": datetime.now(UTC).isoformat()}
        )
        self.ended = True
        return self.info


def _param_value(value: Any) -> str:
    """Params are strings on the server; numpy scalars are written as the Python number they hold."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    return str(value)
