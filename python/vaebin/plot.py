"""Optional picture of the latent space (needs the `plot` extra: umap-learn and matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaebin import io

# UMAP on more points than this is slow and the picture no clearer.
_MAX_POINTS = 20_000


def plotting_available() -> bool:
    """True when umap-learn and matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def latent_umap(path: Path, latent_means: np.ndarray, labels: np.ndarray, seed: int = 0) -> None:
    """Draw a 2-D UMAP of the latent means coloured by bin (grey: unbinned) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import umap

    rng = np.random.default_rng(seed)
    rows = np.arange(latent_means.shape[0])
    if rows.size > _MAX_POINTS:
        rows = np.sort(rng.choice(rows, _MAX_POINTS, replace=False))
    points = umap.UMAP(random_state=seed, n_neighbors=min(15, max(2, rows.size - 1))).fit_transform(
        latent_means[rows]
    )
    figure, axes = plt.subplots(figsize=(7, 6), dpi=120)
    unbinned = labels[rows] < 0
    axes.scatter(*points[unbinned].T, s=2, c="lightgrey", label="unbinned")
    axes.scatter(*points[~unbinned].T, s=3, c=labels[rows][~unbinned], cmap="tab20")
    axes.set_title("vaebin-rs latent space (UMAP)")
    axes.set_xticks([])
    axes.set_yticks([])
    figure.tight_layout()
    with io.atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
