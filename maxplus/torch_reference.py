"""PyTorch autograd versions of the same networks, objective and step.

Two implementations of the tropical layers:

* ``"plain"``: broadcasting, ``cand = h[:, None, :] + W[None]`` (N × out × in),
  then the selected candidate is gathered, so autograd's gradient flows to the
  lowest-index arg max/min only (exactly our subgradient);
* ``"tropical_gemm"``: the autograd functions of the ``tropical-gemm`` package
  (Rust SIMD kernels, lowest index on ties as well).

They are the references of the tests and the dense peers of the benchmarks.
"""

from __future__ import annotations

import numpy as np

from .objectives import parse_objective, top_q
from .steps import step_size

IMPLEMENTATIONS = ("plain", "tropical_gemm")


def _torch():
    import torch

    return torch


def tropical_layer(H, W, maximize: bool, impl: str):  # noqa: N803
    """``o[n, j] = max_i W[j, i] + H[n, i]`` (or min) with autograd."""
    torch = _torch()
    if impl == "plain":
        cand = H[:, None, :] + W[None, :, :]
        idx = cand.argmax(dim=2) if maximize else cand.argmin(dim=2)
        return torch.gather(cand, 2, idx[:, :, None])[:, :, 0]
    if impl == "tropical_gemm":
        from tropical_gemm.pytorch import TropicalMaxPlusMatmul, TropicalMinPlusMatmul

        fn = TropicalMaxPlusMatmul if maximize else TropicalMinPlusMatmul
        return fn.apply(H.contiguous(), W.t().contiguous())
    raise ValueError(f"unknown impl {impl!r}; expected one of {IMPLEMENTATIONS}")


class TorchNetwork:
    """A maxplus ``Sequential`` as torch tensors with ``requires_grad``: copies of its
    arrays, or with ``share=True`` the model's own arrays (an in-place torch update then
    updates the model)."""

    def __init__(self, model, impl: str = "plain", *, share: bool = False):
        torch = _torch()
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"unknown impl {impl!r}; expected one of {IMPLEMENTATIONS}")
        self.impl = impl
        self.names = list(model.named_parameters())
        arrays = model.named_parameters().values()
        self.params = [
            torch.from_numpy(p).requires_grad_(True)
            if share
            else torch.tensor(np.array(p), requires_grad=True)
            for p in arrays
        ]
        self.maximize = [layer.maximize for layer in model.layers[1:]]

    def scores(self, X):  # noqa: N803
        H = X @ self.params[0].t() + self.params[1]
        for W, maximize in zip(self.params[2:], self.maximize, strict=True):
            H = tropical_layer(H, W, maximize, self.impl)
        return H

    def numpy_parameters(self) -> dict:
        return {n: p.detach().numpy().copy() for n, p in zip(self.names, self.params, strict=True)}


def torch_losses(S, y, loss: str):  # noqa: N803
    """Per-sample losses with autograd (hinge through the lowest arg max)."""
    torch = _torch()
    picked = S.gather(1, y[:, None])[:, 0]
    if loss == "cross_entropy":
        return torch.logsumexp(S, dim=1) - picked
    if loss == "hinge":
        margins = S + (torch.arange(S.shape[1])[None, :] != y[:, None]).to(S.dtype)
        k = margins.argmax(dim=1)
        return margins.gather(1, k[:, None])[:, 0] - picked
    raise ValueError(f"unknown loss {loss!r}")


def torch_fit(
    model,
    X,
    y,
    objective="worst",
    steps=100,
    step="constant",
    lr=0.05,  # noqa: N803
    loss="cross_entropy",
    impl="plain",
    target=0.0,
    record=False,
):
    """Run the same subgradient method with autograd; returns the final parameters
    (a dict of NumPy arrays) and the per-step objectives (and, with ``record``,
    the parameters after every step)."""
    torch = _torch()
    net = TorchNetwork(model, impl)
    Xt = torch.tensor(np.asarray(X, dtype=model.dtype))
    yt = torch.tensor(np.asarray(y, dtype=np.int64))
    q = parse_objective(objective, Xt.shape[0])
    objectives, trajectory = [], []
    for t in range(steps):
        for p in net.params:
            p.grad = None
        losses = torch_losses(net.scores(Xt), yt, loss)
        rows = torch.as_tensor(top_q(losses.detach().numpy(), q))
        F = losses[rows].sum() / q
        F.backward()
        sq = sum(float((p.grad.double() ** 2).sum()) for p in net.params)
        eta = step_size(step, lr, t, float(F.detach()), sq, target)
        with torch.no_grad():
            for p in net.params:
                p -= eta * p.grad
        objectives.append(float(F.detach()))
        if record:
            trajectory.append(net.numpy_parameters())
    return net.numpy_parameters(), objectives, trajectory


def autograd_gradient(model, X, y, objective="worst", loss="cross_entropy", impl="plain"):  # noqa: N803
    """The gradient autograd returns for the objective at the model's parameters."""
    torch = _torch()
    net = TorchNetwork(model, impl)
    Xt = torch.tensor(np.asarray(X, dtype=model.dtype))
    yt = torch.tensor(np.asarray(y, dtype=np.int64))
    q = parse_objective(objective, Xt.shape[0])
    losses = torch_losses(net.scores(Xt), yt, loss)
    rows = torch.as_tensor(top_q(losses.detach().numpy(), q))
    (losses[rows].sum() / q).backward()
    return {n: p.grad.numpy().copy() for n, p in zip(net.names, net.params, strict=True)}
