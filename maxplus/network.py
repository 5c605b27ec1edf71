"""Max-plus networks: ``Linear → (MaxPlus | MinPlus)+`` and the LMM.

A tropical layer with weights ``W`` (out × in) maps ``h`` (one sample) to

.. math::

    \\text{MaxPlus:}\\; o_j = \\max_i \\; (W_{ji} + h_i), \\qquad
    \\text{MinPlus:}\\; o_j = \\min_i \\; (W_{ji} + h_i),

and records the selected ``i`` (lowest on ties). The LMM of Luo & Fan is
``Linear(d → h1) → MinPlus(h1 → h2) → MaxPlus(h2 → K)`` with parameters
``A, b, B, C``; its outputs are the class scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import backend as backends
from ._validation import check_choice, check_matrix, check_positive_int
from .products import xp_tropical_product

DTYPES = ("float32", "float64")


@dataclass
class Linear:
    """Affine layer ``z = W h + b`` with ``W`` (out × in) and ``b`` (out,)."""

    weight: object
    bias: object
    kind = "Linear"

    @property
    def shape(self):
        return tuple(self.weight.shape)

    def parameters(self):
        return {"weight": self.weight, "bias": self.bias}

    def forward(self, H, xp):  # noqa: N803
        """``H Wᵀ + b`` with the deterministic kernel (see :mod:`maxplus.kernels.cpu_linear`)."""
        Z = xp.empty((H.shape[0], self.weight.shape[0]), dtype=self.weight.dtype)
        if backends.is_numpy_namespace(xp):
            from .kernels.cpu_linear import linear_forward

            linear_forward(H, np.ascontiguousarray(self.weight.T), self.bias, Z)
        else:
            from .kernels.gpu import linear_forward_gpu

            linear_forward_gpu(H, self.weight, self.bias, Z)
        return Z


@dataclass
class Tropical:
    """A max-plus (``maximize=True``) or min-plus layer with weights ``W`` (out × in)."""

    weight: object
    maximize: bool

    @property
    def kind(self):
        return "MaxPlus" if self.maximize else "MinPlus"

    @property
    def shape(self):
        return tuple(self.weight.shape)

    def parameters(self):
        return {"weight": self.weight}

    def forward(self, H, xp):  # noqa: N803
        """Values (N × out) and selected inputs (N × out, int32)."""
        return xp_tropical_product(
            H, xp.ascontiguousarray(self.weight.T), xp, maximize=self.maximize
        )


def MaxPlus(weight):  # noqa: N802 - reads as a layer class
    """Max-plus layer ``o_j = max_i W[j, i] + h_i``."""
    return Tropical(weight, maximize=True)


def MinPlus(weight):  # noqa: N802
    """Min-plus layer ``o_j = min_i W[j, i] + h_i``."""
    return Tropical(weight, maximize=False)


@dataclass
class ForwardPass:
    """Everything a forward pass computes for N samples.

    ``values[0]`` is the linear output Z; ``values[i]`` (i ≥ 1) is the output of
    tropical layer i and ``selections[i]`` its selected inputs (``selections[0]``
    is None). ``values[-1]`` are the scores.
    """

    values: list
    selections: list

    @property
    def scores(self):
        return self.values[-1]


@dataclass(eq=False, repr=False)
class Sequential:
    """A network ``Linear → (MaxPlus | MinPlus)+`` of NumPy or CuPy parameters."""

    layers: list
    backend: str = field(default="numpy")

    def __post_init__(self):
        check_choice("backend", self.backend, backends.BACKENDS)
        self.xp = backends.get_namespace(self.backend)
        validate_layers(self.layers)

    # The array namespace is a module: copies made by pickle (scikit-learn's clone and
    # joblib) rebuild it from the backend's name. Model files use save/load, not pickle.
    def __getstate__(self):
        state = self.__dict__.copy()
        del state["xp"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.xp = backends.get_namespace(self.backend)

    # ---- description -------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return self.layers[0].shape[1]

    @property
    def n_classes(self) -> int:
        return self.layers[-1].shape[0]

    @property
    def dtype(self):
        return np.dtype(self.layers[0].weight.dtype)

    @property
    def architecture(self) -> str:
        """E.g. ``"Linear(4→8) MinPlus(8→6) MaxPlus(6→3)"``."""
        return " ".join(f"{L.kind}({L.shape[1]}→{L.shape[0]})" for L in self.layers)

    def named_parameters(self) -> dict:
        """``{"0.weight": W0, "0.bias": b0, "1.weight": W1, ...}`` (live arrays)."""
        return {
            f"{i}.{name}": array
            for i, layer in enumerate(self.layers)
            for name, array in layer.parameters().items()
        }

    @property
    def n_parameters(self) -> int:
        return int(sum(a.size for a in self.named_parameters().values()))

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.architecture}, dtype={self.dtype}, backend={self.backend!r})"

    # ---- evaluation --------------------------------------------------------------
    def check_input(self, X, name="X"):  # noqa: N803
        """``X`` as a C-contiguous array of the model's dtype and backend, validated."""
        xp = self.xp
        X = backends.asarray_like(X, xp)
        if np.dtype(X.dtype).kind not in "biuf":
            raise TypeError(f"{name} has dtype {X.dtype}; expected real numbers")
        check_matrix(name, X, xp, forbid="inf")
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"{name} has {X.shape[1]} features but the model expects {self.n_features}"
            )
        return xp.ascontiguousarray(xp.asarray(X, dtype=self.dtype))

    def forward(self, X) -> ForwardPass:  # noqa: N803
        """Forward pass over all samples, recording every selection."""
        X = self.check_input(X)
        return self.forward_validated(X)

    def forward_validated(self, X) -> ForwardPass:  # noqa: N803
        values = [self.layers[0].forward(X, self.xp)]
        selections = [None]
        for layer in self.layers[1:]:
            out, sel = layer.forward(values[-1], self.xp)
            values.append(out)
            selections.append(sel)
        return ForwardPass(values, selections)

    def scores(self, X):  # noqa: N803
        """Class scores, shape (N, K)."""
        return self.forward(X).scores

    def predict(self, X):  # noqa: N803
        """Predicted classes (argmax of the scores, lowest class on ties), shape (N,)."""
        return self.xp.argmax(self.scores(X), axis=1)

    # ---- copies and parameters ---------------------------------------------------
    def copy(self) -> Sequential:
        """A deep copy (same class, same backend)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.layers = [copy_layer(layer) for layer in self.layers]
        return new

    def set_parameters(self, params: dict) -> None:
        """Copy values into the live parameter arrays (names as :meth:`named_parameters`)."""
        live = self.named_parameters()
        for name, value in params.items():
            live[name][...] = value

    def save(self, path) -> None:
        """Write the model to an ``.npz`` file (no pickle); see :mod:`maxplus.io`."""
        from .io import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path, backend: str = "numpy"):
        """Read a model written by :meth:`save`."""
        from .io import load_model

        return load_model(path, backend=backend)

    def tree(self, x, classes=None):
        """The short computational tree of one sample: see :func:`computational_tree`."""
        from .tree import computational_tree

        return computational_tree(self, x, classes=classes)


def copy_layer(layer):
    if isinstance(layer, Linear):
        return Linear(layer.weight.copy(), layer.bias.copy())
    return Tropical(layer.weight.copy(), layer.maximize)


def validate_layers(layers) -> None:
    """Structure ``Linear → (MaxPlus | MinPlus)+``, chained shapes, one float dtype."""
    if len(layers) < 2 or not isinstance(layers[0], Linear):
        raise ValueError("layers must be Linear followed by at least one MaxPlus/MinPlus layer")
    if not all(isinstance(layer, Tropical) for layer in layers[1:]):
        raise ValueError("only the first layer may be Linear; the rest must be MaxPlus or MinPlus")
    dtype = np.dtype(layers[0].weight.dtype)
    if dtype.name not in DTYPES:
        raise TypeError(f"parameters must be float32 or float64, got {dtype}")
    lin = layers[0]
    if lin.weight.ndim != 2 or lin.bias.shape != (lin.weight.shape[0],):
        raise ValueError(
            f"Linear weight must be 2-D and bias of shape ({lin.weight.shape[0]},), "
            f"got {lin.weight.shape} and {lin.bias.shape}"
        )
    for i, layer in enumerate(layers):
        for name, array in layer.parameters().items():
            if np.dtype(array.dtype) != dtype:
                raise TypeError(f"layer {i} {name} has dtype {array.dtype}, expected {dtype}")
            if not bool(np.all(np.isfinite(backends.to_numpy(array)))):
                raise ValueError(f"layer {i} {name} contains NaN or inf")
        if i and (layer.weight.ndim != 2 or layer.weight.shape[1] != layers[i - 1].shape[0]):
            raise ValueError(
                f"layer {i} ({layer.kind}) has weight shape {layer.weight.shape}; "
                f"expected ({'out'}, {layers[i - 1].shape[0]}) to follow layer {i - 1}"
            )


def init_layers(sizes, kinds, *, seed=0, dtype="float32", xp=np):
    """Random parameters for ``Linear(sizes[0]→sizes[1])`` then tropical layers.

    Linear: ``U(-1/√d, 1/√d)`` (PyTorch's default), bias likewise. Tropical weights:
    ``N(0, 0.1²)`` (small, so that at initialisation every input has a chance to
    be selected and the network starts close to its linear units).
    """
    check_choice("dtype", np.dtype(dtype).name, DTYPES)
    rng = np.random.default_rng(seed)
    d, h = sizes[0], sizes[1]
    bound = 1.0 / np.sqrt(d)
    layers = [
        Linear(
            rng.uniform(-bound, bound, size=(h, d)).astype(dtype),
            rng.uniform(-bound, bound, size=h).astype(dtype),
        )
    ]
    for (n_in, n_out), kind in zip(zip(sizes[1:-1], sizes[2:], strict=True), kinds, strict=True):
        check_choice("layer kind", kind, ("MaxPlus", "MinPlus"))
        layers.append(
            Tropical((0.1 * rng.standard_normal((n_out, n_in))).astype(dtype), kind == "MaxPlus")
        )
    if xp is not np:
        for layer in layers:
            for name, array in layer.parameters().items():
                setattr(layer, name, xp.asarray(array))
    return layers


def make_sequential(sizes, kinds, *, seed=0, dtype="float32", backend="numpy") -> Sequential:
    """A random ``Sequential``: ``make_sequential([4, 8, 6, 3], ["MinPlus", "MaxPlus"])``."""
    sizes = [check_positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    if len(kinds) != len(sizes) - 2:
        raise ValueError(
            f"need {len(sizes) - 2} tropical layer kinds for sizes {sizes}, got {kinds}"
        )
    xp = _namespace(backend)
    return Sequential(init_layers(sizes, kinds, seed=seed, dtype=dtype, xp=xp), backend=backend)


def _namespace(name):
    check_choice("backend", name, backends.BACKENDS)
    return backends.get_namespace(name)


class LMM(Sequential):
    """Linear → MinPlus → MaxPlus network (Luo & Fan's "Linear-Min-Max").

    .. math::

        z_m = A_m \\cdot x + b_m, \\quad u_l = \\min_m (B_{lm} + z_m), \\quad
        s_k = \\max_l (C_{kl} + u_l).

    Parameters: ``A`` (h1 × d), ``b`` (h1,), ``B`` (h2 × h1), ``C`` (K × h2).
    """

    def __init__(
        self, n_features, n_linear, n_minplus, n_classes, seed=0, dtype="float32", backend="numpy"
    ):
        sizes = [n_features, n_linear, n_minplus, n_classes]
        names = ("n_features", "n_linear", "n_minplus", "n_classes")
        sizes = [check_positive_int(name, s) for name, s in zip(names, sizes, strict=True)]
        xp = _namespace(backend)
        layers = init_layers(sizes, ["MinPlus", "MaxPlus"], seed=seed, dtype=dtype, xp=xp)
        super().__init__(layers, backend=backend)

    @classmethod
    def from_arrays(cls, A, b, B, C, backend=None):  # noqa: N803
        """An LMM with the given parameters (copied; float32 stays float32, the rest
        becomes float64). Shapes (h1, d), (h1,), (h2, h1), (K, h2)."""
        arrays = {"A": A, "b": b, "B": B, "C": C}
        if backend is None:
            backend = "cupy" if any(map(backends.is_cupy_array, arrays.values())) else "numpy"
        xp = _namespace(backend)
        converted = {}
        dtypes = {np.dtype(getattr(a, "dtype", np.float64)) for a in arrays.values()}
        dtype = np.float32 if dtypes == {np.dtype(np.float32)} else np.float64
        for name, a in arrays.items():
            a = backends.asarray_like(a, xp)
            if np.dtype(a.dtype).kind not in "biuf":
                raise TypeError(f"{name} has dtype {a.dtype}; expected real numbers")
            converted[name] = xp.array(a, dtype=dtype, copy=True)
        A, b, B, C = converted["A"], converted["b"], converted["B"], converted["C"]
        expected = {"A": 2, "b": 1, "B": 2, "C": 2}
        for name, nd in expected.items():
            if converted[name].ndim != nd:
                raise ValueError(f"{name} must be {nd}-D, got shape {converted[name].shape}")
        if b.shape != (A.shape[0],):
            raise ValueError(
                f"b must have shape ({A.shape[0]},) to match A {A.shape}, got {b.shape}"
            )
        if B.shape[1] != A.shape[0]:
            raise ValueError(
                f"B must have {A.shape[0]} columns to match A {A.shape}, got {B.shape}"
            )
        if C.shape[1] != B.shape[0]:
            raise ValueError(
                f"C must have {B.shape[0]} columns to match B {B.shape}, got {C.shape}"
            )
        model = object.__new__(cls)
        Sequential.__init__(model, [Linear(A, b), MinPlus(B), MaxPlus(C)], backend=backend)
        return model

    @property
    def A(self):  # noqa: N802
        return self.layers[0].weight

    @property
    def b(self):
        return self.layers[0].bias

    @property
    def B(self):  # noqa: N802
        return self.layers[1].weight

    @property
    def C(self):  # noqa: N802
        return self.layers[2].weight
