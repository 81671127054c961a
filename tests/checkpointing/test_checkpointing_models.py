"""Models as data and the datasize arithmetic, checked against values computed by hand."""

from __future__ import annotations

import pytest
import yaml

from mlps_checkpointing.dlio import CONFIG_DIR
from mlps_checkpointing.models import (ALIGNMENT, GIB, MODELS, datasize_report, per_rank_gb, plan_bytes,
                                       rank_shards, total_gb)


def test_the_four_models_carry_the_reference_layouts():
    m = MODELS
    assert set(m) == {"llama3-8b", "llama3-70b", "llama3-405b", "llama3-1t"}
    assert (m["llama3-8b"].num_layers, m["llama3-8b"].hidden_size, m["llama3-8b"].ffn_hidden_size) == (32, 4096, 14336)
    assert (m["llama3-1t"].num_attention_heads, m["llama3-1t"].num_kv_heads) == (192, 32)
    assert [(x.tensor_parallelism, x.pipeline_parallelism, x.zero_level, x.closed_processes)
            for x in m.values()] == [(1, 1, 3, 8), (8, 1, 3, 64), (8, 32, 1, 512), (8, 64, 1, 1024)]
    assert [x.gpus_per_dp for x in m.values()] == [8, 8, 256, 512]


# Hand-computed: ZeRO 3 -> (model + optimizer) / N per rank; ZeRO 1 -> optimizer / N per rank plus
# model / GPUs-per-DP on the first GPUs-per-DP ranks. Totals at the closed process counts:
#   8b: 15 + 90 = 105;  70b: 130 + 781 = 911;  405b: 755 + 4533 = 5288;  1t: 2571 + 15426 = 17997.
@pytest.mark.parametrize("name, n, total, first_rank, last_rank", [
    ("llama3-8b", 8, 105.0, 13.125, 13.125),
    ("llama3-70b", 64, 911.0, 911 / 64, 911 / 64),
    ("llama3-405b", 512, 5288.0, 755 / 256 + 4533 / 512, 4533 / 512),
    ("llama3-1t", 1024, 17997.0, 2571 / 512 + 15426 / 1024, 15426 / 1024),
])
def test_datasize_matches_hand_computed_values(name, n, total, first_rank, last_rank):
    ranks = per_rank_gb(MODELS[name], n)
    assert len(ranks) == n
    assert total_gb(MODELS[name], n) == pytest.approx(total)
    assert ranks[0] == pytest.approx(first_rank) and ranks[-1] == pytest.approx(last_rank)
    # the Rules table's rounded figures (105 GB, 912 GB, 5.29 TB, 18 TB) agree within 0.2 %
    assert total == pytest.approx(MODELS[name].rules_checkpoint_size_gb, rel=2e-3)


def test_zero1_subset_and_open_counts():
    # 405b on 256 ranks (one DP instance): every rank holds model/256 + optimizer/256
    assert total_gb(MODELS["llama3-405b"], 256) == pytest.approx(5288.0)
    # 405b on 8 ranks: only 8 of the 256 model shards exist -> 4533 + 755 * 8 / 256
    assert total_gb(MODELS["llama3-405b"], 8) == pytest.approx(4533 + 755 * 8 / 256)
    # ZeRO 3 spreads the same total over any count
    assert total_gb(MODELS["llama3-70b"], 8) == pytest.approx(911.0)


def test_datasize_report_bytes_and_cache_warning():
    report = datasize_report(MODELS["llama3-8b"], 8, num_hosts=2, host_memory_gb=64, num_checkpoints_write=10)
    assert report["total_GB"] == 105.0 and report["checkpoint_GB_per_host"] == 52.5
    assert report["required_bytes"] == 105 * GIB * 10
    assert report["page_cache_risk"] is True  # 52.5 GB per host <= 3 x 64 GB
    assert datasize_report(MODELS["llama3-8b"], 8, 1, 16, 10)["page_cache_risk"] is False


def test_shards_are_aligned_named_and_sized_by_layout():
    model = MODELS["llama3-405b"]
    first, later = rank_shards(model, 512, 0), rank_shards(model, 512, 300)
    assert [f.name for f in first] == ["zero_pp_rank_0_mp_rank_00_model_states.pt",
                                       "zero_pp_rank_0_mp_rank_00_optim_states.pt"]
    assert [f.name for f in later] == ["zero_pp_rank_1_mp_rank_44_optim_states.pt"]  # no model shard past GPUpDP
    assert all(f.nbytes % ALIGNMENT == 0 for f in first + later)
    assert first[1].nbytes == pytest.approx(4533 / 512 * GIB, abs=ALIGNMENT)
    small = rank_shards(MODELS["llama3-8b"], 2, 1, scale=0.0001)
    assert [f.nbytes for f in small] == [806912, 4833280]  # 7.5 GB and 45 GB * 1e-4, rounded up to 4 KiB
    assert plan_bytes(MODELS["llama3-8b"], 2, 0.0001) == 2 * (806912 + 4833280)


def test_shipped_dlio_workloads_agree_with_the_model_table():
    for model in MODELS.values():
        doc = yaml.safe_load((CONFIG_DIR / "workload" / f"{model.workload}.yaml").read_text())
        t, p = doc["model"]["transformer"], doc["model"]["parallelism"]
        assert (doc["model"]["num_layers"], t["hidden_size"], t["ffn_hidden_size"], t["num_attention_heads"],
                t["num_kv_heads"]) == (model.num_layers, model.hidden_size, model.ffn_hidden_size,
                                       model.num_attention_heads, model.num_kv_heads)
        assert (p["tensor"], p["pipeline"], p["zero_stage"]) == (model.tensor_parallelism,
                                                                 model.pipeline_parallelism, model.zero_level)
        ck = doc["checkpoint"]
        assert (ck["num_checkpoints_write"], ck["num_checkpoints_read"], ck["fsync"]) == (10, 10, True)
        assert doc["workflow"]["checkpoint"] is True


def test_engine_and_plugin_agree_on_the_summary_marker():
    import mlps_checkpointing.engine as engine
    import mlps_checkpointing.plugin as plugin
    assert engine.SUMMARY_MARKER == plugin.SUMMARY_MARKER and engine.MANIFEST == plugin.MANIFEST


def test_plugin_modules_stay_import_light():
    import pathlib
    import re
    import mlps_checkpointing
    root = pathlib.Path(mlps_checkpointing.__file__).parent
    heavy = re.compile(r"^\s*(import|from)\s+(numpy|mpi4py|torch|tensorflow|dlio_benchmark|pymilvus)\b", re.M)
    for name in ("plugin.py", "__init__.py", "models.py", "rules.py", "dlio.py"):
        assert not heavy.search((root / name).read_text()), f"{name} imports a heavy module"
