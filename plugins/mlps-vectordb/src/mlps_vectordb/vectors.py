"""Vector generation, exact ground truth and recall (numpy; imported only by the worker modules).

Distributions (all vectors L2-normalised float32, like the reference loader):

* ``uniform``: components uniform in [-1, 1);
* ``normal``: components standard normal;
* ``zipfian``: vectors gather around 1,000 random centres whose popularity follows Zipf's law (s = 1.1),
  plus N(0, 0.25) noise per component: a skewed, clustered data set.

Chunk ``i`` of a data set depends only on (seed, i), so datagen can stream any size in bounded memory.
"""

from __future__ import annotations

import numpy as np

DISTRIBUTIONS = ("uniform", "normal", "zipfian")
ZIPF_CENTRES = 1000
ZIPF_EXPONENT = 1.1
QUERY_SEED_OFFSET = 1_000_003  # query vectors never come from a data-chunk stream


def _normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)


def _zipf_centres(dimension: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 7])
    centres = _normalise(rng.standard_normal((ZIPF_CENTRES, dimension), dtype=np.float32))
    weights = 1.0 / np.arange(1, ZIPF_CENTRES + 1) ** ZIPF_EXPONENT
    return centres, weights / weights.sum()


def generate(count: int, dimension: int, distribution: str, seed: int, stream: int = 0) -> np.ndarray:
    """``count`` vectors of stream ``stream`` (a chunk number) for the given seed."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}")
    rng = np.random.default_rng([seed, stream])
    if distribution == "uniform":
        v = rng.uniform(-1.0, 1.0, size=(count, dimension)).astype(np.float32)
    elif distribution == "normal":
        v = rng.standard_normal((count, dimension), dtype=np.float32)
    else:
        centres, p = _zipf_centres(dimension, seed)
        picks = rng.choice(ZIPF_CENTRES, size=count, p=p)
        v = centres[picks] + rng.normal(0.0, 0.25, size=(count, dimension)).astype(np.float32)
    return _normalise(v)


def query_pool(count: int, dimension: int, distribution: str, seed: int) -> np.ndarray:
    return generate(count, dimension, distribution, seed + QUERY_SEED_OFFSET, stream=0)


class TopK:
    """Exact top-k by streaming over the stored vectors block by block (memory: queries x k + one block)."""

    def __init__(self, queries: np.ndarray, k: int, metric: str):
        self.metric = metric.upper()
        self.k = int(k)
        self.queries = _normalise(queries) if self.metric == "COSINE" else queries.astype(np.float32)
        n = len(queries)
        self.best_score = np.full((n, 0), -np.inf, dtype=np.float32)
        self.best_ids = np.zeros((n, 0), dtype=np.int64)
        self.seen = 0

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        v = vectors.astype(np.float32, copy=False)
        if self.metric == "COSINE":
            score = self.queries @ _normalise(v).T
        elif self.metric == "IP":
            score = self.queries @ v.T
        else:  # L2: a higher score is a smaller distance
            score = 2.0 * (self.queries @ v.T) - (v * v).sum(axis=1)[None, :]
        score = np.concatenate([self.best_score, score.astype(np.float32)], axis=1)
        all_ids = np.concatenate([self.best_ids, np.broadcast_to(ids, (len(self.queries), len(ids)))], axis=1)
        keep = min(self.k, score.shape[1])
        part = np.argpartition(-score, keep - 1, axis=1)[:, :keep]
        self.best_score = np.take_along_axis(score, part, axis=1)
        self.best_ids = np.take_along_axis(all_ids, part, axis=1)
        self.seen += len(ids)

    def result(self) -> np.ndarray:
        order = np.argsort(-self.best_score, axis=1)
        return np.take_along_axis(self.best_ids, order, axis=1)


def recall_at_k(found: dict[int, list[int]], truth: np.ndarray, k: int) -> dict:
    """Recall of the first answer seen for each query-pool index against the exact top-k."""
    per_query = []
    for index in sorted(found):
        expected = set(truth[index, :k].tolist())
        got = set(found[index][:k])
        per_query.append(len(expected & got) / max(1, len(expected)))
    if not per_query:
        return {"recall_at_k": None, "k": k, "num_queries_evaluated": 0}
    arr = np.asarray(per_query)
    return {"recall_at_k": float(arr.mean()), "k": k, "num_queries_evaluated": len(per_query),
            "min_recall": float(arr.min()), "max_recall": float(arr.max()), "mean_recall": float(arr.mean()),
            "median_recall": float(np.median(arr)), "p5_recall": float(np.percentile(arr, 5)),
            "p95_recall": float(np.percentile(arr, 95)), "p99_recall": float(np.percentile(arr, 99))}
