"""Fail-fast environment validation: check every :class:`mlps.Requirement` a run declares, report all problems.

Kinds: ``executable`` (on PATH), ``module`` (importable, found without importing it), ``mpi`` (a launcher that
answers ``--version``), ``ssh`` (passwordless BatchMode SSH with a short ConnectTimeout, real ``ssh`` client,
non-local hosts only), ``writable`` (a directory we can create a file in, or create), ``disk_space``
(``amount`` free bytes). Each problem carries a copy-pasteable install hint for the detected OS family.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from mlps.reports import Problem

SSH_CONNECT_TIMEOUT_S = 5
MPI_PACKAGES = {"debian": "openmpi-bin libopenmpi-dev", "rhel": "openmpi openmpi-devel"}
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "::1", "0.0.0.0"}


@lru_cache(maxsize=1)
def detect_os_family() -> str:
    """``debian`` (Debian, Ubuntu...), ``rhel`` (RHEL, Rocky, Fedora...), or ``other``, from /etc/os-release."""
    info = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            info[key] = value.strip().strip('"').lower()
    except OSError:
        return "other"
    ids = {info.get("ID", "")} | set(info.get("ID_LIKE", "").split())
    if ids & {"debian", "ubuntu"}:
        return "debian"
    if ids & {"rhel", "fedora", "centos", "rocky", "almalinux", "amzn", "ol"}:
        return "rhel"
    return "other"


def _sudo() -> str:
    return "" if os.geteuid() == 0 else "sudo "


def system_install_hint(packages: dict, family: str | None = None) -> str | None:
    """The install command for the detected OS (apt, dnf or yum), or None when no package is named for it."""
    family = family or detect_os_family()
    if family == "debian" and packages.get("apt"):
        return f"{_sudo()}apt-get install -y {packages['apt']}"
    if family == "rhel":
        package = packages.get("dnf") or packages.get("yum")
        if package:
            tool = "dnf" if shutil.which("dnf") or not shutil.which("yum") else "yum"
            return f"{_sudo()}{tool} install -y {package}"
    return None


def pip_hint(package: str) -> str:
    return f"{sys.executable} -m pip install '{package}'"


def _hint(req, default: str) -> str:
    lines = []
    system = system_install_hint(req.install)
    if system:
        lines.append(system)
    if req.install.get("pip"):
        lines.append(pip_hint(req.install["pip"]))
    if req.hint:
        lines.append(req.hint)
    return "\n".join(lines) if lines else default


def _subject(req) -> str:
    return f"{req.kind} {req.target}" + (f" (needed for {req.reason})" if req.reason else "")


# --- one checker per kind; each returns a Problem or None ------------------------------------------------

def _check_executable(req) -> Problem | None:
    if shutil.which(req.target):
        return None
    return Problem("missing_executable", _subject(req), f"'{req.target}' was not found on PATH",
                   _hint(req, f"install {req.target} and make sure its directory is on PATH"))


def _check_module(req) -> Problem | None:
    try:
        found = importlib.util.find_spec(req.target) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    pip_package = req.install.get("pip") or req.target.split(".")[0]
    fix = [system_install_hint(req.install), pip_hint(pip_package), req.hint]
    return Problem("missing_module", _subject(req),
                   f"Python module '{req.target}' cannot be imported by {sys.executable}",
                   "\n".join(line for line in fix if line))


def _check_mpi(req) -> Problem | None:
    from mlps.mpi import launcher_path  # MPI_RUN_BIN / MPI_EXEC_BIN override the launcher, as at launch time

    launcher = launcher_path(req.target or "mpirun")
    path = shutil.which(launcher)
    family = detect_os_family()
    install = dict(req.install) or {"apt": MPI_PACKAGES["debian"], "dnf": MPI_PACKAGES["rhel"]}
    default = system_install_hint(install, family) or "install Open MPI or MPICH so that mpirun is on PATH"
    if family == "rhel":
        default += "\nmodule load mpi/openmpi-x86_64   # RHEL puts MPI on PATH through environment modules"
    if path is None:
        return Problem("missing_mpi", _subject(req), f"MPI launcher '{launcher}' was not found on PATH", default)
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Problem("broken_mpi", _subject(req), f"'{path} --version' failed: {exc}", default)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return Problem("broken_mpi", _subject(req),
                       f"'{path} --version' exited {proc.returncode}: {tail[0]}", default)
    return None


def _strip_slots(target: str) -> str:
    """``[user@]host:slots`` -> ``[user@]host`` (``:N`` is how --hosts spells ranks per host, not a port)."""
    head, sep, tail = target.rpartition(":")
    if sep and tail.isdigit() and ":" not in head:
        return head
    return target


def _host_name(target: str) -> str:
    """``user@host:slots`` -> ``host``."""
    return _strip_slots(target).rsplit("@", 1)[-1]


@lru_cache(maxsize=1)
def _local_addresses() -> frozenset[str]:
    names = {socket.gethostname(), socket.getfqdn()}
    addresses = set()
    for name in names:
        try:
            addresses.update(socket.gethostbyname_ex(name)[2])
        except OSError:
            pass
    return frozenset(names | addresses)


def is_local_host(target: str) -> bool:
    """True for this machine (loopback, its host names, its addresses): no SSH is needed to reach it."""
    host = _host_name(target)
    if host in _LOCAL_NAMES or host.startswith("127.") or host in _local_addresses():
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # unresolvable: ssh will say so
    addresses = {info[4][0] for info in infos}
    return all(a.startswith("127.") or a == "::1" or a in _local_addresses() for a in addresses)


def check_ssh(target: str, *, timeout: int = SSH_CONNECT_TIMEOUT_S, ssh_options: Sequence[str] = ()) -> Problem | None:
    """Passwordless SSH to ``target`` with the real client: ``ssh -o BatchMode=yes ... host true``."""
    host = _strip_slots(target)
    ssh = shutil.which("ssh")
    subject = f"ssh {host}"
    if ssh is None:
        return Problem("missing_executable", subject, "the ssh client was not found on PATH",
                       system_install_hint({"apt": "openssh-client", "dnf": "openssh-clients"})
                       or "install an OpenSSH client")
    argv = [ssh, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={timeout}", "-o", "NumberOfPasswordPrompts=0",
            *ssh_options, host, "true"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Problem("ssh_unreachable", subject, f"no answer within {timeout + 10} s",
                       f"check that {host} is up and reachable: ssh {host} true")
    if proc.returncode == 0:
        return None
    stderr = proc.stderr.strip()
    last = stderr.splitlines()[-1] if stderr else f"ssh exited {proc.returncode}"
    bare = _host_name(host)
    if "Permission denied" in stderr:
        fix = f"set up key login: ssh-keygen -t ed25519 (if you have no key), then ssh-copy-id {host}"
    elif "Host key verification failed" in stderr:
        fix = f"accept the host key once: ssh-keyscan -H {bare} >> ~/.ssh/known_hosts"
    elif "Could not resolve" in stderr:
        fix = f"fix the host name '{bare}' in --hosts, or add it to /etc/hosts"
    else:
        service = "sshd" if detect_os_family() == "rhel" else "ssh"
        fix = (f"check that sshd runs on {bare} (on that host: systemctl start {service}) and that its port is "
               f"reachable from here, then test with: ssh -o BatchMode=yes {host} true")
    return Problem("ssh_unreachable", subject, f"passwordless SSH failed: {last}", fix)


def _nearest_existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(req) -> Problem | None:
    target = Path(req.target).expanduser()
    if target.exists() and not target.is_dir():
        return Problem("not_writable", _subject(req), f"{target} exists and is not a directory",
                       "pass a directory path instead")
    probe_dir = target if target.exists() else _nearest_existing(target)
    try:  # os.access lies on some network file systems: really create a file
        fd, probe = tempfile.mkstemp(prefix=".mlps-write-probe-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
        return None
    except OSError as exc:
        return Problem("not_writable", _subject(req), f"cannot create files in {probe_dir}: {exc.strerror or exc}",
                       f"{_sudo()}mkdir -p {target} && {_sudo()}chown $(id -u):$(id -g) {target}\n"
                       "or choose another directory with --results-dir")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


def _check_disk_space(req) -> Problem | None:
    where = _nearest_existing(Path(req.target))
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        return Problem("disk_space", _subject(req), f"cannot measure free space: {exc.strerror or exc}",
                       "check the path")
    needed = int(req.amount or 0)
    if free >= needed:
        return None
    return Problem("disk_space", _subject(req),
                   f"{_size(free)} free under {where}, the run needs {_size(needed)} "
                   f"(short by {_size(needed - free)})",
                   f"free {_size(needed - free)} there (df -h {where}), or point the run at a larger file system")


_CHECKERS = {"executable": _check_executable, "module": _check_module, "mpi": _check_mpi,
             "writable": _check_writable, "disk_space": _check_disk_space}


def check_requirements(requirements: Iterable, *, ssh_options: Sequence[str] = ()) -> list[Problem]:
    """Check every requirement; return all problems (empty: the environment is ready).

    Duplicates are checked once. SSH checks of several hosts run in parallel; local hosts are skipped.
    ``ssh_options`` are extra ``ssh`` arguments (tests use them to aim at a closed local port).
    """
    reqs = list({(r.kind, r.target, r.amount): r for r in requirements}.values())
    problems: list[Problem] = []
    ssh_hosts = []
    for req in reqs:
        if req.kind == "ssh":
            if not is_local_host(req.target):
                ssh_hosts.append(req.target)
            continue
        checker = _CHECKERS.get(req.kind)
        if checker is None:
            problems.append(Problem("unknown_requirement", _subject(req), f"unknown requirement kind '{req.kind}'",
                                    "this is a plugin bug: report it to the plugin's authors"))
            continue
        problem = checker(req)
        if problem is not None:
            problems.append(problem)
    if ssh_hosts:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(16, len(ssh_hosts))) as pool:
            results = pool.map(lambda h: check_ssh(h, ssh_options=ssh_options), ssh_hosts)
            problems.extend(p for p in results if p is not None)
    return problems


def ssh_check_bypassed(mpi_bin: str | None = None, environ=None) -> bool:
    """True under launchers that do not use SSH: Slurm ``srun`` inside a job, or HPE Cray PALS."""
    environ = os.environ if environ is None else environ
    if any(key.startswith("PALS_") for key in environ):
        return True
    return bool(environ.get("SLURM_JOB_ID")) and mpi_bin == "srun"


def core_requirements(run, *, uses_mpi: bool = False) -> list:
    """What the core itself needs for ``run``: a writable results directory and, for MPI commands, the
    launcher and passwordless SSH to every non-local host (skipped under srun/PALS)."""
    from mlps.model import Requirement

    reqs = []
    if run.results_root is not None:
        reqs.append(Requirement("writable", str(run.results_root), reason="the results directory"))
    if uses_mpi and not run.what_if:
        mpi_bin = run.option("mpi_bin", "mpirun")
        if mpi_bin != "srun":
            reqs.append(Requirement("mpi", mpi_bin, reason="launching the benchmark ranks"))
        if not ssh_check_bypassed(mpi_bin):
            reqs += [Requirement("ssh", host.name, reason="MPI ranks on remote hosts") for host in run.hosts]
    return reqs


def format_problems(problems: Sequence[Problem]) -> str:
    lines = []
    for number, problem in enumerate(problems, start=1):
        lines.append(f"{number}) {problem.where}: {problem.what}")
        for hint_line in problem.fix.splitlines():
            lines.append(f"     {hint_line}")
    return "\n".join(lines)


def raise_if_problems(problems: Sequence[Problem]) -> None:
    """Raise one :class:`mlps.DependencyError` listing every problem with its install hint."""
    if not problems:
        return
    from mlps.errors import DependencyError

    count = len(problems)
    raise DependencyError(
        f"the environment is not ready for this run: {count} problem{'s' if count != 1 else ''} found",
        suggestion=format_problems(problems) + "\n(fix these, or pass --skip-validation to run anyway)",
        details={"problems": [p.to_dict() for p in problems]})
