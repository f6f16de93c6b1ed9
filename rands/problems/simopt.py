"""SimOpt models as R&S problems: each system is one factor setting of a model.

``from_simopt("SSCONT", grid={"s": [...], "S": [...]}, response=cost, minimize=True)``
turns a model of the SimOpt library (Eckman, Henderson & Shashaani, INFORMS J.
Comput. 35(2), 2023; ``pip install simoptlib``, the ``rands[simopt]`` extra) into a
problem with one system per factor setting.

Random numbers: SimOpt models draw from MRG32k3a (L'Ecuyer 1999) generators,
``n_rngs`` per replication. Replication r of system i reads, for its j-th
generator, the MRG32k3a position (stream, substream, subsubstream) =
``(s(seed, i), r, j)``, where the stream index ``s`` is derived from the rands
stream key of system i (the common key under CRN: then s depends on the seed
only, so replication r of every system sees the same inputs, the natural CRN of
SimOpt's own experiments). Any block of (i, r) pairs is reproducible on its own,
on any rank. Positions are reached by jumping with powers of the generator's
transition matrices, computed exactly in integer arithmetic (checked against
``mrg32k3a``'s own ``s_ss_sss_index`` constructor in the tests).
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ParameterError, SimulationError
from ..streams import Streams
from ..params import Boolean, Callable_, InstanceOf, Mapping_, NoneValue, Sequence_, String, optional
from .base import Problem, check_block

__all__ = ["SimOptProblem", "from_simopt", "simopt_models"]

_STREAM_BITS = 50   # MRG32k3a has 2**191 / 2**141 = 2**50 streams


def _import_simopt():
    try:
        import simopt.directory as directory
        from mrg32k3a import mrg32k3a as mrg
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ParameterError("SimOpt models need simoptlib: pip install 'rands[simopt]' "
                             f"({exc})") from None
    return directory, mrg


def simopt_models() -> list[str]:
    """Abbreviations of the SimOpt models available (``"SSCONT"``, ``"CNTNEWS"``, ...)."""
    directory, _ = _import_simopt()
    return sorted(directory.model_directory)


def _model_class(model) -> type:
    directory, _ = _import_simopt()
    models = directory.model_directory
    if isinstance(model, type) and hasattr(model, "config_class"):
        return model
    if isinstance(model, str):
        key = model.strip().upper()
        if key in models:
            return models[key]
        by_long = {c.class_name.lower(): c for c in models.values()}
        if model.strip().lower() in by_long:
            return by_long[model.strip().lower()]
    if isinstance(model, str) and model.strip().upper() in directory.problem_directory:
        owner = directory.problem_directory[model.strip().upper()].model_class.class_name_abbr
        raise ParameterError(f"{model!r} is a SimOpt problem, not a model: its model is {owner!r} "
                             f"(valid models: {', '.join(sorted(models))})")
    raise ParameterError(f"unknown SimOpt model {model!r}; valid: {', '.join(sorted(models))}")


class _Jumps:
    """Exact MRG32k3a jumps: powers A^(2^b * 2^e) of both components, mod m1 / m2."""

    def __init__(self, mrg) -> None:
        self.m = (int(mrg.mrgm1), int(mrg.mrgm2))
        self.seed = (12345,) * 6   # the package's default reference seed (SimOpt uses it)
        self.tables = {}
        for name, a1, a2, bits in (("stream", mrg.A1p141, mrg.A2p141, _STREAM_BITS),
                                   ("sub", mrg.A1p94, mrg.A2p94, 47),
                                   ("subsub", mrg.A1p47, mrg.A2p47, 47)):
            self.tables[name] = [self._powers(a1, self.m[0], bits), self._powers(a2, self.m[1], bits)]

    @staticmethod
    def _matmul(a, b, m):
        return tuple(tuple(sum(a[i][t] * b[t][j] for t in range(3)) % m for j in range(3))
                     for i in range(3))

    def _powers(self, a, m, bits):
        cur = tuple(tuple(int(x) for x in row) for row in np.asarray(a, dtype=object))
        out = []
        for _ in range(bits):
            out.append(cur)
            cur = self._matmul(cur, cur, m)
        return out

    def jump(self, state: tuple[int, ...], level: str, n: int) -> tuple[int, ...]:
        """State advanced by ``n`` (sub)(sub)streams of the given level."""
        halves = [list(state[:3]), list(state[3:])]
        for part in (0, 1):
            v = halves[part]
            m = self.m[part]
            table = self.tables[level][part]
            b = 0
            while n >> b:
                if (n >> b) & 1:
                    a = table[b]
                    v = [(a[i][0] * v[0] + a[i][1] * v[1] + a[i][2] * v[2]) % m for i in range(3)]
                b += 1
            halves[part] = v
        return tuple(halves[0]) + tuple(halves[1])


_FAST: bool | None = None   # whether _fast_generator builds what the constructor builds


def _fast_generator(cls, state: tuple[int, ...]):
    """``cls(ref_seed=state)`` without its matrix jumps (which cost ~200 us): the same attributes
    set directly. Used only after :func:`_generator` has checked it equals the constructor."""
    g = cls.__new__(cls)
    g.__dict__.update(version=2, generate=_FAST_GENERATE, ref_seed=state, _current_state=state,
                      gauss_next=None, stream_start=np.array(state, dtype=object),
                      substream_start=np.array(state, dtype=object),
                      subsubstream_start=np.array(state, dtype=object), s_ss_sss_index=[0, 0, 0])
    return g


_FAST_GENERATE = None


def _same(a, b) -> bool:
    if set(a.__dict__) != set(b.__dict__):
        return False
    for key, va in a.__dict__.items():
        vb = b.__dict__[key]
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            if not (isinstance(va, np.ndarray) and isinstance(vb, np.ndarray)
                    and va.dtype == vb.dtype and va.tolist() == vb.tolist()):
                return False
        elif va != vb or type(va) is not type(vb):
            return False
    return [a.random() for _ in range(4)] + [a.normalvariate(0, 1)] == \
        [b.random() for _ in range(4)] + [b.normalvariate(0, 1)]


def _generator(state: tuple[int, ...]):
    """A fresh ``MRG32k3a`` whose current state is ``state`` (as ``MRG32k3a(ref_seed=state)``).

    The fast path is checked once per process against the constructor (attributes and the
    first draws); if the installed mrg32k3a builds its generators differently, the
    constructor is used for every generator."""
    global _FAST, _FAST_GENERATE
    cls = _import_simopt()[1].MRG32k3a
    if _FAST is None:
        ref = cls(ref_seed=(1, 2, 3, 4, 5, 6))
        _FAST_GENERATE = ref.__dict__.get("generate")
        try:
            _FAST = _same(_fast_generator(cls, (1, 2, 3, 4, 5, 6)), ref)
        except Exception:  # noqa: BLE001 - any difference means: use the constructor
            _FAST = False
    return _fast_generator(cls, state) if _FAST else cls(ref_seed=state)


def _settings(grid, factors: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    base = dict(factors or {})
    if grid is None:
        raise ParameterError("grid is required: a table {factor: [values]} (all combinations) "
                             "or a list of {factor: value} settings, one per system")
    if isinstance(grid, Mapping):
        if not grid:
            raise ParameterError("grid must name at least one factor")
        names = list(grid)
        for n in names:
            if isinstance(grid[n], (str, bytes)) or not isinstance(grid[n], Sequence) or not grid[n]:
                raise ParameterError(f"grid[{n!r}] must be a non-empty list of values, got {grid[n]!r}")
        combos = itertools.product(*(list(grid[n]) for n in names))
        return [{**base, **dict(zip(names, c))} for c in combos]
    if isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        out = []
        for n, s in enumerate(grid):
            if not isinstance(s, Mapping):
                raise ParameterError(f"grid[{n}] must be a {{factor: value}} table, got {s!r}")
            out.append({**base, **dict(s)})
        return out
    raise ParameterError(f"grid must be a table of value lists or a list of settings, got {grid!r}")


class SimOptProblem(Problem):
    """Systems = factor settings of one SimOpt model; sample = one replication's response.

    Parameters
    ----------
    model : SimOpt model abbreviation (``"SSCONT"``, ``"CNTNEWS"``, ``"MM1"``, ...;
        :func:`simopt_models` lists them) or a SimOpt ``Model`` subclass.
    grid : ``{factor: [values, ...]}`` (every combination, first factor outermost)
        or a list of ``{factor: value}`` settings, one per system.
    factors : fixed factor values shared by every system (grid values override).
    response : name of one of the model's responses, or a callable
        ``f(responses: dict) -> float`` (picklable to run on processes or MPI).
        May be omitted when the model has one scalar response.
    minimize : True when smaller is better (the sample is the negated response,
        since rands selects the largest mean). Means in results are then negated.

    Raises :class:`ParameterError` naming an unknown model, factor or response
    (with the valid ones), or a setting the model refuses, before any selection.
    """

    name = "simopt"
    true_means = None
    _parameter_constraints = {"model": [String("a SimOpt model name such as 'SSCONT'"),
                                        InstanceOf(type, "a SimOpt Model subclass")],
                              "grid": [Mapping_(), Sequence_(Mapping_(), what="a list of {factor: value} "
                                                                             "settings"),
                                       NoneValue()],
                              "factors": optional([Mapping_()]),
                              "response": optional([String("a response name"), Callable_()]),
                              "minimize": [Boolean()]}

    def __init__(self, model="SSCONT", grid=None, factors: Mapping[str, Any] | None = None,
                 response: str | Callable[[dict], float] | None = None, minimize: bool = False):
        cls = _model_class(model)
        self.model = cls.class_name_abbr
        self._cls = cls
        defaults = cls.config_class().model_dump(by_alias=True)
        valid = sorted(defaults)
        self.grid = grid
        self.factors = dict(factors or {})
        self.settings = _settings(grid, self.factors)
        for s in self.settings:
            unknown = sorted(set(s) - set(valid))
            if unknown:
                raise ParameterError(f"unknown factor(s) {unknown} for SimOpt model {self.model}; "
                                     f"valid: {', '.join(valid)}")
        self.k = len(self.settings)
        if self.k < 2:
            raise ParameterError(f"the grid gives {self.k} system(s); at least 2 are needed")
        if not isinstance(minimize, (bool, np.bool_)):
            raise ParameterError(f"minimize must be true or false, got {minimize!r}")
        self.minimize = bool(minimize)
        order = list(dict.fromkeys(n for s in self.settings for n in s))   # grid order
        self._varying = [n for n in order if len({repr(s.get(n)) for s in self.settings}) > 1]
        self._models = None
        self._jumps = None
        self._stream_starts: dict[int, tuple[int, ...]] = {}
        self.response = response
        self._check_response(response)

    # -- construction checks -------------------------------------------------------------
    def _build_models(self) -> list:
        models = []
        for i, s in enumerate(self.settings):
            try:
                models.append(self._cls(fixed_factors=dict(s)))
            except Exception as exc:  # noqa: BLE001 - pydantic's error, one line
                msg = " ".join(str(exc).split())
                raise ParameterError(f"SimOpt model {self.model} refuses system {i} "
                                     f"({self._describe(s)}): {msg[:300]}") from None
        return models

    def _check_response(self, response) -> None:
        self._models = self._build_models()
        responses = self._replicate(0, 0, self._stream_start(0))
        scalars = sorted(n for n, v in responses.items() if np.ndim(v) == 0)
        if response is None:
            if len(scalars) != 1:
                raise ParameterError(f"SimOpt model {self.model} has several responses: pass "
                                     f"response= one of {', '.join(scalars)} or a callable")
            self.response = scalars[0]
        elif isinstance(response, str):
            if response not in responses:
                raise ParameterError(f"unknown response {response!r} of SimOpt model {self.model}; "
                                     f"valid: {', '.join(scalars)}")
            if response not in scalars:
                raise ParameterError(f"response {response!r} of SimOpt model {self.model} is not a "
                                     f"scalar; scalar responses: {', '.join(scalars)}")
        elif callable(response):
            try:
                value = float(response(responses))
            except Exception as exc:  # noqa: BLE001
                raise ParameterError(f"response callable failed on {self.model}'s responses "
                                     f"({', '.join(sorted(responses))}): {type(exc).__name__}: {exc}"
                                     ) from None
            if not np.isfinite(value):
                raise ParameterError(f"response callable returned {value} on {self.model}")
        else:
            raise ParameterError(f"response must be a response name or a callable, got {response!r}")

    # -- random numbers --------------------------------------------------------------------
    def _stream_start(self, key) -> tuple[int, ...]:
        stream = int(key) >> (64 - _STREAM_BITS)
        start = self._stream_starts.get(stream)
        if start is None:
            if self._jumps is None:
                self._jumps = _Jumps(_import_simopt()[1])
            start = self._jumps.jump(self._jumps.seed, "stream", stream)
            self._stream_starts[stream] = start
        return start

    def mrg_states(self, stream_start: tuple[int, ...], rep: int) -> list[tuple[int, ...]]:
        """States of the ``n_rngs`` generators of replication ``rep`` (substream rep, subsubstream j)."""
        if self._jumps is None:
            self._jumps = _Jumps(_import_simopt()[1])
        sub = self._jumps.jump(stream_start, "sub", int(rep))
        out = [sub]
        for _ in range(1, self._cls.n_rngs):
            out.append(self._jumps.jump(out[-1], "subsub", 1))
        return out

    def _replicate(self, system: int, rep: int, stream_start) -> dict:
        rngs = [_generator(st) for st in self.mrg_states(stream_start, rep)]
        model = self._models[system]
        model.before_replicate(rngs)
        responses, _ = model.replicate()
        return responses

    # -- the protocol ----------------------------------------------------------------------
    def simulate(self, systems, reps, streams: Streams) -> np.ndarray:
        systems, reps = check_block(systems, reps, self.k)
        if self._models is None:
            self._models = self._build_models()
        keys = streams.keys(systems).tolist()       # Python ints: cheap to shift and hash
        sign = -1.0 if self.minimize else 1.0
        out = np.empty(systems.shape[0], dtype=np.float64)
        for n in range(systems.shape[0]):
            i, r = int(systems[n]), int(reps[n])
            try:
                responses = self._replicate(i, r, self._stream_start(keys[n]))
                value = (self.response(responses) if callable(self.response)
                         else responses[self.response])
                out[n] = sign * float(value)
            except Exception as exc:  # noqa: BLE001 - re-raised with its location
                raise SimulationError(f"SimOpt model {self.model} raised {type(exc).__name__}: {exc}",
                                      system=i, replication=r) from exc
        return out

    def params(self) -> dict[str, Any]:
        resp = self.response
        if callable(resp):
            resp = getattr(resp, "__qualname__", repr(resp))
        return {"model": self.model, "grid": self.grid, "factors": self.factors,
                "response": resp, "minimize": self.minimize}

    def _describe(self, setting: Mapping[str, Any]) -> str:
        names = self._varying if getattr(self, "_varying", None) else list(setting)
        return ", ".join(f"{n}={setting[n]!r}" for n in names if n in setting)

    def label(self, system: int) -> str:
        return self._describe(self.settings[int(system)])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_models"] = None      # rebuilt on first use in a worker
        state["_jumps"] = None
        state["_stream_starts"] = {}
        state["_cls"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cls = _model_class(self.model)


def from_simopt(model, *, grid, factors: Mapping[str, Any] | None = None,
                response: str | Callable[[dict], float] | None = None,
                minimize: bool = False) -> SimOptProblem:
    """A problem whose systems are the factor settings ``grid`` of SimOpt model ``model``.

    See :class:`SimOptProblem`. Example: the best (s, S) policy of SimOpt's SSCONT::

        cost = lambda r: r["avg_backorder_costs"] + r["avg_order_costs"] + r["avg_holding_costs"]
        prob = from_simopt("SSCONT", grid={"s": [700, 800, 900], "S": [1500, 2000]},
                           response=cost, minimize=True)
    """
    return SimOptProblem(model, grid=grid, factors=factors, response=response, minimize=minimize)
