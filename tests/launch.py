"""Run a command under ``torchrun`` with two CPU processes, as the DDP tests need."""

from __future__ import annotations

import os
import subprocess
import sys


def torchrun(*args: str, timeout: float = 300) -> None:
    """``torchrun --standalone --nproc_per_node 2 ARGS``; on failure, fail with the workers' output.

    The output is captured so that a passing run stays quiet; its tail goes into the failure
    message, or a worker's error would be invisible in CI.
    """
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
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
