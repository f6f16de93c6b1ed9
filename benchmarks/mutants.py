"""Planted-bug check (issue 19): does the fast test suite catch plausible wrong statistics?

Each mutant is one small patch -- an exact string that must occur exactly once in one file,
replaced by a plausible bug -- applied to a COPY of the tree (copied to /tmp/mutants/<name> without .git,
never the checkout). The tests that should catch it run in the copy with PYTHONPATH pointing
at it (the copy's ``rands`` is checked to be the one imported), ``-x``, under a timeout.
A mutant is *killed* when those tests fail, *survived* when they pass, *stale* when its
string no longer matches exactly once (the code moved; fix the mutant), *timeout* when the
tests ran past the limit (counted as killed: a hang is caught, but is listed apart).

Run (one mutant at a time, low priority, resumable: finished mutants are skipped):

    nice -n 19 python benchmarks/mutants.py                 # all
    nice -n 19 python benchmarks/mutants.py kn_eta_alpha    # some, by name
    python benchmarks/mutants.py --report                   # rewrite the markdown only

Results: benchmarks/results/mutants.json and benchmarks/results/mutants.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path("/tmp/mutants")
OUT_JSON = ROOT / "benchmarks" / "results" / "mutants.json"
OUT_MD = ROOT / "benchmarks" / "results" / "mutants.md"
TIMEOUT = 480
NAMESPACED = ("applications", "parallel")   # top-level folders installed as rands.<name>
EXCLUDE = [".git", ".venv*", "studies", "*.egg-info", ".pytest_cache"]

FP = "tests/test_fixed_precision.py"
FB = "tests/test_fixed_budget.py"
KW = "tests/mutants/test_kills.py"


@dataclass
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: list[str]          # pytest arguments (files, node ids, -k)
    why: str                  # the bug, in words


M = Mutant
MUTANTS: list[Mutant] = [
    # ---------------------------------------------------------------- constants
    M("rinott_h_k_minus_2", "rands/procedures/fixed_precision/constants.py",
      "inner = np.exp((k - 1) * np.log1p(-q))", "inner = np.exp((k - 2) * np.log1p(-q))",
      [FP, "-k", "rinott_h"], "Rinott integrand raised to k-2 instead of k-1"),
    M("rinott_h_nu_scale", "rands/procedures/fixed_precision/constants.py",
      "z = h / np.sqrt(nu * (inv[None, :] + inv[:, None]))",
      "z = h / np.sqrt((nu + 1) * (inv[None, :] + inv[:, None]))",
      [FP, "-k", "rinott_h"], "Rinott's integrand scaled with n0 instead of n0-1"),
    M("kn_eta_alpha_not_split", "rands/procedures/fixed_precision/constants.py",
      "np.log(2.0 * alpha / (k - 1))", "np.log(2.0 * alpha)",
      [FP, "-k", "kn_eta"], "KN eta with alpha instead of alpha/(k-1)"),
    M("kn_eta_exponent_n0", "rands/procedures/fixed_precision/constants.py",
      "-2.0 / (n0 - 1) * np.log", "-2.0 / n0 * np.log",
      [FP, "-k", "kn_eta"], "KN eta exponent -2/n0 instead of -2/(n0-1)"),
    M("kn_eta_no_half", "rands/procedures/fixed_precision/constants.py",
      "return 0.5 * float(np.expm1(", "return float(np.expm1(",
      [FP, "-k", "kn_eta"], "KN eta without the factor 1/2"),
    M("kn_h2_n0", "rands/procedures/fixed_precision/constants.py",
      "return 2.0 * kn_eta(k, alpha, n0) * (n0 - 1)", "return 2.0 * kn_eta(k, alpha, n0) * n0",
      [FP, "-k", "kn_eta or brute_force"], "KN h^2 = 2 eta n0 instead of 2 eta (n0-1)"),
    M("gsp_target_k", "rands/procedures/fixed_precision/constants.py",
      "np.log1p(-alpha1) / (k - 1)))", "np.log1p(-alpha1) / k))",
      [FP, "-k", "gsp_eta"], "GSP eta's per-comparison error with k instead of k-1"),
    M("gsp_min_not_min", "rands/procedures/fixed_precision/constants.py",
      "return x, w * 2.0 * g * sf", "return x, w * g",
      [FP, "-k", "gsp_eta"], "GSP eta integrates over one chi2, not the minimum of two"),
    # ---------------------------------------------------------------- Rinott stage
    M("rinott_stage_nu_n0", "rands/procedures/fixed_precision/_core.py",
      "h = rinott_h(int(k_const or m), 1.0 - alpha, n0 - 1)",
      "h = rinott_h(int(k_const or m), 1.0 - alpha, n0)",
      [FP, KW, "-k", "rinott"], "Rinott h with n0 degrees of freedom in place of n0-1"),
    M("rinott_stage_k_minus_1", "rands/procedures/fixed_precision/_core.py",
      "h = rinott_h(int(k_const or m), 1.0 - alpha, n0 - 1)",
      "h = rinott_h(max(2, int(k_const or m) - 1), 1.0 - alpha, n0 - 1)",
      [FP, KW, "-k", "rinott"], "Rinott h with k-1 systems"),
    M("rinott_h_not_squared", "rands/procedures/fixed_precision/_core.py",
      "np.ceil(h * h * s2 / (delta * delta))", "np.ceil(h * s2 / (delta * delta))",
      [FP, KW, "-k", "rinott"], "Rinott N_i = (h S_i^2 / delta^2), h not squared"),
    M("rinott_var_ddof0", "rands/procedures/fixed_precision/_core.py",
      "s2 = x.var(axis=1, ddof=1)", "s2 = x.var(axis=1, ddof=0)",
      [FP, KW, "-k", "rinott"], "Rinott first-stage variance with ddof=0"),
    M("rinott_second_stage_short", "rands/procedures/fixed_precision/_core.py",
      "need = np.where(done, 0, n_tot - n0)", "need = np.where(done, 0, n_tot - n0 - 1)",
      [FP, KW, "-k", "rinott"], "Rinott second stage one sample short (off by one)"),
    # ---------------------------------------------------------------- KN engine (stable parts)
    M("kn_h2_alpha_doubled", "rands/procedures/fixed_precision/kn_engine.py",
      "kn_h2(int(s), alpha, n0, cb)", "kn_h2(int(s), 2.0 * alpha, n0, cb)",
      [FP, KW, "-k", "kn and not gsp"], "KN matches at level 2 alpha"),
    M("kn_c_h2_scaled_once", "rands/procedures/fixed_precision/kn_engine.py",
      "kn_h2(int(s), alpha, n0, cb) / (cb * cb)", "kn_h2(int(s), alpha, n0, cb) / cb",
      ["tests/test_kn_c.py"], "KN with boundary parameter c: h^2 / c instead of h^2 / c^2 in the c = 1 form"),
    M("kn_first_stage_short", "rands/procedures/fixed_precision/kn_engine.py",
      "r=np.full(sizes.shape[0], n0 + int(head_n), dtype=np.int64)",
      "r=np.full(sizes.shape[0], n0 - 1 + int(head_n), dtype=np.int64)",
      [KW, "-k", "by_hand"], "KN elimination stage counter starts at n0-1 (off by one)"),
    M("kn_coef_no_half", "rands/procedures/fixed_precision/kn_engine.py",
      "coef_all = m.h2 / (2.0 * delta) * inv_nu", "coef_all = m.h2 / delta * inv_nu",
      [KW, "-k", "by_hand"], "KN continuation region h^2 S^2/delta (no 1/2)"),
    M("kn_var_ddof0", "rands/procedures/fixed_precision/kn_engine.py",
      "inv_nu = 1.0 / (n0 - 1)\n    coef_all", "inv_nu = 1.0 / n0\n    coef_all",
      [KW, "-k", "by_hand"], "KN S_il^2 with ddof=0 (divides by n0)"),
    # ---------------------------------------------------------------- KT
    M("kt_alpha_not_halved", "rands/procedures/fixed_precision/kt.py",
      "a_r = alpha / 2.0 ** rnd", "a_r = alpha",
      [FP, KW, "-k", "kt"], "KT's alpha not halved per round"),
    M("kt_final_alpha", "rands/procedures/fixed_precision/kt.py",
      "a_f = alpha / 2.0 ** (R + 1)", "a_f = alpha / 2.0 ** R",
      [FP, KW, "-k", "kt"], "KT final stage at alpha/2^R instead of alpha/2^(R+1)"),
    M("kt_groups_too_big", "rands/procedures/fixed_precision/kt.py",
      "np.array_split(survivors, -(-s // g))", "np.array_split(survivors, max(1, s // g))",
      [FP, KW, "-k", "kt"], "KT groups larger than g (floor instead of ceil)"),
    M("kt_winner_position", "rands/procedures/fixed_precision/kt.py",
      "alive[grp[int(w)]] = True", "alive[grp[0]] = True",
      [FP, KW, "-k", "kt"], "KT advances the first member, not the match winner"),
    M("kt_rounds_floor", "rands/procedures/fixed_precision/kt.py",
      "size = -(-size // g)", "size = max(1, size // g)",
      [FP, KW, "-k", "kt"], "KT round count from floor(size/g)"),
    # ---------------------------------------------------------------- GSP
    M("gsp_constants_swapped", "rands/procedures/fixed_precision/gsp.py",
      "eta = gsp_eta(k, float(self.alpha1), n1)", "eta = gsp_eta(k, float(self.alpha2), n1)",
      [FP, KW, "-k", "gsp"], "GSP screening eta from alpha2 (constants swapped)"),
    M("gsp_screen_no_nu", "rands/procedures/fixed_precision/gsp.py",
      "if t * d < -eta * np.sqrt(nu * tmax):", "if t * d < -eta * np.sqrt(tmax):",
      [FP, "-k", "gsp"], "GSP screening boundary without nu"),
    # ---------------------------------------------------------------- fixed budget
    M("ocba_best_ratio_no_sqrt", "rands/procedures/fixed_budget/ocba.py",
      "r[b] = sds[b] * np.sqrt(terms.sum())", "r[b] = sds[b] * terms.sum()",
      [FB, "-k", "ocba"], "OCBA's ratio for the best without the square root (reference)"),
    M("ocba_compiled_best_ratio", "rands/procedures/fixed_budget/ocba.py",
      "r[b] = sd[b] * np.sqrt(terms)", "r[b] = sd[b] * terms",
      [FB, "-k", "ocba"], "OCBA's ratio for the best without the square root (compiled)"),
    M("ocba_ratio_not_squared", "rands/procedures/fixed_budget/ocba.py",
      "r[i] = (sd[i] / d) ** 2", "r[i] = sd[i] / d",
      [FB, "-k", "ocba"], "OCBA non-best ratio (s/d) instead of (s/d)^2 (compiled)"),
    M("ocba_var_ddof0", "rands/procedures/fixed_budget/ocba.py",
      "/ (n[i] - 1.0) if n[i] >= 2 else 0.0", "/ n[i] if n[i] >= 2 else 0.0",
      [FB, "-k", "ocba"], "OCBA variances with ddof=0 (compiled)"),
    M("ocba_remainder_short", "rands/procedures/fixed_budget/ocba.py",
      "for j in _top_first_nb(frac, rest):", "for j in _top_first_nb(frac, rest - 1):",
      [f"{FB}::test_compiled_ocba_step_equals_reference_allocation", f"{FB}::test_ocba_ratios_closed_form"],
      "OCBA largest remainders hand out one sample too few"),
    M("budget_check_off_by_one", "rands/procedures/base.py",
      "if budget < n0 * k:", "if budget < n0 * k - 1:",
      [FB, KW, "-k", "invalid or budget"], "budget check admits n0*k - 1 (off by one)"),
    M("equal_over_budget", "rands/procedures/fixed_budget/equal.py",
      "per = int(self.budget) // ctx.k", "per = -(-int(self.budget) // ctx.k)",
      [FB, "-k", "never_exceeded"], "equal allocation rounds the share up (over budget)"),
    M("fbkt_weight_exponent", "rands/procedures/fixed_budget/fbkt.py",
      "* ((phi - 1) / phi) ** r", "* ((phi - 1) / phi) ** (r - 1)",
      [FB, "-k", "fbkt"], "FBKT round weight exponent r-1"),
    M("fbkt_rounds_off_by_one", "rands/procedures/fixed_budget/fbkt.py",
      "while p * (1 << r) < k:", "while p * (1 << r) <= k:",
      [FB, "-k", "fbkt"], "FBKT round count off by one"),
    M("fbkt_share_over", "rands/procedures/fixed_budget/fbkt.py",
      "n = int(round_budget) // m", "n = -(-int(round_budget) // m)",
      [FB, "-k", "fbkt or never_exceeded"], "FBKT per-player share rounded up"),
    M("argmax_nan_best", "rands/procedures/fixed_budget/_common.py",
      "np.where(np.isnan(x), -np.inf, x)", "np.where(np.isnan(x), np.inf, x)",
      [FB, KW, "-k", "ocba or equal or argmax"], "a NaN mean is selected as the best"),
    # ---------------------------------------------------------------- PASS
    M("pass_c_not_doubled", "rands/procedures/pass_.py",
      "return -2.0 * math.log(alpha)", "return -math.log(alpha)",
      ["tests/test_pass.py"], "PASS c = -log(alpha) instead of -2 log(alpha)"),
    M("pass_boundary_sign", "rands/procedures/pass_.py",
      "out = t * (means - standard) <= -boundary(t, c)",
      "out = t * (means - standard) <= boundary(t, c)",
      ["tests/test_pass.py"], "PASS elimination boundary sign flipped"),
    M("pass_boundary_divide", "rands/procedures/pass_.py",
      "return np.sqrt((c + np.log(t1)) * t1)", "return np.sqrt((c + np.log(t1)) / t1)",
      ["tests/test_pass.py"], "PASS boundary g_c(t) divides by t+1"),
    # ---------------------------------------------------------------- streams / CRN
    M("stream_drops_replication", "rands/streams.py",
      "_mix64(np.uint64(rep) * _REP_SALT + _GAMMA)", "_mix64(np.uint64(0) * _REP_SALT + _GAMMA)",
      ["tests/test_streams.py", "tests/test_core.py"], "stream state ignores the replication"),
    M("crn_ignored", "rands/streams.py",
      "return stream_key(seed_key, COMMON_STREAM if crn else system)",
      "return stream_key(seed_key, system)",
      [KW, "tests/test_streams.py", "-k", "stream or crn"], "CRN flag ignored (independent streams)"),
    M("crn_start_shift", "rands/sampling.py",
      "return np.broadcast_to(int(start) + np.arange(n)[None, :]",
      "return np.broadcast_to(int(start) + 1 + np.arange(n)[None, :]",
      [KW, FB, FP, "-k", "common_start or crn_pairs or replication_indices"],
      "a CRN draw at a common start shifts replications by one"),
    # ---------------------------------------------------------------- P3C
    M("p3c_alpha_not_split", "rands/procedures/p3c.py",
      "return float(self.alpha) * split", "return float(self.alpha)",
      [KW, "tests/test_p3c.py", "-k", "splits_alpha or pcs_small"],
      "DC/P3C within-group stage at alpha instead of alpha_split * alpha"),
    M("p3c_final_reuses_data", "rands/procedures/p3c.py",
      "start = int(ctx.next_rep.max())", "start = 0",
      [KW, "tests/test_p3c.py", "-k", "twice or pcs_small"],
      "P3C final stage reuses replications from replication 0 (conquer data)"),
    # ---------------------------------------------------------------- RiskPO
    M("riskpo_weight_band", "applications/riskpo/mvar.py",
      "part = (c - base) / (t.hi - t.lo)", "part = (c - base) / t.hi",
      ["tests/test_riskpo.py"], "RiskPO RVaR weight divided by hi instead of hi-lo"),
    M("riskpo_exact_rvar", "applications/riskpo/mvar.py",
      "return float((overlap * v).sum() / (hi - lo))", "return float((overlap * v).sum() / hi)",
      ["tests/test_riskpo.py"], "exact RVaR normalised by hi"),
    M("riskpo_empirical_off_by_one", "applications/riskpo/mvar.py",
      "right = torch.arange(1, n + 1, dtype=xs.dtype) / n", "right = torch.arange(0, n, dtype=xs.dtype) / n",
      ["tests/test_riskpo.py"], "RiskPO empirical RVaR weights off by one quantile"),
    M("riskpo_quantile_lower", "applications/riskpo/mvar.py",
      "min(np.searchsorted(cdf, u - 1e-12), len(v) - 1)", "min(np.searchsorted(cdf, u - 1e-12) + 1, len(v) - 1)",
      ["tests/test_riskpo.py"], "exact quantile one atom too high"),
    # ---------------------------------------------------------------- FLOPS
    M("flops_floor_ignored", "applications/flops/allocation.py",
      "ok = c * ws >= floor - 1e-12", "ok = c * ws >= -1e-12",
      ["tests/test_flops.py", "-k", "floor or allocation or neyman"], "FLOPS allocation ignores floors"),
    M("flops_remainder_short", "applications/flops/allocation.py",
      "base[key[:left]] += 1", "base[key[:max(left - 1, 0)]] += 1",
      ["tests/test_flops.py", "-k", "floor or allocation or remainder"],
      "largest remainder hands out one unit too few"),
    # ---------------------------------------------------------------- RLR
    M("rlr_loo_baseline_biased", "applications/rlr/estimator.py",
      "return R - (R.sum() - R) / (B - 1)", "return R - R.sum() / B",
      ["tests/test_rlr.py", "-k", "unbiased_estimators"],
      "RLR baseline includes the chain's own reward (biased)"),
    M("rlr_subchain_double_step", "applications/rlr/estimator.py",
      "for t in range(term.j + term.h - 1, term.j, -1):", "for t in range(term.j + term.h - 1, term.j - 1, -1):",
      ["tests/test_rlr.py", "-k", "unbiased_estimators"],
      "RLR sub-chain runs step j twice (through the chain, then again in the log-prob mean)"),
    M("rlr_subchain_last_step_only", "applications/rlr/estimator.py",
      "                    x = schedule.step(model, x, t, noise.eps[t - 1])\n                m = schedule.mean(",
      "                    x = schedule.step(model, x, t, noise.eps[t - 1]).detach()\n                m = schedule.mean(",
      ["tests/test_rlr.py", "-k", "unbiased_estimators"],
      "RLR sub-chain gradient through its last step only (chain detached)"),
    M("rlr_logprob_mean", "applications/rlr/estimator.py",
      'baseline="loo", reduce: str = "sum"', 'baseline="loo", reduce: str = "mean"',
      ["tests/test_rlr.py", "-k", "unbiased_estimators"],
      "RLR log-prob averaged over dimensions instead of summed"),
]


# why a mutant survives (equivalent, or why no fast test can see it); shown in the report
SURVIVOR_NOTES: dict[str, str] = {}
# the 16 survivors of the first run (2026-12-03) and what killed them (shown in the report)
RESOLVED = {
    "kn_first_stage_short, kn_coef_no_half": "test_kn_equals_the_rule_applied_by_hand (KN by hand "
    "from the problem's samples: sample sizes, means, best; serial and 2 processes; CRN too)",
    "kt_winner_position": "test_kt_advances_the_match_winner (best system last, 5 sigma ahead)",
    "kt_rounds_floor": "test_kt_rounds_is_the_number_of_group_splits (kt_rounds against kt_groups)",
    "gsp_constants_swapped": "test_gsp_uses_alpha1_for_screening_and_alpha2_for_rinott",
    "argmax_nan_best": "test_argmax_first_ignores_nan_and_breaks_ties_low",
    "crn_ignored": "stale numba caches: a cached kernel that inlines streams.system_stream_key ran "
    "the unpatched code (the runner now purges the copy's numba caches when the patched file is "
    "compiled); test_crn_correlates_systems_and_independent_streams_do_not",
    "crn_start_shift": "test_draw_at_a_common_start_takes_those_replications",
    "p3c_final_reuses_data": "test_no_sample_is_drawn_twice (P3C, DC, KT-CRN record every (system, rep))",
    "riskpo_*, flops_*, rlr_loo_baseline_biased": "runner bug: the tests imported the checkout's "
    "rands.applications, not the patched copy; fixed, all killed by their own modules' tests",
}


def _copy(dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # copy2 keeps modification times, so numba's on-disk caches of unchanged files stay valid
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(*EXCLUDE), symlinks=True)
    # the editable install maps rands.applications / rands.parallel to the checkout's top-level
    # folders; links inside the copy's rands/ make the path finder pick the copy's instead
    for sub in NAMESPACED:
        (dst / "rands" / sub).symlink_to(Path("..") / sub)


def _apply(root: Path, m: Mutant) -> str | None:
    """Patch the copy; None on success, else why not (stale)."""
    p = root / m.file
    if not p.exists():
        return f"{m.file} missing"
    text = p.read_text()
    n = text.count(m.old)
    if n != 1:
        return f"string found {n} times in {m.file}"
    p.write_text(text.replace(m.old, m.new))
    if "numba" in text:
        # numba's on-disk cache of a compiled caller is checked against the caller's own file
        # only: a kernel that inlines the patched function would run the unpatched code
        for f in [*root.rglob("*.nbi"), *root.rglob("*.nbc")]:
            f.unlink()
    return None


def _pytest(root: Path, args: list[str], timeout: float) -> tuple[str, float, str]:
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    check = subprocess.run([sys.executable, "-c", "import rands, rands.applications, rands.parallel; "
                            "print(rands.__file__, rands.applications.__file__, rands.parallel.__file__)"],
                           cwd=root, env=env, capture_output=True, text=True)
    if check.stdout.count(str(root)) != 3 or str(ROOT) in check.stdout:
        raise RuntimeError(f"the copy is not the imported package: {check.stdout} {check.stderr}")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", *args]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    dt = time.perf_counter() - t0
    tail = (r.stdout + r.stderr).strip().splitlines()
    failed = [ln.split(" - ")[0].replace("FAILED ", "") for ln in tail if ln.startswith(("FAILED", "ERROR"))]
    if r.returncode == 0:
        return "survived", dt, tail[-1] if tail else ""
    if r.returncode in (4, 5):      # usage error / nothing collected: the selection is wrong
        return "no_tests", dt, tail[-1] if tail else ""
    return "killed", dt, "; ".join(failed) or (tail[-1] if tail else "")


def _load() -> dict:
    return json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {"mutants": {}}


def _save(res: dict) -> None:
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")


def report(res: dict) -> str:
    rows = [res["mutants"][m.name] | {"name": m.name, "why": m.why} for m in MUTANTS if m.name in res["mutants"]]
    done = [r for r in rows if r["status"] in ("killed", "survived", "timeout")]
    killed = [r for r in done if r["status"] in ("killed", "timeout")]
    rate = len(killed) / len(done) if done else float("nan")
    lines = ["# Planted-bug check (issue 19)", "",
             f"Command: `nice -n 19 python benchmarks/mutants.py` (resumable; `--fresh` reruns all). "
             f"Each mutant is one string patch on a copy of the tree in /tmp/mutants/<name>; "
             f"the listed tests run there with `pytest -x` (timeout {TIMEOUT} s). The copy's "
             f"rands/ links its applications/ and parallel/ so that `rands.applications` and "
             f"`rands.parallel` are imported from the copy (before 2026-12-07 the application "
             f"mutants patched a copy the tests did not import: all of them 'survived').", "",
             "Times are from a shared 2-core machine under heavy load (7 other jobs); "
             "most of each is pytest start-up and numba compiling the patched module.", "",
             f"**Kill rate: {len(killed)}/{len(done)} = {rate:.0%}** "
             f"({len(rows)} of {len(MUTANTS)} mutants run; stale/no-test ones excluded).", "",
             f"Baseline (`--baseline`: every selection on the unpatched copy): "
             f"{sum(v == 'survived' for v in res.get('baseline', {}).values())} of "
             f"{len(res.get('baseline', {}))} pass; failing: "
             f"{[k for k, v in res.get('baseline', {}).items() if v != 'survived'] or 'none'}.", "",
             "| mutant | bug | file | status | killed by | tests run | time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['why']} | {r['file']} | {r['status']} | "
                     f"{r['detail'][:160].replace('|', '/')} | `{' '.join(r['tests'])}` | {r['time']:.0f} |")
    lines += ["", "## Survivors of the first run, resolved", ""]
    lines += [f"- {k}: {v}" for k, v in RESOLVED.items()]
    surv = [r for r in rows if r["status"] == "survived"]
    if surv:
        lines += ["", "## Survivors", ""]
        for r in surv:
            lines.append(f"- {r['name']}: {SURVIVOR_NOTES.get(r['name'], 'not yet explained')}")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--fresh", action="store_true", help="rerun mutants already recorded")
    ap.add_argument("--report", action="store_true", help="only rewrite the markdown")
    ap.add_argument("--baseline", action="store_true", help="run every selection on the clean copy")
    a = ap.parse_args()
    res = _load()
    if not a.report:
        chosen = [m for m in MUTANTS if not a.names or m.name in a.names]
        for m in chosen:
            if m.name in res["mutants"] and not (a.fresh or a.names or a.baseline):
                continue
            dst = WORK / m.name
            _copy(dst)
            if a.baseline:
                status, dt, detail = _pytest(dst, m.tests, TIMEOUT)
                print(f"baseline {m.name}: {status} {dt:.0f}s {detail}", flush=True)
                shutil.rmtree(dst, ignore_errors=True)
                res.setdefault("baseline", {})[m.name] = status
                _save(res)
                continue
            why = _apply(dst, m)
            if why:
                status, dt, detail = "stale", 0.0, why
            else:
                status, dt, detail = _pytest(dst, m.tests, TIMEOUT)
            shutil.rmtree(dst, ignore_errors=True)
            res["mutants"][m.name] = {"file": m.file, "why": m.why, "tests": m.tests, "status": status,
                                      "time": round(dt, 1), "detail": detail,
                                      "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            print(f"{m.name}: {status} {dt:.0f}s {detail[:200]}", flush=True)
            _save(res)
    OUT_MD.write_text(report(res))


if __name__ == "__main__":
    main()
