"""SSH collection through a real sshd on loopback (the session fixture), including failing targets."""

from __future__ import annotations

import time

import pytest

from mlps import ConfigurationError
from mlps_collectors import host as H
from mlps_collectors import ssh as S


@pytest.mark.parametrize("bad", ["", "a b", "h;rm -rf /", "$(id)", "`id`", "-oProxyCommand=x", "h'q", "x\ny"])
def test_bad_host_names_are_refused(bad):
    with pytest.raises(ConfigurationError):
        S.validate_host(bad)
    with pytest.raises(ConfigurationError):
        S.collect_ssh([bad])


def test_argv_is_a_list_with_batchmode_timeout_and_host_after_double_dash(monkeypatch):
    monkeypatch.setenv(S.SSH_CONFIG_ENV, "/etc/mlps-ssh.conf")
    argv = S.ssh_argv("node-1.example", S.remote_program(H.SNAPSHOT_SOURCES), connect_timeout=7,
                      ssh_options=["-p", "2222"])
    assert argv[:5] == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=7"]
    assert argv[argv.index("-F") + 1] == "/etc/mlps-ssh.conf" and argv[argv.index("-p") + 1] == "2222"
    assert argv[-3:-1] == ["--", "node-1.example"]
    assert argv[-1] == S.remote_program(H.SNAPSHOT_SOURCES)  # the fixed program, whatever the host
    assert S.connect_timeout_for(60) == 10 and S.connect_timeout_for(12) == 5


def test_split_output_handles_missing_files_and_files_without_trailing_newline():
    out = (f"{S.FILE_MARK}/proc/loadavg\n0.1 0.2 0.3 1/2 3\n\n{S.MISSING_MARK}/proc/cgroups\n"
           f"{S.FILE_MARK}/proc/uptime\n12.5 3.0\n{S.FILE_MARK}uname-m\naarch64\n")
    texts, errors = S.split_output(out)
    assert texts == {"/proc/loadavg": "0.1 0.2 0.3 1/2 3\n", "/proc/uptime": "12.5 3.0\n", "uname-m": "aarch64\n"}
    assert errors == {"/proc/cgroups": "unreadable on the remote host"}


def test_local_names_are_read_directly_without_ssh():
    start = time.monotonic()
    # ssh_bin that does not exist: proves no ssh was started for the local names
    hosts = S.collect_ssh(["127.0.0.1", "localhost"], ssh_bin="/nonexistent/ssh")
    assert all(h.reachable and not h.errors for h in hosts)
    assert [h.address for h in hosts] == ["127.0.0.1", "localhost"]
    assert time.monotonic() - start < 5


def test_collect_from_loopback_through_real_ssh(ssh_config_options):
    local = H.collect_local()
    [remote] = S.collect_ssh(["127.0.0.1"], force_ssh=True, ssh_options=ssh_config_options, timeout=30)
    assert remote.errors == {}, remote.errors
    assert remote.hostname == local.hostname and remote.address == "127.0.0.1"
    assert remote.memory.total == local.memory.total
    assert remote.cpu.num_logical_cores == local.cpu.num_logical_cores and remote.cpu.architecture
    assert remote.system.kernel_version == local.system.kernel_version
    assert {d.device_name for d in remote.disks} == {d.device_name for d in local.disks}


def test_alias_host_goes_through_ssh_by_default(ssh_config_options):
    """A name that is not this machine's takes the SSH path without forcing (alias in the ssh config)."""
    [remote] = S.collect_ssh(["mlps-loopback"], ssh_options=ssh_config_options, timeout=30)
    assert remote.reachable and remote.address == "mlps-loopback" and remote.hostname == H.collect_local().hostname


def test_unreachable_target_gives_partial_result_with_error(loopback_sshd, unused_port, tmp_path):
    """One collection: the sshd alias answers, a closed loopback port refuses; the result keeps the first
    and records the second's error."""
    config = tmp_path / "ssh_config"
    config.write_text(f"Host mlps-closed\n  HostName 127.0.0.1\n  Port {unused_port}\n"
                      + loopback_sshd.client_config.read_text())
    good, bad = S.collect_ssh(["mlps-loopback", "mlps-closed"], ssh_options=["-F", str(config)], timeout=30)
    assert good.reachable and good.errors == {} and good.address == "mlps-loopback"
    assert not bad.reachable and bad.hostname == "mlps-closed"
    assert "Connection refused" in bad.errors["ssh"] and str(unused_port) in bad.errors["ssh"]


def test_mixed_good_and_bad_hosts_in_one_collection(ssh_config_options):
    """One collection, one reachable and one refused host: the good record is kept, the bad one named."""
    results = S.collect_ssh(["mlps-loopback", "no-such-host.invalid"], ssh_options=ssh_config_options, timeout=30)
    good, bad = results
    assert good.reachable and good.errors == {}
    assert not bad.reachable and "no-such-host.invalid" in bad.errors["ssh"]


def test_refused_key_is_reported(loopback_sshd, tmp_path):
    import subprocess

    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    options = ["-p", str(loopback_sshd.port), "-i", str(other_key), "-o", "IdentitiesOnly=yes",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"]
    [host] = S.collect_ssh(["127.0.0.1"], force_ssh=True, ssh_options=options, timeout=30)
    assert not host.reachable and "Permission denied" in host.errors["ssh"]


def test_hanging_host_times_out(tmp_path):
    """A server that accepts TCP and never speaks: the per-host timeout ends the attempt."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        start = time.monotonic()
        [host] = S.collect_ssh(["127.0.0.1"], force_ssh=True, timeout=1.5,
                               ssh_options=["-p", str(listener.getsockname()[1])])
        assert time.monotonic() - start < 10
        assert not host.reachable and "timed out" in host.errors["ssh"]
    finally:
        listener.close()


def test_sample_over_ssh(ssh_config_options):
    [sample] = S.collect_ssh(["127.0.0.1"], force_ssh=True, ssh_options=ssh_config_options, sample=True)
    assert {"diskstats", "vmstat", "loadavg", "meminfo", "netdev"} <= set(sample) and "errors" not in sample
