"""Large artifact transfers that skip the app server: a multipart upload straight to the bucket (presigned part URLs,
completed through the API) and a download through the presigned redirect, against gunicorn with artifacts on S3.

    .venv/bin/python benchmarks/transfers.py [--megabytes 2048] [--part-megabytes 64] [--proxied]

S3 is `moto_server` on loopback (started here, as the tests do), so the bucket's own speed bounds the figures; what
this shows is the app server's part: its memory stays flat whatever the size (the bytes never pass through it on the
way in or out; completing an upload streams the assembled object back once to hash it, 1 MB at a time). With
`--proxied`, the same file is then streamed through the app server both ways, as without direct transfers. The file
is generated on the fly (one random MiB repeated), never written to disk. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import requests
from registry_client.http import Http

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import VENV_BIN, free_port, registry_server, rss_kib  # noqa: E402

MiB = 1024 * 1024
CHUNK = os.urandom(MiB)
OCTETS = {"Content-Type": "application/octet-stream"}


def line(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"{name:<58} {value:>12,.1f} {unit:<8} {target}")


class Generated:
    """`size` bytes of CHUNK repeated, as a request body read in blocks (requests sends Content-Length from len)."""

    def __init__(self, size: int, digest=None):
        self.left = size
        self.size = size
        self.digest = digest

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        piece = CHUNK[: min(MiB, self.left)]
        self.left -= len(piece)
        if self.digest is not None:
            self.digest.update(piece)
        return piece


class PeakRss:
    """Samples the resident memory of gunicorn (master and workers) every 20 ms while in use."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss_kib(self.pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.before) / 1024


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    executable = shutil.which("moto_server", path=str(VENV_BIN)) or "moto_server"
    proc = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def small_round_trip(api: Http, run_id: str, path: str) -> None:
    upload = api.post(f"/runs/{run_id}/multipart-uploads", {"path": path, "size": 6})
    answer = requests.put(upload["parts"][0]["url"], data=b"warmup", timeout=60)
    parts = [{"part_number": 1, "etag": answer.headers["ETag"]}]
    api.post(
        f"/runs/{run_id}/multipart-uploads/complete", {"path": path, "upload_id": upload["upload_id"], "parts": parts}
    )
    api.session.get(f"{api.api}/runs/{run_id}/artifacts/{path}", allow_redirects=False, timeout=60)


def bench(url: str, token: str, pid: int, size: int, part_size: int) -> None:
    api = Http(url, token, timeout=1800, retries=0)
    run_id = api.post("/runs", {"experiment": "transfers", "name": "big"})["id"]
    megabytes = size / MiB
    # Every worker thread loads boto3 and opens its S3 connection on first use (tens of MB, once): warm them, so
    # the figures below show what a transfer costs.
    for index in range(16):
        small_round_trip(api, run_id, f"warmup/{index}.bin")

    with PeakRss(pid) as upload_rss:
        start = time.perf_counter()
        plan = {"path": "big.bin", "size": size, "part_size": part_size}
        upload = api.post(f"/runs/{run_id}/multipart-uploads", plan)
        digest = hashlib.sha256()
        parts = []
        bucket = requests.Session()
        for part in upload["parts"]:
            length = min(upload["part_size"], size - (part["part_number"] - 1) * upload["part_size"])
            answer = bucket.put(part["url"], data=Generated(length, digest), timeout=600)
            answer.raise_for_status()
            parts.append({"part_number": part["part_number"], "etag": answer.headers["ETag"]})
        parts_done = time.perf_counter()
        stored = api.post(
            f"/runs/{run_id}/multipart-uploads/complete",
            {"path": "big.bin", "upload_id": upload["upload_id"], "parts": parts, "sha256": digest.hexdigest()},
        )
        done = time.perf_counter()
    assert stored["sha256"] == digest.hexdigest() and stored["size"] == size

    with PeakRss(pid) as download_rss:
        start_down = time.perf_counter()
        received, check = 0, hashlib.sha256()
        redirect = api.session.get(f"{api.api}/runs/{run_id}/artifacts/big.bin", allow_redirects=False, timeout=60)
        assert redirect.status_code == 302, redirect.status_code
        with requests.get(redirect.headers["Location"], stream=True, timeout=600) as answer:
            answer.raise_for_status()
            for piece in answer.iter_content(MiB):
                received += len(piece)
                check.update(piece)
        down = time.perf_counter() - start_down
    assert received == size and check.hexdigest() == digest.hexdigest()

    print(f"{megabytes:,.0f} MB in {len(parts)} parts of {upload['part_size'] // MiB} MB")
    line("upload: parts PUT straight to the bucket", megabytes / (parts_done - start), "MB/s")
    line("upload: complete (assemble, read back, hash, record)", done - parts_done, "s")
    line("  of which the server's read-back and hash", megabytes / (done - parts_done), "MB/s", "(upper bound)")
    line("upload, end to end", megabytes / (done - start), "MB/s")
    line("download through the presigned redirect", megabytes / down, "MB/s")
    line("server memory growth during the upload", upload_rss.growth_mb, "MB", "<= 64 MB")
    line("server memory growth during the download", download_rss.growth_mb, "MB", "<= 64 MB")


