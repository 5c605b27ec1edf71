"""The CUDA tropical product.

Everywhere: its NumPy twin against the broadcasting reference, its source run on
the CPU (host emulation, with a C++ compiler), and its compilation with ``nvcc``
for sm_80 and sm_90 (where ``nvcc`` is installed). With a GPU (``-m gpu``): the
kernel itself, through ``mp.maxplus_matmul`` on CuPy arrays, against the CPU
kernel and the twin.
"""

import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import maxplus as mp
from maxplus import backend
from maxplus.kernels import gpu
from maxplus.kernels.gpu_twin import (
    HostEmulation,
    host_compiler,
    output_coordinates,
    tropical_product_twin,
)
from maxplus.products import naive_tropical_matmul, tropical_matmul

DTYPES = [np.float32, np.float64]
MAXIMIZE = [True, False]
KINDS = ["random", "ties", "zeros"]


def edge_shapes(dtype):
    """(n, k, m) around the tile sizes of ``dtype``: exact tiles, one past, one short,
    several tiles, tall, wide and a single entry."""
    c = gpu.tile_config(dtype)
    bm, bk, bn = c.block_rows, c.tile_k, c.block_cols
    return [
        (1, 1, 1),
        (bm, bk, bn),
        (bm + 1, bk + 1, bn + 1),
        (bm - 1, 2 * bk - 1, 2 * bn + 3),
        (2 * bm + 5, 3, 2),
        (2, 5, 2 * bn + 7),
        (7, 4 * bk + 3, 9),
    ]


