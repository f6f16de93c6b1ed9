"""Build the mini NAS-Bench-201 benchmark on scikit-learn's digits.

    python -m rands.applications.nas.build_mini --archs 500 --seeds 10 --out mini.json
    python -m rands.applications.nas.build_mini --archs 40 --seeds 20 --epochs 10 --batch-size 128 \
        --fixed-split --out applications/nas/data/mini_digits_fixed.json      # the issue-14 rebuild

Trains ``archs`` architectures (a seeded random sample of the 15,625, plus the
all-3x3-convolution cell) for ``seeds`` seeds each with :func:`train_once` and
writes the recorded validation accuracies as JSON (data, not pickle). Progress is
appended to ``OUT.partial.jsonl`` so an interrupted build resumes where it stopped.
:func:`rands.applications.nas.tabular.to_api_dict` turns the file into the
official API's dict format (``NASBench201API(that_dict)``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from .space import N_ARCHS, arch_index, arch_string
from .train import TrainConfig, train_once

FORMAT = "rands-nas201-mini-v1"


def sample_archs(n: int, seed: int = 201) -> list[int]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x61726368]))
    picks = [arch_index(("nor_conv_3x3",) * 6)]
    for a in rng.permutation(N_ARCHS):
        if len(picks) >= n:
            break
        if int(a) not in picks:
            picks.append(int(a))
    return sorted(picks)


def build(n_archs: int, n_seeds: int, out: Path, config: TrainConfig = TrainConfig()) -> dict:
    archs = sample_archs(n_archs)
    partial = out.with_name(out.name + ".partial.jsonl")
    done: dict[tuple[int, int], dict] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[(rec["arch"], rec["seed"])] = rec
    t0 = time.time()
    with partial.open("a") as fh:
        for s in range(n_seeds):           # seed-major: every architecture gets seed 0 first
            for a in archs:
                if (a, s) in done:
                    continue
                r = train_once(a, s, config)
                rec = {"arch": a, "seed": s, **r}
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                done[(a, s)] = rec
            print(f"seed {s} done: {len(done)} runs, {time.time() - t0:.0f} s", flush=True)
    valid = [[done[(a, s)]["valid_acc"] for s in range(n_seeds)] for a in archs]
    secs = [[done[(a, s)]["seconds"] for s in range(n_seeds)] for a in archs]
    data = {"format": FORMAT, "dataset": "digits", "metric": "x-valid",
            "config": dataclasses.asdict(config), "seeds": list(range(n_seeds)),
            "arch_index": archs, "archs": [arch_string(a) for a in archs],
            "valid_acc": valid, "train_seconds": secs}
    out.write_text(json.dumps(data))
    return data


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=500)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("data") / "mini_digits.json")
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--fixed-split", action="store_true",
                    help="one validation split for every seed (seed noise = training noise only)")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    build(args.archs, args.seeds, args.out,
          TrainConfig(epochs=args.epochs, batch_size=args.batch_size, fixed_split=args.fixed_split))


if __name__ == "__main__":
    main()
