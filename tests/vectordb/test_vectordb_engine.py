"""Engine pieces without a database: datasize arithmetic, vector generation, exact top-k, recall, statistics."""

from __future__ import annotations

import numpy as np
import pytest

from mlps_vectordb import sizing, stats, vectors


@pytest.mark.parametrize("index,factor", [("DISKANN", 1.3), ("HNSW", 1.5), ("AISAQ", 0.15), ("IVF_FLAT", 1.05),
                                          ("IVF_SQ8", 0.40), ("FLAT", 1.0)])
def test_datasize_uses_the_reference_overheads(index, factor):
    d = sizing.datasize(1_000_000, 1536, index, num_shards=2)
    assert d["raw_bytes"] == 1_000_000 * 1536 * 4
    assert d["total_bytes"] == round(1_000_000 * 1536 * 4 * factor * 2)
    assert d["total_gb"] == round(d["total_bytes"] / 1e9, 3)
    assert "GB" in sizing.datasize_text(d)


def test_unknown_index_falls_back_to_the_diskann_factor():
    assert sizing.datasize(10, 10, "SOMETHING")["index_overhead"] == sizing.DEFAULT_OVERHEAD == 1.3


@pytest.mark.parametrize("distribution", vectors.DISTRIBUTIONS)
def test_vectors_are_normalised_deterministic_and_chunk_independent(distribution):
    a = vectors.generate(500, 32, distribution, seed=7, stream=3)
    assert a.dtype == np.float32 and a.shape == (500, 32)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, vectors.generate(500, 32, distribution, seed=7, stream=3))
    assert not np.array_equal(a, vectors.generate(500, 32, distribution, seed=7, stream=4))
    assert not np.array_equal(a[:10], vectors.query_pool(10, 32, distribution, seed=7))


def test_zipfian_vectors_are_skewed_towards_few_centres():
    v = vectors.generate(4000, 16, "zipfian", seed=1)
    centres, _ = vectors._zipf_centres(16, 1)
    nearest = np.argmax(v @ centres.T, axis=1)
    counts = np.sort(np.bincount(nearest, minlength=len(centres)))[::-1]
    assert counts[:10].sum() > 0.25 * len(v)  # uniform over 1,000 centres would give about 1 %


@pytest.mark.parametrize("metric", ["COSINE", "IP", "L2"])
def test_streamed_topk_equals_brute_force(metric):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3000, 24)).astype(np.float32)
    queries = rng.standard_normal((40, 24)).astype(np.float32)
    top = vectors.TopK(queries, 10, metric)
    for start in range(0, 3000, 700):  # uneven blocks, like a query iterator
        top.add(np.arange(start, min(start + 700, 3000)), data[start:start + 700])
    if metric == "COSINE":
        score = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ \
                (data / np.linalg.norm(data, axis=1, keepdims=True)).T
    elif metric == "IP":
        score = queries @ data.T
    else:
        score = -((queries[:, None, :] - data[None, :, :]) ** 2).sum(axis=2)
    expected = np.argsort(-score, axis=1)[:, :10]
    assert np.array_equal(top.result(), expected) and top.seen == 3000


def test_recall_counts_overlap_with_the_exact_top_k():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    r = vectors.recall_at_k({0: [1, 2, 9, 9], 1: [8, 7, 6, 5]}, truth, k=4)
    assert r["recall_at_k"] == pytest.approx(0.75) and r["num_queries_evaluated"] == 2
    assert r["min_recall"] == 0.5 and r["max_recall"] == 1.0
    assert vectors.recall_at_k({}, truth, 4)["recall_at_k"] is None


def test_latency_is_per_query_and_qps_uses_the_wall_span():
    # process 0: two batches of 4 queries taking 10 ms and 30 ms; process 1: one batch of 2 taking 20 ms
    batches = [{"start": np.array([100.0, 100.01]), "seconds": np.array([0.010, 0.030]),
                "size": np.array([4, 4]), "failed": 0},
               {"start": np.array([100.005]), "seconds": np.array([0.020]), "size": np.array([2]), "failed": 1}]
    s = stats.summarise(batches)
    assert s["total_queries"] == 10 and s["failed_batches"] == 1 and s["batch_count"] == 4
    assert s["total_time_seconds"] == pytest.approx(0.040)
    assert s["throughput_qps"] == pytest.approx(10 / 0.040)
    # every query of a batch waited the whole batch: 4 x 10 ms, 4 x 30 ms, 2 x 20 ms
    assert s["mean_latency_ms"] == pytest.approx((4 * 10 + 4 * 30 + 2 * 20) / 10)
    assert s["max_latency_ms"] == pytest.approx(30) and s["min_latency_ms"] == pytest.approx(10)
    assert s["mean_batch_time_ms"] == pytest.approx(20)
    for key in ("p95_latency_ms", "p99_latency_ms", "p999_latency_ms"):
        assert 10 <= s[key] <= 30


def test_no_batches_gives_zero_throughput():
    assert stats.summarise([])["throughput_qps"] == 0.0


def _exit_at_once(code):
    raise SystemExit(code)


def test_a_query_process_that_dies_before_the_start_fails_the_run_at_once():
    import multiprocessing as mp
    import time

    from mlps import ExecutionError
    from mlps_vectordb import search

    ctx = mp.get_context("spawn")
    ready = ctx.Semaphore(0)
    procs = [ctx.Process(target=_exit_at_once, args=(3,))]
    procs[0].start()
    started = time.monotonic()
    with pytest.raises(ExecutionError, match=r"exited with \[3\]"):
        search._wait_ready(procs, ready)
    assert time.monotonic() - started < 15  # not the 120 s start timeout


def test_counted_queries_are_split_across_processes():
    from mlps_vectordb import search

    plan = {"queries": 301, "num_query_processes": 3}
    assert [search._quota(plan, w) for w in range(3)] == [101, 100, 100]
    assert search._quota({"queries": None, "num_query_processes": 3}, 0) is None
