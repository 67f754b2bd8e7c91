"""gunicorn settings shared by `make run`, the Docker image and the benchmarks: gunicorn reads this file from the
working directory, and command-line options override it."""

import os

# Each worker touches its heartbeat file on every loop; on a disk-backed /tmp that is a filesystem write per request
# (about 6% of a registration's server time when profiled). A tmpfs makes it a memory write.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def post_worker_init(worker):
    """Move everything the app allocated while loading (Django, the models, the URL patterns...) out of the garbage
    collector's sight: later collections then scan only what requests allocate. Then start copying SQLite's WAL
    into the database file from a thread of this worker rather than from requests (see registry.checkpoints)."""
    import gc

    gc.freeze()

    from registry import checkpoints

    checkpoints.start()
