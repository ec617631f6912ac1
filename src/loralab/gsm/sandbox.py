"""Run untrusted Python (model-written code) in a separate, limited process. Threat model: docs/sandbox.md.

Layers, from hard to soft:
1. A fresh interpreter (`python -I -S -B`): no user site, no PYTHON* variables, no bytecode writes, stdin
   closed, a scrubbed environment (no variable of the parent), a private temporary working directory that is
   deleted afterwards.
2. rlimits set by the child on itself before the code runs: CPU time, address space, file size, open files,
   no core files, and RLIMIT_NPROC 0 (no new process or thread; the kernel does not apply it to root).
3. Where `unshare` works without privileges: new user, network, PID and mount namespaces (no network
   interface but a loopback that is down; only its own processes in /proc; every process of the namespace
   dies with it).
4. The parent enforces the wall-clock timeout and an output cap, then kills the whole process group.
5. An audit hook (PEP 578) in the child refuses sockets, subprocesses, forks, signals to other processes,
   foreign calls through ctypes (importing it is allowed: sympy needs it), cffi, gc introspection, writes
   outside the working directory and reads outside it and the standard library (and site-packages when
   allowed). This is defence in depth, not a boundary: code determined to escape can subvert a hook that
   lives in its own interpreter.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

LIMIT_NAMES = ("timeout", "cpu", "memory", "output", "file-size", "blocked", "exit")
_UNSHARE_FLAGS = ("--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount-proc")
# util-linux's unshare says this when its child dies of a signal; it is noise, not the program's output
_UNSHARE_NOISE = "unshare: sigprocmask unblock failed"
_MAX_BLOCKED = 20


@dataclass(frozen=True)
class Limits:
    """What one run may use. Each value is enforced by the OS or the parent (see the module docstring)."""

    timeout_s: float = 5.0
    """wall-clock seconds before the process group is killed"""
    cpu_s: int = 2
    """CPU seconds (RLIMIT_CPU; SIGXCPU at the limit, SIGKILL one second later)"""
    memory_mb: int = 512
    """address space in MiB (RLIMIT_AS); allocations beyond it raise MemoryError"""
    output_bytes: int = 65536
    """bytes kept of stdout and of stderr each; more stops the run ("output")"""
    file_mb: int = 16
    """largest file the code may write, in MiB (RLIMIT_FSIZE)"""
    open_files: int = 64
    """open file descriptors (RLIMIT_NOFILE)"""
    site_packages: bool = False
    """let the code import (read only) the packages installed next to loralab, e.g. sympy"""

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cpu_s", "memory_mb", "output_bytes", "file_mb", "open_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.memory_mb < 32:
            raise ValueError(f"memory_mb {self.memory_mb}: a Python interpreter needs at least 32 MiB")
        if self.open_files < 8:
            raise ValueError(f"open_files {self.open_files}: a Python interpreter needs at least 8")


@dataclass(frozen=True)
class SandboxResult:
    """What came out of one run, and which limit, if any, stopped it.

    `limit` is one of LIMIT_NAMES or None: timeout (wall clock), cpu, memory, output (stdout or stderr over
    the cap), file-size, blocked (an operation refused by the audit hook, and the program failed), exit (a
    non-zero exit status for any other reason). `blocked` lists the refused operations even when the program
    recovered from them."""

    stdout: str
    stderr: str
    limit: str | None
    exit_code: int | None
    wall_s: float
    cpu_s: float
    blocked: tuple[str, ...] = ()
    namespaces: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.limit is None

    def summary(self) -> str:
        """One line: how the run ended."""
        how = "finished" if self.ok else "failed" if self.limit == "exit" else f"stopped by {self.limit}"
        parts = [f"{how}: exit {self.exit_code}", f"wall {self.wall_s:.2f} s", f"cpu {self.cpu_s:.2f} s"]
        if self.blocked:
            parts.append("blocked " + ", ".join(self.blocked[:3]) + (" ..." if len(self.blocked) > 3 else ""))
        parts.append("namespaces on" if self.namespaces else "namespaces off")
        return "; ".join(parts)


# The functions named _child_* run in the sandboxed interpreter: they are sent there as source text (see
# _child_source), so each imports what it needs itself and uses no module global but the other _child_*.


def _child_report(status_fd: int, line: str) -> None:
    """Tell the parent something on the status pipe (a refused operation, the limit that was hit)."""
    import contextlib
    import os

    with contextlib.suppress(OSError):
        os.write(status_fd, (line + "\n").encode("utf-8", "replace"))


def _child_rules() -> tuple[
    tuple[str, ...], int, tuple[str, ...], frozenset[str], frozenset[str], frozenset[str]
]:
    """The audit hook's tables (docs/sandbox.md): readable devices, the write flags of os.open, refused
    event prefixes, refused imports, path-mutating events and directory-listing events."""
    import os

    devices = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    denied = (
        *("socket.", "subprocess.", "pty.", "ctypes.", "gc.get_", "resource.setrlimit", "resource.prlimit"),
        *("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill"),
    )
    denied_imports = frozenset({"cffi", "_cffi_backend"})
    mutating = frozenset(
        {
            *(
                "os.remove",
                "os.rename",
                "os.rmdir",
                "os.mkdir",
                "os.chmod",
                "os.chown",
                "os.link",
                "os.symlink",
            ),
            *("os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.lchmod", "os.setxattr"),
            *("os.removexattr", "os.chdir", "os.mkfifo", "os.mknod"),
        }
    )
    listing = frozenset({"os.listdir", "os.scandir", "os.listxattr", "os.getxattr"})
    return devices, write_flags, denied, denied_imports, mutating, listing


def _child_hook(workdir: str, status_fd: int) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook: refuses the events listed in docs/sandbox.md by raising in the code that caused them
    (PermissionError, ImportError for imports) and reports each refusal once."""
    import os
    import sys

    realpath, getcwd, join, fsdecode, fspath = (
        os.path.realpath,
        os.getcwd,
        os.path.join,
        os.fsdecode,
        os.fspath,
    )
    read_roots = (*(realpath(p) for p in sys.path if p), workdir)
    devices, write_flags, denied, denied_imports, mutating, listing = _child_rules()
    seen: set[str] = set()

    def resolve(path: Any) -> str | None:
        if path is None:
            return getcwd()
        if isinstance(path, int):
            return None  # a descriptor the process already holds
        return realpath(join(getcwd(), fsdecode(fspath(path))))

    def inside(path: str | None, roots: tuple[str, ...]) -> bool:
        return path is None or any(path == r or path.startswith(r + "/") for r in roots)

    def refuse(event: str, detail: str = "", exc: type[Exception] = PermissionError) -> None:
        key = f"{event} {detail}".strip()
        if key not in seen and len(seen) < 64:
            seen.add(key)
            _child_report(status_fd, f"blocked {key}")
        raise exc(f"sandbox: {key} is not allowed")

    def check_open(path: Any, mode: str | None, flags: int) -> None:
        target = resolve(path)
        if target is None:
            return
        writes = bool(flags & write_flags) or (mode is not None and any(c in mode for c in "wax+"))
        if mode is None:  # os.open: only inside the working directory (so no directory fd from outside)
            ok = inside(target, (workdir,)) or target in devices
        elif writes:
            ok = inside(target, (workdir,)) or target == "/dev/null"
        else:
            ok = inside(target, read_roots) or target in devices
        if not ok:
            refuse("open", f"{target} ({'write' if writes else 'read'})")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "ctypes.dlopen" and args and args[0] is None:
            return  # `import ctypes` opens the interpreter itself (sympy needs it); naming a symbol is refused
        if event.startswith(denied):
            refuse(event)
        elif event == "import" and args and args[0] in denied_imports:
            refuse(event, str(args[0]), ImportError)
        elif event == "open":
            check_open(*args)
        elif event in mutating:
            for arg in args:
                if isinstance(arg, (str, bytes)) or hasattr(arg, "__fspath__"):
                    target = resolve(arg)
                    if not inside(target, (workdir,)):
                        refuse(event, str(target))
        elif event in listing and args:
            target = resolve(args[0])
            if not inside(target, read_roots):
                refuse(event, str(target))

    return hook


