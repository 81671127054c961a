"""Rules for the vector-database benchmark (reference: Rules.md 5.x and the preview-era run checker).

Run level (``VectorDBRunChecker``):

* OPEN, always: the benchmark is a preview, so no run is CLOSED (a ``--closed`` run is refused by the gate);
* INVALID: a timed run shorter than 30 s; a query-count run below 1,000 queries (our floor for 5.3.3);
* once metrics exist (reports grade finished runs): INVALID without throughput_qps and mean/p95/p99/p999
  latency (5.3.4), without recall or with recall below 0.90 (5.3.2; the target is ours, the rule names none),
  with a collection dimension other than the run's (5.1.2), or with inserted != declared vectors (5.2.1);
* OPEN: an index outside DISKANN/HNSW/AISAQ (5.6.3), or milvus-lite, embedded or in server mode behind ``--uri``
  (not the storage under test).

Submission level (``VectorDBSubmissionChecker``): exactly 5 ``run`` invocations per group (5.3.1), all with the
same dimension and index.
"""

from __future__ import annotations

from mlps.rules import Issue, RunChecker, SubmissionChecker, Validation

from mlps_vectordb.sizing import CLOSED_INDEX_TYPES

MIN_RUNTIME_SECONDS = 30.0
MIN_QUERIES = 1000
RECALL_TARGET = 0.90
REQUIRED_RUNS = 5
LATENCY_KEYS = ("throughput_qps", "mean_latency_ms", "p95_latency_ms", "p99_latency_ms", "p999_latency_ms")
BENCHMARKS = ("vector_database", "vectordb")


class VectorDBRunChecker(RunChecker):
    benchmarks = BENCHMARKS

    @property
    def _metrics(self) -> dict:
        return self.metadata.get("metrics") or {}

    def check_benchmark_type(self):
        if self.metadata.get("benchmark_type") not in BENCHMARKS:
            return Issue(Validation.INVALID, "not a vector database run", parameter="benchmark_type",
                         expected="vector_database", actual=self.metadata.get("benchmark_type"))
        return None

    def check_preview(self):
        return Issue(Validation.OPEN, "the vector database benchmark is in preview status: results are OPEN only",
                     severity="info")

    def check_runtime(self):
        if self.metadata.get("command") != "run":
            return None
        mode, runtime, queries = (self.param("run.mode"), self.param("run.runtime"), self.param("run.queries"))
        if mode == "timed" and (runtime or 0) < MIN_RUNTIME_SECONDS:
            return Issue(Validation.INVALID, f"the run must search for at least {MIN_RUNTIME_SECONDS:g} s",
                         parameter="run.runtime", expected=f">= {MIN_RUNTIME_SECONDS:g}", actual=runtime)
        if mode == "query_count" and (queries or 0) < MIN_QUERIES:
            return Issue(Validation.INVALID, f"a query-count run needs at least {MIN_QUERIES} queries",
                         parameter="run.queries", expected=f">= {MIN_QUERIES}", actual=queries)
        return None

    def check_index_type(self):
        index = self.param("index.index_type")
        if index and index not in CLOSED_INDEX_TYPES:
            return Issue(Validation.OPEN, f"index {index} is allowed in OPEN only", parameter="index.index_type",
                         expected=list(CLOSED_INDEX_TYPES), actual=index)
        return None

    def check_backend(self):
        backend = self.param("database.backend") or ""
        if backend.startswith("milvus-lite"):
            return Issue(Validation.OPEN, "milvus-lite is an embedded test database, not the storage under test",
                         parameter="database.backend", expected="milvus", actual=backend)
        return None

    def check_metrics_reported(self):
        m = self._metrics
        if self.metadata.get("command") != "run" or not m:
            return None
        missing = [k for k in LATENCY_KEYS if m.get(k) is None]
        if missing:
            return Issue(Validation.INVALID, f"metrics missing: {', '.join(missing)}", parameter="metrics")
        return None

    def check_recall(self):
        m = self._metrics
        if self.metadata.get("command") != "run" or not m:
            return None
        recall = m.get("recall")
        if recall is None:
            return Issue(Validation.INVALID, "no recall was reported", parameter="metrics.recall")
        if recall < RECALL_TARGET:
            return Issue(Validation.INVALID, f"recall@{m.get('recall_k')} is below the target",
                         parameter="metrics.recall", expected=f">= {RECALL_TARGET}", actual=round(recall, 4))
        return None

    def check_dimension_consistency(self):
        m, declared = self._metrics, self.param("dataset.dimension")
        loaded = m.get("dimension") if m else None
        if self.metadata.get("command") == "run" and loaded is not None and loaded != declared:
            return Issue(Validation.INVALID, "the collection's dimension differs from the run's",
                         parameter="dataset.dimension", expected=loaded, actual=declared)
        return None

    def check_collection_populated(self):
        m = self._metrics
        if self.metadata.get("command") != "datagen" or not m:
            return None
        if m.get("inserted_vectors") != m.get("num_vectors"):
            return Issue(Validation.INVALID, "inserted vectors differ from the declared count",
                         parameter="dataset.num_vectors", expected=m.get("num_vectors"),
                         actual=m.get("inserted_vectors"))
        return None


class VectorDBSubmissionChecker(SubmissionChecker):
    benchmarks = BENCHMARKS

    def _runs(self):
        return [r for r in self.runs if r.get("command") == "run"]

    def check_num_runs(self):
        runs = self._runs()
        if not runs:
            return None
        if len(runs) != REQUIRED_RUNS:
            return Issue(Validation.INVALID, f"a vector database result needs exactly {REQUIRED_RUNS} runs",
                         parameter="runs", expected=REQUIRED_RUNS, actual=len(runs))
        return None

    def check_consistent_runs(self):
        runs = self._runs()
        for key in ("dimension", "index_type", "num_vectors"):
            values = {(r.get("metrics") or {}).get(key) for r in runs} - {None}
            if len(values) > 1:
                yield Issue(Validation.INVALID, f"the runs of one result differ in {key}", parameter=key,
                            actual=sorted(map(str, values)))
