"""gunicorn settings shared by `make run`, the Docker image and the benchmarks: gunicorn reads this file from the
working directory, and command-line options override it."""

import os

# Each worker touches its heartbeat file on every loop; on a disk-backed /tmp that is a filesystem write per request
# (about 6% of a registration's server time when profiled). A tmpfs makes it a memory write.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# The longest request line taken, in bytes. Past gunicorn's default (4094) it answers 414 with an HTML page before
# Django sees the request; at 8190 (its largest, and nginx's default header buffer) a long query string reaches the
# API, which answers it with its own JSON error (a schemathesis run found a 4,150-byte one).
limit_request_line = 8190


def post_worker_init(worker):
    """Move everything the app allocated while loading (Django, the models, the URL patterns...) out of the garbage
    collector's sight: later collections then scan only what requests allocate. Then start copying SQLite's WAL
    into the database file from a thread of this worker rather than from requests (see registry.checkpoints)."""
    import gc

    gc.freeze()

    from registry import checkpoints

    checkpoints.start()


def fresh_metrics_folder() -> None:
    """In Prometheus multiprocess mode the workers keep their counts in files under PROMETHEUS_MULTIPROC_DIR; files
    left by a previous run of this server would be added to this one's, so the folder starts empty. Done as gunicorn
    reads this file, before --preload imports the app (which opens its first file there)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))


fresh_metrics_folder()


def child_exit(server, worker):
    """A worker that exits leaves its counters summed but its gauges are dropped (prometheus_client's rule)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