def _child_limit(cfg: dict[str, Any]) -> None:
    """Lower the rlimits (soft = hard, so the code cannot raise them again; CPU gets one second of grace
    for the SIGXCPU handler) and report a CPU-limit hit before exiting."""
    import os
    import resource
    import signal
    import sys

    def on_cpu_limit(signum: int, frame: object) -> None:
        _child_report(cfg["status_fd"], "cpu")
        sys.stderr.write(f"sandbox: CPU time limit of {cfg['cpu_s']} s reached\n")
        os._exit(128 + signum)

    signal.signal(signal.SIGXCPU, on_cpu_limit)
    cpu, memory, size, files = (int(cfg[k]) for k in ("cpu_s", "memory_bytes", "file_bytes", "open_files"))
    limits = (
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, memory, memory),
        (resource.RLIMIT_FSIZE, size, size),
        (resource.RLIMIT_NOFILE, files, files),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_NPROC, 0, 0),
    )
    for which, soft, hard in limits:
        current = resource.getrlimit(which)[1]
        cap = hard if current == resource.RLIM_INFINITY else min(hard, current)
        resource.setrlimit(which, (min(soft, cap), cap))


def _child_main(cfg: dict[str, Any]) -> None:
    """The sandboxed interpreter's entry: compile the program, set the limits, install the hook, run it, and
    turn its end into an exit status, a traceback without the sandbox's own frames, and a status line."""
    import builtins
    import errno
    import os
    import sys
    import traceback

    workdir = os.path.realpath(cfg["workdir"])
    sys.path.extend(cfg["site_paths"])
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    with open(os.path.join(workdir, cfg["main"]), encoding="utf-8") as f:
        source = f.read()
    try:
        code = compile(source, cfg["main"], "exec")
    except SyntaxError:
        traceback.print_exc(limit=0)
        sys.exit(1)
    hook = _child_hook(workdir, cfg["status_fd"])
    _child_limit(cfg)
    if cfg["audit"]:
        sys.addaudithook(hook)
    try:
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    except MemoryError:
        _child_report(cfg["status_fd"], "memory")
        sys.stderr.write(f"MemoryError: sandbox memory limit of {cfg['memory_bytes'] >> 20} MiB reached\n")
        sys.exit(1)
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
            _child_report(cfg["status_fd"], "file-size")
        shown = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        # frames of this bootstrap (the exec, the audit hook) are the sandbox's, not the program's
        shown.stack = traceback.StackSummary.from_list([s for s in shown.stack if s.filename != "<string>"])
        sys.stderr.write("".join(shown.format()))
        sys.exit(1)


