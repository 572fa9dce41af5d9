"""``mobilevos bench``: end-to-end per-frame latency of the streaming predictor, side by side.

What is timed is :meth:`~mobilevos.predictor.VOSPredictor.step`, the whole frame as a user
pays for it (resize, normalisation, the three network verbs, memory write, upsampling and
argmax), stage by stage, for every (model, backend, object count) configuration:

* **One clip for all.** A generated clip (:func:`~mobilevos.data.synth.render_video`) is
  written to an mp4 and read back one frame at a time with the project's PyAV reader, so the
  "with decode" numbers include what a real video costs to decode.
* **Interleaved.** Every configuration is built first; then frame t runs for each
  configuration in turn (round robin), so drifts of a shared machine (another job, thermal
  throttling) hit them all alike. The first ``warmup`` frames of each are not counted; frame 0
  (the given mask, no memory to read yet) is always one of them.
* **A yardstick in the same run.** Before each round, torch's own fp32 matmul rate is measured;
  its median turns FLOPs per frame into an *efficiency*: the fraction of that rate the model's
  frame achieves. Two machines (or one machine on two days) then compare on that ratio.
* **FLOPs** are counted with :class:`torch.utils.flop_counter.FlopCounterMode` on the PyTorch
  engine, per network stage, for a frame that is written to memory (:mod:`mobilevos.costs`,
  which ``mobilevos info`` shares).
* **Long streams** (``long`` > 0) check that the finite memory really stays finite: bank bytes,
  resident memory and latency early and late in a stream of thousands of frames.

The teacher (``teacher-r50``) is several seconds per frame on a CPU at 480p, so it runs only
``teacher_frames`` timed frames; the students' ``speedup_vs_teacher`` compares medians.

Modules import one way only: each imports only modules listed below it.

* :mod:`~mobilevos.bench.run`: :func:`run_bench`, the whole measurement in order;
* :mod:`~mobilevos.bench.report`: the report's head and rows (speed-ups included), its
  markdown, the chart of the stages and :func:`write_outputs`;
* :mod:`~mobilevos.bench.timing`: the clip, the predictors (torch or ONNX), the interleaved
  rounds and the long streams;
* :mod:`~mobilevos.bench.machine`: the matmul probe, resident memory, the machine and software
  versions, and the models to time;
* :mod:`~mobilevos.bench.options`: :class:`BenchOptions`, what to measure.
"""

from mobilevos.bench.options import BACKENDS, TEACHER, BenchOptions
from mobilevos.bench.report import add_speedups, markdown_report, write_outputs
from mobilevos.bench.run import run_bench
from mobilevos.bench.timing import STAGES
from mobilevos.costs import FLOP_STAGES, count_flops

__all__ = [
    "BACKENDS",
    "FLOP_STAGES",
    "STAGES",
    "TEACHER",
    "BenchOptions",
    "add_speedups",
    "count_flops",
    "markdown_report",
    "run_bench",
    "write_outputs",
]