def bench_proxied(url: str, token: str, pid: int, size: int) -> None:
    """The same file streamed through the app server both ways (direct transfers off), for comparison."""
    api = Http(url, token, timeout=1800, retries=0)
    run_id = api.post("/runs", {"experiment": "transfers", "name": "proxied"})["id"]
    megabytes = size / MiB
    # As above, every worker thread sets up its own S3 connection and transfer pool on first use: warm them all
    # with uploads large enough to go to S3 in parts.
    for index in range(12):
        warm = f"/runs/{run_id}/artifacts/warmup/{index}.bin"
        api.request("PUT", warm, headers=OCTETS, body=lambda: Generated(20 * MiB))
        api.request("GET", warm).close()
    digest = hashlib.sha256()
    with PeakRss(pid) as upload_rss:
        start = time.perf_counter()
        stored = api.request(
            "PUT", f"/runs/{run_id}/artifacts/big.bin", headers=OCTETS, body=lambda: Generated(size, digest)
        ).json()
        up = time.perf_counter() - start
    assert stored["sha256"] == digest.hexdigest()
    with PeakRss(pid) as download_rss:
        start = time.perf_counter()
        received = 0
        with api.request("GET", f"/runs/{run_id}/artifacts/big.bin", stream=True) as answer:
            for piece in answer.iter_content(MiB):
                received += len(piece)
        down = time.perf_counter() - start
    assert received == size
    print(f"{megabytes:,.0f} MB streamed through the app server (direct transfers off)")
    line("upload through the app server", megabytes / up, "MB/s")
    line("download through the app server", megabytes / down, "MB/s")
    line("server memory growth during the upload", upload_rss.growth_mb, "MB", "<= 64 MB")
    line("server memory growth during the download", download_rss.growth_mb, "MB", "<= 64 MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=2048, help="size of the file (default 2048)")
    parser.add_argument("--part-megabytes", type=int, default=64, help="part size (default 64)")
    parser.add_argument("--proxied", action="store_true", help="also stream the file through the app server")
    args = parser.parse_args()
    moto, endpoint = start_moto()
    try:
        bucket = "bench-artifacts"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=bucket)
        os.environ.update(
            {
                "ARTIFACTS_S3_BUCKET": bucket,
                "AWS_S3_ENDPOINT_URL": endpoint,
                "AWS_S3_REGION_NAME": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "ARTIFACTS_S3_PRESIGNED_DOWNLOADS": "true",
                "ARTIFACTS_S3_MULTIPART_UPLOADS": "true",
                "ARTIFACT_MAX_UPLOAD_BYTES": str(64 * 1024**3),
            }
        )
        with registry_server() as (url, token, _env, pid):
            print(f"server: gunicorn, 2 workers x 4 threads, SQLite; S3: moto_server at {endpoint}")
            bench(url, token, pid, args.megabytes * MiB, args.part_megabytes * MiB)
        if args.proxied:
            os.environ["ARTIFACTS_S3_PRESIGNED_DOWNLOADS"] = os.environ["ARTIFACTS_S3_MULTIPART_UPLOADS"] = "false"
            with registry_server() as (url, token, _env, pid):
                bench_proxied(url, token, pid, args.megabytes * MiB)
    finally:
        moto.terminate()
        moto.wait(timeout=30)


if __name__ == "__main__":
    main()