@lru_cache(maxsize=1)
def _child_source() -> str:
    """The program `python -c` runs in the sandbox: the _child_* functions and a call of _child_main."""
    parts = [
        inspect.getsource(f) for f in (_child_report, _child_rules, _child_hook, _child_limit, _child_main)
    ]
    call = "import json, sys\n_child_main(json.loads(sys.argv[1]))\n"
    return "from __future__ import annotations\n\n" + "\n\n".join(parts) + call


@lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """Whether `unshare` can give a child new user, network, PID and mount namespaces here, unprivileged."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        probe = subprocess.run(
            [unshare, *_UNSHARE_FLAGS, sys.executable, "-I", "-S", "-c", "pass"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _clean_env(workdir: str) -> dict[str, str]:
    """The child's whole environment: nothing of the parent's (no tokens, keys or paths) passes."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _site_paths() -> list[str]:
    import sysconfig

    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (its pid, and so its group, stay reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _read_ready(sel: Any, buffers: dict[int, bytearray], timeout: float) -> bool:
    """Read once from each pipe that is ready within `timeout`; False if none was."""
    ready = sel.select(timeout)
    for key, _ in ready:
        chunk = os.read(key.fd, 65536)
        if chunk:
            buffers[key.fd] += chunk
        else:
            sel.unregister(key.fd)
    return bool(ready)


def _collect(
    proc: subprocess.Popen[bytes], status_fd: int, limits: Limits, deadline: float
) -> tuple[bytes, bytes, bytes, str | None]:
    """Read stdout, stderr and the status pipe until the child exits, the deadline passes or an output
    cap is crossed; returns what was read and "timeout", "output" or None."""
    import selectors

    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray(), status_fd: bytearray()}

    def over_cap() -> bool:
        return max(len(buffers[out_fd]), len(buffers[err_fd])) > limits.output_bytes

    with selectors.DefaultSelector() as sel:
        for fd in buffers:
            sel.register(fd, selectors.EVENT_READ)
        exited_at: float | None = None
        while sel.get_map() and not over_cap():
            now = time.monotonic()
            if exited_at is None and _exited(proc.pid):
                exited_at = now
            # past the deadline, or exited while something else still holds the pipes (the group kill ends it)
            if now >= deadline or (exited_at is not None and now - exited_at > 0.5):
                break
            _read_ready(sel, buffers, min(deadline - now, 0.05))
        for _ in range(64):  # what is already in the pipes
            if not sel.get_map() or over_cap() or not _read_ready(sel, buffers, 0):
                break
    stopped = "output" if over_cap() else None
    while stopped is None and not _exited(proc.pid):
        if time.monotonic() >= deadline:
            stopped = "timeout"
        else:
            time.sleep(0.005)
    return bytes(buffers[out_fd]), bytes(buffers[err_fd]), bytes(buffers[status_fd]), stopped


