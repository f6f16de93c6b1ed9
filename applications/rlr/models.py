"""Small models for CPU-scale experiments: an epsilon-prediction MLP, a digit classifier,
DDPM training on scikit-learn's 8x8 digits, NPZ save/load, and a diffusers adapter."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rands.errors import ParameterError, check_int

__all__ = ["MLPDenoiser", "MLPClassifier", "digits_data", "train_ddpm", "train_classifier", "save_npz",
           "load_npz", "DiffusersDenoiser", "model_from_config"]


def _time_embedding(t: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    ang = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


class MLPDenoiser(nn.Module):
    """eps_theta(x_t, t): MLP on [x, sinusoidal(t)] with SiLU; input/output shape (B, dim)."""

    def __init__(self, dim: int = 64, hidden: int = 256, temb: int = 32, depth: int = 2):
        super().__init__()
        self.config = {"kind": "mlp_denoiser", "dim": dim, "hidden": hidden, "temb": temb, "depth": depth}
        self.dim, self.temb = dim, temb
        layers: list = [nn.Linear(dim + temb, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, _time_embedding(t, self.temb).to(x.dtype)], dim=1))


class MLPClassifier(nn.Module):
    """Digit classifier on flattened 8x8 images in [-1, 1]: 64 -> hidden -> 10 logits."""

    def __init__(self, dim: int = 64, hidden: int = 128, classes: int = 10):
        super().__init__()
        self.config = {"kind": "mlp_classifier", "dim": dim, "hidden": hidden, "classes": classes}
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU())
        self.head = nn.Linear(hidden, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def model_from_config(config: dict) -> nn.Module:
    kind = config.get("kind")
    args = {k: v for k, v in config.items() if k != "kind"}
    if kind == "mlp_denoiser":
        return MLPDenoiser(**args)
    if kind == "mlp_classifier":
        return MLPClassifier(**args)
    raise ParameterError(f"unknown model kind {kind!r}; valid: 'mlp_denoiser', 'mlp_classifier'")


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as float32 (1797, 64) in [-1, 1] and int labels."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.data / 8.0 - 1.0).astype(np.float32), d.target.astype(np.int64)


def train_ddpm(model: nn.Module, data: np.ndarray, alphas_cumprod: np.ndarray, *, steps: int = 4000,
               batch: int = 256, lr: float = 1e-3, seed: int = 0, log_every: int = 0) -> list[float]:
    """Train eps-prediction with the simple DDPM loss ||eps - eps_theta(sqrt(a) x + sqrt(1-a) eps, t)||^2.

    Returns the loss curve (mean over blocks of 100 steps)."""
    check_int("steps", steps, low=1)
    g = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(data)
    ac = torch.as_tensor(alphas_cumprod, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    curve, acc = [], 0.0
    for it in range(steps):
        idx = torch.randint(0, X.shape[0], (batch,), generator=g)
        x0 = X[idx]
        t = torch.randint(0, ac.shape[0], (batch,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = ac[t][:, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        loss = ((model(xt, t) - eps) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc += float(loss.detach())
        if (it + 1) % 100 == 0:
            curve.append(acc / 100)
            acc = 0.0
            if log_every and (it + 1) % log_every == 0:
                print(f"ddpm step {it + 1}: loss {curve[-1]:.4f}", flush=True)
    return curve


def train_classifier(model: MLPClassifier, data: np.ndarray, labels: np.ndarray, *, steps: int = 1500,
                     lr: float = 3e-3, seed: int = 0, noise: float = 0.1, holdout: float = 0.2) -> dict:
    """Train on a random 80 % split with small input noise; returns train/held-out accuracy."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(data.shape[0])
    n_te = int(holdout * data.shape[0])
    te, tr = perm[:n_te], perm[n_te:]
    X, y = torch.as_tensor(data), torch.as_tensor(labels)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.as_tensor(tr)[torch.randint(0, tr.size, (256,), generator=g)]
        xb = X[idx] + noise * torch.randn(X[idx].shape, generator=g)
        loss = nn.functional.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc_tr = float((model(X[tr]).argmax(1) == y[tr]).float().mean())
        acc_te = float((model(X[te]).argmax(1) == y[te]).float().mean())
    return {"train_accuracy": acc_tr, "heldout_accuracy": acc_te}


def save_npz(model: nn.Module, path: str | Path) -> None:
    """State dict and config as NPZ (no pickle)."""
    import json
    arrays = {f"p:{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    np.savez(path, __config__=np.array(json.dumps(getattr(model, "config", {}))), **arrays)


def load_npz(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Load an NPZ written by :func:`save_npz` (builds the model from its config if not given)."""
    import json
    with np.load(path, allow_pickle=False) as z:
        if model is None:
            model = model_from_config(json.loads(str(z["__config__"])))
        state = {k[2:]: torch.as_tensor(z[k]) for k in z.files if k.startswith("p:")}
    model.load_state_dict(state)
    return model


class DiffusersDenoiser(nn.Module):
    """Adapter: a diffusers ``UNet2DModel`` as an eps-prediction denoiser ``model(x, t) -> eps``."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t).sample