def operands(rng, shape, dtype, kind, maximize):
    """A (n×k) and B (k×m) of one of three kinds:

    * ``random``: normal values on a grid of 2⁻¹⁰, so that sums are exact in float32
      and the float64 reference agrees bitwise; ties are rare;
    * ``ties``: half-integers in [-1.5, 1.5], so that most outputs are ties;
    * ``zeros``: ``ties`` with 30 % of entries the semiring's zero, a whole row of
      A and a whole column of B the zero.
    """
    n, k, m = shape
    if kind == "random":
        make = lambda s: np.round(rng.standard_normal(s) * 1024) / 1024  # noqa: E731
    else:
        make = lambda s: rng.integers(-3, 4, size=s) * 0.5  # noqa: E731
    A, B = make((n, k)).astype(dtype), make((k, m)).astype(dtype)
    if kind == "zeros":
        zero = -np.inf if maximize else np.inf
        A[rng.random(A.shape) < 0.3] = zero
        B[rng.random(B.shape) < 0.3] = zero
        A[n // 2, :] = zero
        B[:, m // 2] = zero
    return A, B


def run_product(product, A, B, maximize):  # noqa: N803
    n, m = A.shape[0], B.shape[1]
    C = np.full((n, m), np.nan, A.dtype)  # NaN and -7 show any output left unwritten
    I = np.full((n, m), -7, np.int32)
    product(A, B, C, I, maximize)
    return C, I


def assert_same_product(C, I, ref_C, ref_I):  # noqa: N803
    np.testing.assert_array_equal(C, ref_C.astype(C.dtype))
    np.testing.assert_array_equal(I, ref_I)


def seed(*parts):
    """A reproducible seed for a test case (``hash`` of strings varies by process)."""
    return zlib.crc32(repr(parts).encode())


def shape_id(shape):
    return "x".join(map(str, shape))


CASES = [
    pytest.param(dtype, shape, id=f"{np.dtype(dtype).name}-{shape_id(shape)}")
    for dtype in DTYPES
    for shape in edge_shapes(dtype)
]


# ------------------------------------------------------------------------ NumPy twin


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("maximize", MAXIMIZE)
@pytest.mark.parametrize("dtype,shape", CASES)
def test_twin_matches_reference(dtype, shape, maximize, kind):
    rng = np.random.default_rng(seed(shape, kind, maximize))
    A, B = operands(rng, shape, dtype, kind, maximize)
    C, I = run_product(tropical_product_twin, A, B, maximize)
    assert_same_product(C, I, *naive_tropical_matmul(A, B, maximize=maximize))


@pytest.mark.parametrize("maximize", MAXIMIZE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_matches_cpu_kernel_on_unrounded_values(dtype, maximize):
    """Plain normal values, rounded in ``dtype``: the twin and the CPU kernel add in
    the same precision and must agree bitwise."""
    c = gpu.tile_config(dtype)
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2 * c.block_rows + 3, 5 * c.tile_k + 1)).astype(dtype)
    B = rng.standard_normal((A.shape[1], 2 * c.block_cols + 9)).astype(dtype)
    C, I = run_product(tropical_product_twin, A, B, maximize)
    ref_C, ref_I = tropical_matmul(A, B, maximize=maximize, return_indices=True)
    assert_same_product(C, I, ref_C, ref_I)


@pytest.mark.parametrize("maximize", MAXIMIZE)
def test_twin_lowest_index_on_ties_and_index_zero_for_zero_rows(maximize):
    zero = -np.inf if maximize else np.inf
    A = np.zeros((3, 20))
    A[1, :] = zero  # every candidate of row 1 is the zero
    B = np.zeros((20, 4))
    B[5:, 1] = 1.0 if maximize else -1.0  # column 1: k = 5 … 19 tie as the best
    C, I = run_product(tropical_product_twin, A, B, maximize)
    assert np.all(I[1] == 0) and np.all(C[1] == zero)
    assert I[0, 0] == 0 and I[0, 1] == 5 and I[2, 1] == 5


@pytest.mark.parametrize("dtype", DTYPES)
def test_each_output_belongs_to_exactly_one_thread_register(dtype):
    c = gpu.tile_config(dtype)
    rows = output_coordinates(3, c.block_rows, c.threads_y, c.thread_rows)
    cols = output_coordinates(2, c.block_cols, c.threads_x, c.thread_cols)
    np.testing.assert_array_equal(np.sort(rows), np.arange(3 * c.block_rows))
    np.testing.assert_array_equal(np.sort(cols), np.arange(2 * c.block_cols))


def test_tile_table_is_consistent():
    for dtype, c in gpu.TILES.items():
        assert c.threads == 256, dtype
        assert c.block_rows * c.tile_k % c.threads == 0 and c.tile_k * c.block_cols % c.threads == 0
        assert (c.thread_rows // 2) * np.dtype(dtype).itemsize % 16 == 0  # 16-byte packs
    with pytest.raises(TypeError, match="float32 and float64"):
        gpu.tile_config(np.float16)


@pytest.mark.parametrize("rows", [1, 100, gpu.MAX_GRID_Y * 128, gpu.MAX_GRID_Y * 128 + 1, 10**7])
def test_launch_slabs_cover_the_rows_within_the_grid_limit(rows):
    config = gpu.tile_config(np.float32)
    slabs = list(gpu.launch_slabs(rows, 300, config))
    assert slabs[0][0] == 0 and slabs[-1][1] == rows
    for (_, stop, _), (start, _, _) in zip(slabs, slabs[1:], strict=False):
        assert stop == start
    for start, stop, (grid_x, grid_y, grid_z) in slabs:
        assert grid_x == 3 and grid_z == 1
        assert grid_y <= gpu.MAX_GRID_Y and grid_y * config.block_rows >= stop - start


# --------------------------------------------------------- the CUDA source on the CPU


@pytest.fixture(scope="module")
def emulation(tmp_path_factory):
    if host_compiler() is None:
        pytest.skip("no C++ compiler for the host emulation of the CUDA source")
    return HostEmulation(tmp_path_factory.mktemp("emulation"))


@pytest.mark.parametrize("maximize", MAXIMIZE)
@pytest.mark.parametrize("dtype,shape", CASES)
def test_cuda_source_run_on_cpu_matches_reference(emulation, dtype, shape, maximize):
    for kind in ("random", "zeros"):
        rng = np.random.default_rng(seed(shape, kind, maximize, "emu"))
        A, B = operands(rng, shape, dtype, kind, maximize)
        C, I = run_product(emulation, A, B, maximize)
        assert_same_product(C, I, *naive_tropical_matmul(A, B, maximize=maximize))


# ------------------------------------------------------------------ nvcc compilation


def cuda_sources():
    return sorted(Path(gpu.__file__).parent.glob("*.cu"))


def test_every_cuda_source_is_registered():
    assert cuda_sources(), "no .cu file found beside maxplus/kernels/gpu.py"
    assert sorted(p.name for p in cuda_sources()) == sorted(gpu.cuda_programs())


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("filename", sorted(gpu.cuda_programs()))
def test_cuda_sources_compile(filename, tmp_path):
    """The template instances that CuPy compiles, with the same options, compile
    without warnings and without register spills for Ampere (sm_80) and Hopper (sm_90)."""
    unit = tmp_path / "instances.cu"
    unit.write_text(gpu.instantiation_source(filename), encoding="utf-8")
    command = [
        "nvcc",
        *gpu.NVRTC_OPTIONS,
        "-gencode=arch=compute_80,code=sm_80",
        "-gencode=arch=compute_90,code=sm_90",
        "--Werror=all-warnings",
        "-Xptxas=-v",
        "-c",
        "-o",
        str(tmp_path / "instances.o"),
        str(unit),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    entries = result.stderr.count("Compiling entry function")
    assert entries == 2 * len(gpu.cuda_programs()[filename]), result.stderr
    spills = re.findall(r"(\d+) bytes spill (?:stores|loads)", result.stderr)
    assert len(spills) == 2 * entries and not any(int(b) for b in spills), result.stderr


# ------------------------------------------------------------------- without a GPU


def test_importing_the_gpu_modules_needs_no_cupy():
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import maxplus, maxplus.kernels.gpu, maxplus.kernels.gpu_twin, maxplus.gpu_training\n"
        "maxplus.kernels.gpu_twin.TwinKernels()\n"
        "print('imported')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr


@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is available here")
def test_cupy_backend_unavailable_without_gpu_names_the_fix():
    with pytest.raises(backend.BackendUnavailableError, match="pip install cupy"):
        backend.get_namespace("cupy")
    A = np.zeros((2, 2), np.float32)
    with pytest.raises(backend.BackendUnavailableError, match="cupy"):
        gpu.tropical_product_gpu(A, A, A.copy(), np.zeros((2, 2), np.int32), True)


@pytest.mark.skipif(backend.gpu_available(), reason="a GPU is available here")
def test_gpu_check_script_exits_2_without_gpu():
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
    result = subprocess.run(
        [sys.executable, str(script), "--skip-tests"], capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    assert "no usable GPU" in result.stderr and "cupy" in result.stderr


# --------------------------------------------------------------------- with a GPU

requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a GPU")


@pytest.fixture(scope="module")
def cp():
    return backend.require_cupy()


def gpu_and_cpu(cp, A, B, maximize):  # noqa: N803
    """(C, I) from the GPU through the public API, as NumPy, and from the CPU."""
    C, I = tropical_matmul(cp.asarray(A), cp.asarray(B), maximize=maximize, return_indices=True)
    assert isinstance(C, cp.ndarray) and isinstance(I, cp.ndarray)
    assert C.dtype == A.dtype and I.dtype == np.int32
    return (C.get(), I.get()), tropical_matmul(A, B, maximize=maximize, return_indices=True)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("maximize", MAXIMIZE)
@pytest.mark.parametrize("dtype,shape", CASES)
def test_gpu_product_matches_cpu_and_twin(cp, dtype, shape, maximize, kind):
    rng = np.random.default_rng(seed(shape, kind, maximize, "gpu"))
    A, B = operands(rng, shape, dtype, kind, maximize)
    (C, I), (ref_C, ref_I) = gpu_and_cpu(cp, A, B, maximize)
    assert_same_product(C, I, ref_C, ref_I)
    assert_same_product(C, I, *run_product(tropical_product_twin, A, B, maximize))


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("maximize", MAXIMIZE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_product_bitwise_equal_to_cpu_on_large_unrounded_inputs(cp, dtype, maximize):
    rng = np.random.default_rng(11)
    A = rng.standard_normal((700, 1500)).astype(dtype)
    B = rng.standard_normal((1500, 1031)).astype(dtype)
    (C, I), (ref_C, ref_I) = gpu_and_cpu(cp, A, B, maximize)
    np.testing.assert_array_equal(C.view(f"u{C.itemsize}"), ref_C.view(f"u{C.itemsize}"))
    np.testing.assert_array_equal(I, ref_I)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("maximize", MAXIMIZE)
def test_gpu_empty_dimensions(cp, maximize):
    zero = -np.inf if maximize else np.inf
    C, I = tropical_matmul(
        cp.zeros((3, 0)), cp.zeros((0, 4)), maximize=maximize, return_indices=True
    )
    assert C.shape == (3, 4) and bool(cp.all(C == zero)) and bool(cp.all(I == -1))
    assert tropical_matmul(cp.zeros((0, 3)), cp.zeros((3, 4)), maximize=maximize).shape == (0, 4)
    assert tropical_matmul(cp.zeros((2, 3)), cp.zeros((3, 0)), maximize=maximize).shape == (2, 0)


@pytest.mark.gpu
@requires_gpu
def test_gpu_product_taller_than_one_grid(cp):
    """More block rows than ``gridDim.y`` allows: launched in slabs."""
    config = gpu.tile_config(np.float64)
    n = gpu.MAX_GRID_Y * config.block_rows + 3
    A = cp.arange(n, dtype=cp.float64).reshape(n, 1) % 1000
    B = cp.asarray([[0.5, -2.0, 1.0]])
    C, I = mp.maxplus_matmul(A, B, return_indices=True)
    cp.testing.assert_array_equal(C, A + B)
    assert int(I.max()) == 0 and int(I.min()) == 0


@pytest.mark.gpu
@requires_gpu
def test_gpu_kernel_refuses_bad_operands(cp):
    A = cp.zeros((4, 3), cp.float32)
    B = cp.zeros((3, 5), cp.float32)
    C = cp.empty((4, 5), cp.float32)
    I = cp.empty((4, 5), cp.int32)
    with pytest.raises(ValueError, match="C-contiguous"):
        gpu.tropical_product_gpu(cp.zeros((3, 4), cp.float32).T, B, C, I, True)
    with pytest.raises(TypeError, match="int32"):
        gpu.tropical_product_gpu(A, B, C, I.astype(cp.int64), True)
    with pytest.raises(TypeError, match="share one dtype"):
        gpu.tropical_product_gpu(A, B.astype(cp.float64), C, I, True)
    with pytest.raises(TypeError, match="CuPy array"):
        gpu.tropical_product_gpu(A.get(), B, C, I, True)
