"""Peak autograd memory on any device: bytes of the tensors autograd saves for backward.

:class:`SavedTensorMeter` counts, through ``torch.autograd.graph.saved_tensors_hooks``, the storages
that backward will need (activations), each storage once however many nodes save it, and excluding
the storages of given persistent tensors (the model's parameters and buffers). A storage leaves the
count when the last graph node holding it is freed (after its backward, or when the graph is
dropped), so ``peak`` is the most activation bytes held at once: the quantity a memory-saving
estimator reduces. It does not count the optimizer state, the parameters, gradients or temporaries
freed inside one operation; on a GPU ``torch.cuda.max_memory_allocated`` measures those too.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

__all__ = ["SavedTensorMeter", "peak_saved_bytes", "step_saved_bytes", "bootstrap_ci"]


class _Held:
    __slots__ = ("meter", "key", "tensor")

    def __init__(self, meter: "SavedTensorMeter", key: int, tensor: torch.Tensor):
        self.meter, self.key, self.tensor = meter, key, tensor

    def __del__(self):
        self.meter._release(self.key)


class SavedTensorMeter:
    """Context manager: ``current`` and ``peak`` bytes of storages saved for backward inside it."""

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        self._exclude = {int(t.untyped_storage().data_ptr()) for t in exclude}
        self._live: dict = {}
        self.current = 0
        self.peak = 0
        self.saved_calls = 0

    def _pack(self, x: torch.Tensor):
        st = x.untyped_storage()
        key = int(st.data_ptr())
        if key in self._exclude or st.nbytes() == 0:
            return x
        self.saved_calls += 1
        ent = self._live.get(key)
        if ent is None:
            self._live[key] = [1, int(st.nbytes())]
            self.current += int(st.nbytes())
            self.peak = max(self.peak, self.current)
        else:
            ent[0] += 1
        return _Held(self, key, x)

    @staticmethod
    def _unpack(h):
        return h.tensor if isinstance(h, _Held) else h

    def _release(self, key: int) -> None:
        ent = self._live.get(key)
        if ent is None:
            return
        ent[0] -= 1
        if ent[0] == 0:
            self.current -= ent[1]
            del self._live[key]

    def __enter__(self) -> "SavedTensorMeter":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def _persistent(model: torch.nn.Module) -> list:
    return list(model.parameters()) + list(model.buffers())


def peak_saved_bytes(model: torch.nn.Module, fn: Callable[[], object], *,
                     also_exclude: Iterable[torch.nn.Module] = ()) -> int:
    """Peak saved-activation bytes while ``fn()`` runs (which should build and backpropagate graphs).

    Parameters and buffers of ``model`` and of the modules in ``also_exclude`` (a reward's frozen
    classifier, whose weights are saved for the input gradient) are persistent memory, not counted."""
    keep = _persistent(model) + [t for m in also_exclude for t in _persistent(m)]
    with SavedTensorMeter(keep) as meter:
        out = fn()
        del out
    return int(meter.peak)


def step_saved_bytes(model: torch.nn.Module, schedule, x: torch.Tensor, t: int | None = None) -> int:
    """Saved-activation bytes of one sampler step on the batch ``x`` (the unit of the memory tables)."""
    t = schedule.num_steps if t is None else t
    with SavedTensorMeter(_persistent(model)) as meter:
        y = schedule.step(model, x.detach(), t, torch.zeros_like(x))
        peak = meter.peak
        del y
    return int(peak)


def bootstrap_ci(values: np.ndarray, stat: Callable[[np.ndarray], float], *, reps: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat`` over the rows of ``values`` (replications)."""
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    bs = np.array([stat(values[rng.integers(0, n, n)]) for _ in range(reps)])
    a = (1 - level) / 2
    return float(np.quantile(bs, a)), float(np.quantile(bs, 1 - a))
