"""Training steps: the sparse trainer against the dense one and PyTorch autograd.

One subgradient step of the worst-sample cross-entropy objective (constant step
``LR``) on an LMM, at the configurations of :data:`.common.TRAINING_CONFIGS` (Iris
4-16-8-3, MNIST-5k 784-128-32-10 and the reference MNIST-5k 784-512-128-10,
float32). Every trainer is set up and warmed up in ``setup`` (numba compilation and
the sparse trainer's forward state are not timed); ``time_step`` takes exactly one
step through :func:`maxplus.training.run`, the loop of ``mp.fit``, so the state
advances from call to call as in training. The peers are PyTorch autograd with
tropical-gemm's kernels and with plain broadcasting (an ``N × h2 × h1`` tensor:
seconds and GBs per step at the reference size). ``TrainingStepLater`` times the
sparse step from the iterate after :data:`AFTER` steps instead, where its cost has
fallen (``benchmarks/compare_training.py --after``).

Counted FLOPs per step, their ratio and the share of it that the time ratio
realises are tracked too (:mod:`maxplus.speed`, the measurement that
``benchmarks/compare_training.py`` prints).
"""

from __future__ import annotations

from maxplus import flops, speed

from .common import TRAINING_CONFIGS, require_gpu, require_method, training_problem

CONFIGS = list(TRAINING_CONFIGS)
LR = 0.01
#: Untimed steps in ``setup`` (numba compilation, first allocations).
WARMUP = 3
#: ``TrainingStepLater`` starts from the iterate after this many steps: at ``LR`` on
#: MNIST the objective has levelled off there (chapter 7 plots the trajectory).
AFTER = 300


class _TrainingStep:
    """One step of one method on a warmed-up trainer."""

    param_names = ["configuration", "method"]
    backend = "numpy"
    warmup_steps = WARMUP
    after = 0  # start from the iterate after this many steps (0: the seeded LMM)

    def setup(self, configuration, method):
        require_method(method)
        X, y, sizes = training_problem(configuration)
        start = None
        if self.after:
            start = speed.trained_parameters(X, y, self.after, sizes=sizes, lr=LR)
        self.stepper = speed.WarmStepper(
            method,
            X,
            y,
            sizes=sizes,
            lr=LR,
            warmup=self.warmup_steps,
            backend=self.backend,
            start=start,
        )

    def time_step(self, configuration, method):
        self.stepper.step()

    def peakmem_step(self, configuration, method):
        self.stepper.step()


class TrainingStep(_TrainingStep):
    """Our trainers: sparse (trees, repaired state) and dense (full passes)."""

    params = [CONFIGS, ["sparse", "dense"]]
    timeout = 300

    def track_state_bytes(self, configuration, method):
        """Arrays with one row per sample that the trainer keeps between steps."""
        return speed.trainer_state_bytes(self.stepper.trainer)["per_sample"]

    track_state_bytes.unit = "bytes"


class TrainingStepLater(_TrainingStep):
    """The sparse step from the iterate after :data:`AFTER` steps, where training
    spends most of its steps; it costs less than the first steps' (a dense step costs
    the same at every iterate)."""

    params = [CONFIGS, ["sparse"]]
    after = AFTER
    timeout = 300


class TorchStep(_TrainingStep):
    """The PyTorch autograd peers (seconds per step at the reference size)."""

    params = [CONFIGS, ["torch_tropical_gemm", "torch_plain"]]
    number = 1
    repeat = (1, 3, 30.0)
    warmup_time = 0  # setup has warmed up
    warmup_steps = 1  # nothing to compile: one step allocates
    timeout = 600


class TrainingFlops:
    """Counted FLOPs per step: dense (formula) and sparse (what its kernels did,
    mean over ``STEPS`` steps after the warm-up)."""

    params = [CONFIGS]
    param_names = ["configuration"]
    timeout = 300
    STEPS = 20

    def setup(self, configuration):
        X, y, sizes = training_problem(configuration)
        stepper = speed.WarmStepper("sparse", X, y, sizes=sizes, lr=LR, warmup=WARMUP)
        counted = stepper.steps(self.STEPS)["flops"]
        self.sparse = sum(counted) / len(counted)
        self.dense = flops.dense_step_flops(stepper.model, stepper.n_samples)

    def track_dense_flops_per_step(self, configuration):
        return self.dense

    track_dense_flops_per_step.unit = "FLOPs"

    def track_sparse_flops_per_step(self, configuration):
        return self.sparse

    track_sparse_flops_per_step.unit = "FLOPs"

    def track_flop_ratio(self, configuration):
        return self.dense / self.sparse

    track_flop_ratio.unit = "FLOP ratio (dense / sparse)"


class TrainingRatios:
    """Sparse against each peer, measured side by side (median seconds per step).

    One measurement per instance serves both ``track_*`` (asv runs each in its own
    process anyway)."""

    params = [CONFIGS, ["dense", "torch_tropical_gemm", "torch_plain"]]
    param_names = ["configuration", "peer"]
    timeout = 600
    STEPS = 20
    MAX_SECONDS = 3.0

    def setup(self, configuration, peer):
        require_method(peer)
        self.problem = training_problem(configuration)
        self.measured = None

    def _ratios(self, peer):
        if self.measured is None:
            X, y, sizes = self.problem
            report = speed.measure_step_times(
                X,
                y,
                sizes=sizes,
                lr=LR,
                methods=("sparse", peer),
                steps=self.STEPS,
                warmup=1,
                max_seconds=self.MAX_SECONDS,
            )
            self.measured = report["ratios"][peer]
        return self.measured

    def track_time_ratio(self, configuration, peer):
        return self._ratios(peer)["time_ratio_median"]

    track_time_ratio.unit = "time ratio (peer / sparse)"

    def track_realised_share(self, configuration, peer):
        return self._ratios(peer)["realised_share_median"]

    track_realised_share.unit = "time ratio / FLOP ratio"


class GpuTrainingStep(_TrainingStep):
    """Our trainers on an NVIDIA GPU (CuPy arrays; skipped without a GPU)."""

    params = [CONFIGS, ["sparse", "dense"]]
    backend = "cupy"
    timeout = 300

    def setup(self, configuration, method):
        require_gpu()
        try:
            super().setup(configuration, method)
        except ModuleNotFoundError as exc:  # the GPU trainers are not there yet
            raise NotImplementedError(f"no GPU trainer: {exc}") from None
        import cupy

        self.synchronize = cupy.cuda.Device().synchronize

    def time_step(self, configuration, method):
        self.stepper.step()
        self.synchronize()

    def peakmem_step(self, configuration, method):
        self.stepper.step()
        self.synchronize()
