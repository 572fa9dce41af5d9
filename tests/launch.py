"""Run a command under ``torchrun`` with CPU processes of one thread each, as the DDP tests need."""

from __future__ import annotations

import os
import subprocess
import sys


def torchrun(*args: str, nproc: int = 2, timeout: float = 300) -> None:
    """``torchrun --standalone --nproc_per_node NPROC ARGS``; on failure, fail with the workers'
    output.

    Every worker runs one thread (torchrun's own default), so runs with different process counts
    use the same kernels with the same threading and can be compared exactly.
    The output is captured so that a passing run stays quiet; its tail goes into the failure
    message, or a worker's error would be invisible in CI.
    """
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        *args,
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if result.returncode != 0:
        raise AssertionError(
            f"torchrun exited with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-12000:]}"
        )