def _kill_and_reap(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """SIGKILL the child's process group (before reaping, so the group id cannot have been reused), then
    reap it; returns its exit code (negative: killed by that signal) and the CPU seconds it and the
    descendants it reaped used."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return proc.returncode, usage.ru_utime + usage.ru_stime


def _remove_tree(path: str) -> None:
    """Delete the working directory even where the code made parts of it unreadable (never following a
    symbolic link out of it)."""
    try:
        os.chmod(path, 0o700)
    except OSError:
        return
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            sub = os.path.join(root, d)
            if not os.path.islink(sub):
                with contextlib.suppress(OSError):
                    os.chmod(sub, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _classify(
    stopped: str | None,
    status: list[str],
    blocked: tuple[str, ...],
    exit_code: int,
    cpu: float,
    limits: Limits,
) -> str | None:
    if stopped is not None:
        return stopped
    if exit_code == 0:
        return None
    if "cpu" in status or cpu >= limits.cpu_s or exit_code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return "cpu"
    if "memory" in status:
        return "memory"
    if "file-size" in status:
        return "file-size"
    return "blocked" if blocked else "exit"


def _text(raw: bytes, cap: int) -> tuple[str, bool]:
    return raw[:cap].decode("utf-8", "replace"), len(raw) > cap


def run_code(
    code: str, limits: Limits | None = None, *, namespaces: bool | None = None, audit_hook: bool = True
) -> SandboxResult:
    """Run `code` as a Python program under `limits` and return its (truncated) output and what stopped it.

    `namespaces`: None uses Linux namespaces where `unshare` works unprivileged, True requires them (a
    RuntimeError where they do not work), False does without. `audit_hook=False` leaves only the OS layers,
    which is for measuring them (the tests do), not for running untrusted code."""
    limits = limits or Limits()
    use_ns = namespaces_available() if namespaces is None else namespaces
    if use_ns and not namespaces_available():
        raise RuntimeError("namespaces requested, but `unshare --user --net --pid` does not work here")
    workdir = tempfile.mkdtemp(prefix="loralab-sandbox-")
    try:
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as f:
            f.write(code)
        status_r, status_w = os.pipe()
        cfg = {
            "status_fd": status_w,
            "workdir": workdir,
            "main": "main.py",
            "cpu_s": limits.cpu_s,
            "memory_bytes": limits.memory_mb << 20,
            "file_bytes": limits.file_mb << 20,
            "open_files": limits.open_files,
            "site_paths": _site_paths() if limits.site_packages else [],
            "audit": audit_hook,
        }
        argv = [sys.executable, "-I", "-S", "-B", "-X", "utf8", "-c", _child_source(), json.dumps(cfg)]
        if use_ns:
            argv = [shutil.which("unshare") or "unshare", *_UNSHARE_FLAGS, *argv]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(status_w,),
                cwd=workdir,
                env=_clean_env(workdir),
                start_new_session=True,
            )
        finally:
            os.close(status_w)
        try:
            out, err, status_raw, stopped = _collect(proc, status_r, limits, start + limits.timeout_s)
        finally:
            exit_code, cpu = _kill_and_reap(proc)
            wall = time.monotonic() - start
            os.close(status_r)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    finally:
        _remove_tree(workdir)
    status = status_raw.decode("utf-8", "replace").splitlines()
    blocked = tuple(dict.fromkeys(s[len("blocked ") :] for s in status if s.startswith("blocked ")))
    stdout, cut_out = _text(out, limits.output_bytes)
    stderr, cut_err = _text(err, limits.output_bytes)
    stderr = "".join(line for line in stderr.splitlines(True) if not line.startswith(_UNSHARE_NOISE))
    return SandboxResult(
        stdout=stdout,
        stderr=stderr,
        limit=_classify(stopped, status, blocked, exit_code, cpu, limits),
        exit_code=exit_code,
        wall_s=wall,
        cpu_s=cpu,
        blocked=blocked[:_MAX_BLOCKED],
        namespaces=use_ns,
        truncated=cut_out or cut_err,
    )


def run_file(path: str | os.PathLike[str], limits: Limits | None = None, **kwargs: Any) -> SandboxResult:
    """`run_code` on the text of a Python file (read by the caller's process, run in the sandbox)."""
    with open(path, encoding="utf-8") as f:
        return run_code(f.read(), limits, **kwargs)
