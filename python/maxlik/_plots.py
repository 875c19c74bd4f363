"""Plots of the ``maxlik fit`` command (``--plot OUT.png``), drawn with matplotlib."""
from __future__ import annotations

import math

import numpy as np

from ._readers import DataError


def _require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: F401
    except ImportError:
        raise DataError("--plot needs matplotlib: pip install 'maxlik[plot]'") from None


def _plot(path, X, names, res):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    history = res.get("lower_bounds") or []
    two_panels = len(history) > 0
    fig, axes = plt.subplots(1, 2 if two_panels else 1, figsize=(11 if two_panels else 6, 4.5),
                             squeeze=False)
    ax = axes[0, 0]
    labels = res.get("_labels")
    if labels is None:  # computed here, so that a fit without --plot never holds N labels
        model = res.get("_model")
        labels = model.predict(X) if model is not None else np.zeros(X.shape[0], dtype=int)
    cmap = plt.get_cmap("tab10")
    colors = cmap(np.asarray(labels) % 10)
    if X.shape[1] >= 2:
        ax.scatter(X[:, 0], X[:, 1], c=colors, s=10, alpha=0.7, linewidths=0)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        if "_full_cov" in res:
            means = res.get("_means", res.get("means"))
            for k, (mu, cov) in enumerate(zip(np.asarray(means), res["_full_cov"])):
                # 1 and 2 sigma contours of the first two coordinates.
                vals, vecs = np.linalg.eigh(cov[:2, :2])
                vals = np.clip(vals, 0, None)
                angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
                for nsig, ls in ((1, "-"), (2, "--")):
                    ax.add_patch(Ellipse(mu[:2], 2 * nsig * math.sqrt(vals[1]),
                                         2 * nsig * math.sqrt(vals[0]), angle=angle,
                                         fill=False, color=cmap(k % 10), lw=1.5, ls=ls))
                ax.plot(mu[0], mu[1], "x", color="k")
        elif "centers" in res:
            c = np.asarray(res["centers"])
            ax.plot(c[:, 0], c[:, 1], "kx", ms=10, mew=2)
        title = {"gmm": "Gaussian mixture: 1σ and 2σ ellipses", "kmeans": "k-means clusters",
                 "gaussian": "Gaussian: 1σ and 2σ ellipses"}[res["model"]]
        if X.shape[1] > 2:
            title += f" (first 2 of {X.shape[1]} columns)"
        ax.set_title(title)
    else:
        x = X[:, 0]
        ax.hist(x, bins=40, density=True, color="0.8")
        if "_full_cov" in res:
            grid = np.linspace(x.min(), x.max(), 400)
            means = np.asarray(res.get("_means", res.get("means")))
            weights = np.asarray(res.get("weights", [1.0]))
            total = np.zeros_like(grid)
            for k in range(len(weights)):
                var = res["_full_cov"][k][0, 0]
                pdf = weights[k] * np.exp(-0.5 * (grid - means[k, 0]) ** 2 / var) / np.sqrt(
                    2 * np.pi * var)
                total += pdf
                ax.plot(grid, pdf, color=cmap(k % 10))
            ax.plot(grid, total, "k")
        ax.set_xlabel(names[0])
        ax.set_ylabel("density")
    if two_panels:
        ax2 = axes[0, 1]
        ax2.plot(np.arange(1, len(history) + 1), history, "o-", ms=3)
        ax2.xaxis.get_major_locator().set_params(integer=True)
        ax2.set_xlabel("EM iteration")
        ax2.set_ylabel("log-likelihood lower bound per row")
        ax2.set_title("EM never decreases the likelihood")
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise DataError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
