"""Peak memory of a training run: the trainer and each of its data-loader workers.

    .venv/bin/python scripts/train_memory.py [--config configs/default/stage1.yaml] [--steps 30]

Trains on the recipe for ``--steps`` steps into a temporary folder, in ``--chunks`` calls of
``Trainer.run`` as ``scripts/campaign.py`` makes between its evaluations (each call starts new
data-loader workers), and samples the process tree every ``--interval`` seconds. Two measures
per process, both from ``/proc``:

* RSS, the resident pages, which counts pages that a forked worker still shares with the
  trainer in *both* processes (so summing RSS over-counts);
* PSS, the proportional set size: each shared page divided among the processes that share it,
  so the PSS of the tree adds up to the memory the run really holds.

Prints the peak of each process and the peak of the tree's PSS sum, and writes them as JSON
(``--out``). The README's "how much memory training needs" comes from this script.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_kib(path: Path, field: str) -> int | None:
    """The ``field:`` line of a /proc file in KiB, or None when the process is gone."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def role(pid: int, parent: int, roles: dict[int, str]) -> str:
    """What a process of the tree is: a loader worker (forked from the trainer or from the fork
    server, whose command line it then shows) or one of multiprocessing's helpers."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        command = ""
    if roles.get(parent) == "trainer":
        for helper in ("forkserver", "resource_tracker"):
            if helper in command:
                return helper.replace("_", " ")
    return f"worker {sum(r.startswith('worker') for r in roles.values()) + 1}"


def sample(root: int) -> dict[int, tuple[int, int, int]]:
    """Parent pid, PSS and RSS (KiB) of ``root`` and all its descendants."""
    out, todo = {}, [(root, 0)]
    while todo:
        pid, parent = todo.pop()
        pss = read_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss")
        rss = read_kib(Path(f"/proc/{pid}/status"), "VmRSS")
        if pss is not None and rss is not None:
            out[pid] = (parent, pss, rss)
        todo.extend((child, pid) for child in children(pid))
    return out


def train(config_path: Path, out_dir: str, steps: int, chunks: int, overrides: list[str]) -> None:
    """The measured process: train ``steps`` steps in ``chunks`` calls of ``Trainer.run``."""
    from mobilevos.train import Trainer, load_train_config

    config = load_train_config(
        config_path,
        [f"steps={steps}", f"out_dir={out_dir}", "checkpoint_every=100000", *overrides],
    )
    trainer = Trainer(config)
    for chunk in range(1, chunks + 1):
        trainer.run(stop_at=steps * chunk // chunks)


def main() -> None:
    if sys.argv[1:2] == ["--train"]:  # the measured child process
        config, out_dir, steps, chunks, *overrides = sys.argv[2:]
        train(Path(config), out_dir, int(steps), int(chunks), overrides)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/default/stage1.yaml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--chunks", type=int, default=2, help="Trainer.run calls")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--out", type=Path, help="write the peaks here as JSON")
    parser.add_argument("overrides", nargs="*", help="more key=value overrides of the recipe")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, __file__, "--train", str(args.config), f"{tmp}/run",
            str(args.steps), str(args.chunks), *args.overrides,
        ]  # fmt: skip
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
        peaks: dict[str, dict[str, float]] = {}
        tree_peak = 0
        roles: dict[int, str] = {proc.pid: "trainer"}
        while proc.poll() is None:
            now = sample(proc.pid)
            for pid, (parent, _, _) in now.items():
                if pid not in roles:
                    roles[pid] = role(pid, parent, roles)
            tree_peak = max(tree_peak, sum(pss for _, pss, _ in now.values()))
            for pid, (_, pss, rss) in now.items():
                peak = peaks.setdefault(roles[pid], {"pss_mib": 0.0, "rss_mib": 0.0})
                peak["pss_mib"] = max(peak["pss_mib"], pss / 1024)
                peak["rss_mib"] = max(peak["rss_mib"], rss / 1024)
            time.sleep(args.interval)
        if proc.returncode:
            raise SystemExit(f"error: training exited with status {proc.returncode}")
    result = {
        "config": str(args.config.resolve().relative_to(ROOT)),
        "overrides": args.overrides,
        "steps": args.steps,
        "chunks": args.chunks,
        "processes": peaks,
        "tree_pss_peak_mib": round(tree_peak / 1024, 1),
    }
    for name, peak in peaks.items():
        print(
            f"{name:<16} peak PSS {peak['pss_mib']:8.0f} MiB   peak RSS {peak['rss_mib']:8.0f} MiB"
        )
    print(f"{'all':<16} peak PSS {result['tree_pss_peak_mib']:8.0f} MiB (summed at each sample)")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
