"""The time-series sampler: real samples of this machine (and of loopback over ssh), stop latency, cap."""

from __future__ import annotations

import json
import time

from mlps_collectors.sampler import TimeseriesSampler


def test_samples_at_short_interval_and_stops_within_one_interval(tmp_path):
    sampler = TimeseriesSampler(["127.0.0.1"], interval=0.2).start()
    deadline = time.monotonic() + 10
    while sampler.num_samples < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    sampler.stop()
    assert time.monotonic() - began < 0.2 + 0.15  # one interval, plus slack for a sample in flight
    assert sampler.num_samples >= 3 and not sampler._thread.is_alive()
    count = sampler.num_samples
    time.sleep(0.3)
    assert sampler.num_samples == count  # nothing after stop
    data = json.loads(sampler.write(tmp_path / "ts.json").read_text())
    assert data["num_samples"] == count and data["collection_interval_seconds"] == 0.2
    assert data["collection_method"] == "local" and data["hosts_collected"] == ["127.0.0.1"]
    samples = data["samples_by_host"]["127.0.0.1"]
    assert all({"timestamp", "diskstats", "vmstat", "loadavg", "meminfo", "netdev"} <= set(s) for s in samples)
    stamps = [s["timestamp"] for s in samples]
    assert stamps == sorted(stamps) and data["start_time"] <= stamps[0] and stamps[-1] <= data["end_time"]


def test_long_interval_still_stops_promptly():
    sampler = TimeseriesSampler(["localhost"], interval=30).start()
    time.sleep(0.2)
    began = time.monotonic()
    sampler.stop()
    assert time.monotonic() - began < 1 and sampler.num_samples == 1


def test_cap_on_samples_per_host():
    sampler = TimeseriesSampler(["127.0.0.1"], interval=0.01, max_samples=4).start()
    sampler._thread.join(timeout=10)
    assert not sampler._thread.is_alive()  # the thread ends by itself at the cap
    sampler.stop()
    assert sampler.num_samples == 4


def test_remote_host_sampled_over_ssh_and_failures_recorded(ssh_config_options, tmp_path):
    sampler = TimeseriesSampler(["mlps-loopback", "no-such-host.invalid"], interval=0.3, connect_timeout=10,
                                ssh_options=ssh_config_options).start()
    deadline = time.monotonic() + 20
    while len(sampler.samples_by_host["mlps-loopback"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    sampler.stop()
    assert time.monotonic() - began < 0.3 + 0.5
    # one ssh session per remote host for the whole run, not one per sample
    stream = next(s for s in sampler._streams if s.host == "mlps-loopback")
    assert stream.samples >= 3 and stream.proc.poll() is not None
    data = sampler.to_dict()
    assert data["collection_method"] == "ssh" and data["hosts_collected"] == ["mlps-loopback"]
    assert len(data["samples_by_host"]["mlps-loopback"]) >= 2
    assert "meminfo" in data["samples_by_host"]["mlps-loopback"][0]
    assert "ssh" in data["samples_by_host"]["no-such-host.invalid"][0]["errors"]
