"""The sandbox against hostile snippets (each stopped by the limit named), the tool-integrated reasoning loop
driven by a scripted fake model, and `loralab sandbox run`. Every run uses small limits and stays fast."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from loralab.gsm.extract import grade
from loralab.gsm.sandbox import Limits, SandboxResult, namespaces_available, run_code
from loralab.gsm.tir import STOPS, cut_at_stop, format_round, shown_output, tir_generate, truncate_output
from tests.conftest import run_cli

SMALL = Limits(timeout_s=5, cpu_s=1, memory_mb=128, output_bytes=4096, file_mb=1)
MODES = [
    pytest.param(True, id="namespaces"),
    pytest.param(False, id="no-namespaces"),
]


def _mode(ns: bool) -> bool:
    if ns and not namespaces_available():
        pytest.skip("unshare cannot make user/net/pid namespaces here")
    return ns


@pytest.mark.parametrize("ns", MODES)
def test_normal_code_prints_the_answer(ns: bool) -> None:
    r = run_code("total = sum(i * i for i in range(1, 11))\nprint(total)", SMALL, namespaces=_mode(ns))
    assert (r.stdout, r.stderr, r.limit, r.exit_code, r.blocked) == ("385\n", "", None, 0, ())
    assert r.ok and r.namespaces == ns and r.wall_s < 5


def test_infinite_loop_is_stopped_by_the_cpu_limit() -> None:
    r = run_code("while True:\n    pass", Limits(timeout_s=20, cpu_s=1))
    assert r.limit == "cpu" and r.wall_s < 20
    assert "CPU time limit of 1 s" in r.stderr


def test_sleeping_forever_is_stopped_by_the_wall_clock() -> None:
    r = run_code("import time\nprint('start', flush=True)\ntime.sleep(60)", Limits(timeout_s=0.5, cpu_s=5))
    assert r.limit == "timeout" and r.stdout == "start\n"
    assert 0.5 <= r.wall_s < 3 and r.exit_code == -9


@pytest.mark.parametrize("ns", MODES)
def test_fork_bomb_is_blocked(ns: bool) -> None:
    r = run_code("import os\nwhile True:\n    os.fork()", SMALL, namespaces=_mode(ns))
    assert r.limit == "blocked" and r.blocked == ("os.fork",)
    assert r.stderr.endswith("PermissionError: sandbox: os.fork is not allowed\n")


def test_memory_bomb_is_stopped_by_the_memory_limit() -> None:
    r = run_code("chunks = []\nwhile True:\n    chunks.append(bytearray(10**6))", SMALL)
    assert r.limit == "memory" and "memory limit of 128 MiB" in r.stderr


def test_writing_outside_its_directory_is_blocked(tmp_path: Path) -> None:
    target = tmp_path / "escape.txt"
    for path in (str(target), "../escape.txt"):
        r = run_code(f"open({path!r}, 'w').write('owned')", SMALL)
        assert r.limit == "blocked" and r.blocked[0].startswith("open ") and r.blocked[0].endswith("(write)")
    assert not target.exists() and not (Path(tempfile.gettempdir()) / "escape.txt").exists()
    # inside its own directory it may write and read back; the directory is gone afterwards
    r = run_code(
        "import os\nopen('note.txt', 'w').write('kept')\nprint(open('note.txt').read())\nprint(os.getcwd())"
    )
    note, cwd = r.stdout.split()
    assert r.ok and note == "kept" and not Path(cwd).exists()


def test_reading_user_files_and_listing_directories_is_blocked() -> None:
    for path in (os.path.realpath(__file__), "/etc/passwd"):
        r = run_code(f"print(open({path!r}).read())", SMALL)
        assert r.limit == "blocked" and r.blocked == (f"open {path} (read)",) and r.stdout == ""
    r = run_code("import os\nprint(os.listdir('/'))", SMALL)
    assert r.limit == "blocked" and r.blocked == ("os.listdir /",)


@pytest.mark.parametrize("ns", MODES)
def test_sockets_are_blocked(ns: bool) -> None:
    r = run_code("import socket\nsocket.socket()", SMALL, namespaces=_mode(ns))
    assert r.limit == "blocked" and r.blocked == ("socket.__new__",)
    # a connection by name is refused at the name lookup already
    r = run_code("import socket\nsocket.create_connection(('localhost', 9), timeout=1)", SMALL, namespaces=ns)
    assert r.limit == "blocked" and r.blocked == ("socket.getaddrinfo",)


def test_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALAB_TEST_SECRET", "hunter2")
    r = run_code("import os\nprint(sorted(os.environ))\nprint(os.environ.get('LORALAB_TEST_SECRET'))", SMALL)
    assert r.ok and "hunter2" not in r.stdout
    keys = "['HOME', 'LANG', 'LC_ALL', 'MKL_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PATH', 'TMPDIR']"
    assert r.stdout == f"{keys}\nNone\n"
    # nor through the parent's /proc entry
    r = run_code(f"print(open('/proc/{os.getpid()}/environ').read())", SMALL)
    assert r.limit == "blocked" and "hunter2" not in r.stdout


@pytest.mark.parametrize(
    ("code", "event"),
    [
        ("import subprocess\nsubprocess.run(['echo', 'hi'])", "subprocess.Popen"),
        ("import os\nos.system('echo hi')", "os.system"),
        ("import os\nos.execv('/bin/echo', ['echo', 'hi'])", "os.exec"),
        ("import os\nos.posix_spawn('/bin/echo', ['echo'], {})", "os.posix_spawn"),
        ("import ctypes\nctypes.CDLL(None).system(b'echo hi')", "ctypes.dlsym"),
        ("import ctypes\nctypes.CDLL('libc.so.6')", "ctypes.dlopen"),
        ("import ctypes\nprint(ctypes.string_at(id(1), 8))", "ctypes.string_at"),
        ("import cffi", "import cffi"),
    ],
)
def test_subprocesses_and_ctypes_are_blocked(code: str, event: str) -> None:
    r = run_code(code, SMALL)
    assert r.limit == "blocked" and r.blocked == (event,) and "hi" not in r.stdout


def test_output_flood_is_stopped_by_the_output_cap() -> None:
    r = run_code("while True:\n    print('x' * 1000)", SMALL)
    assert r.limit == "output" and r.truncated and len(r.stdout) == SMALL.output_bytes


def test_big_file_is_stopped_by_the_file_size_limit() -> None:
    r = run_code("open('big.bin', 'wb').write(b'0' * (2 << 20))", SMALL)
    assert r.limit == "file-size" and "File too large" in r.stderr


def test_errors_and_exit_codes() -> None:
    r = run_code("import sys\nprint('partial')\nsys.exit(3)", SMALL)
    assert (r.limit, r.exit_code, r.stdout) == ("exit", 3, "partial\n")
    r = run_code("def f(:\n", SMALL)
    assert r.limit == "exit" and "SyntaxError" in r.stderr
    r = run_code("print(1 / 0)", SMALL)
    assert r.limit == "exit" and r.stderr.splitlines()[-1] == "ZeroDivisionError: division by zero"
    # the traceback shows the program's frames, not the sandbox's
    assert 'File "main.py", line 1' in r.stderr and "<string>" not in r.stderr


def test_installed_packages_only_when_allowed() -> None:
    code = "import yaml\nprint(yaml.safe_load('a: 1')['a'])"
    r = run_code(code, SMALL)
    assert r.limit == "exit" and "ModuleNotFoundError" in r.stderr
    r = run_code(code, Limits(timeout_s=10, cpu_s=5, memory_mb=256, site_packages=True))
    assert r.ok and r.stdout == "1\n"


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="cpu_s must be positive"):
        Limits(cpu_s=0)
    with pytest.raises(ValueError, match="at least 32 MiB"):
        Limits(memory_mb=16)


# ---------------------------------------------------------------------------
# The OS layers alone (no audit hook): what namespaces guarantee by themselves
# ---------------------------------------------------------------------------


def test_without_the_hook_namespaces_still_cut_the_network() -> None:
    _mode(True)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"
    r = run_code(code, SMALL, namespaces=True, audit_hook=False)
    assert r.limit == "exit" and "Network is unreachable" in r.stderr and r.stdout == ""
    with pytest.raises(TimeoutError):
        server.accept()
    server.close()


def test_without_the_hook_namespaces_hide_the_parent_environment() -> None:
    _mode(True)
    r = run_code(
        f"print(open('/proc/{os.getpid()}/environ').read())", SMALL, namespaces=True, audit_hook=False
    )
    assert r.limit == "exit" and "FileNotFoundError" in r.stderr


@pytest.mark.parametrize("ns", MODES)
def test_without_the_hook_every_child_process_dies_with_the_run(ns: bool, tmp_path: Path) -> None:
    # a grandchild that would outlive the run keeps a FIFO open for writing; once it dies the reader sees EOF.
    # Run as root the kernel ignores RLIMIT_NPROC, so fork succeeds here and the kill is what is measured;
    # with namespaces the grandchild even leaves the session, which a process-group kill alone would miss.
    _mode(ns)
    fifo = tmp_path / "alive"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        f"    {'os.setsid()' if ns else 'pass'}\n"
        f"    fd = os.open({str(fifo)!r}, os.O_WRONLY)\n"
        "    os.write(fd, b'alive')\n"
        "    open('ready', 'w').close()\n"
        "    time.sleep(60)\n"
        "else:\n"
        "    for _ in range(400):\n"
        "        if os.path.exists('ready'):\n"
        "            break\n"
        "        time.sleep(0.01)\n"
        "    print('parent done')\n"
    )
    r = run_code(code, SMALL, namespaces=ns, audit_hook=False)
    if os.geteuid() != 0 and r.stderr.strip().endswith("Resource temporarily unavailable"):
        os.close(reader)
        return  # not root: RLIMIT_NPROC 0 refused the fork itself
    assert r.stdout == "parent done\n"
    deadline, seen = time.monotonic() + 3, b""
    while time.monotonic() < deadline:
        try:
            chunk = os.read(reader, 64)
        except BlockingIOError:
            time.sleep(0.02)
            continue
        if not chunk:
            break  # EOF: no writer left
        seen += chunk
    else:
        pytest.fail("the grandchild outlived the sandbox run")
    os.close(reader)
    assert seen == b"alive"


# ---------------------------------------------------------------------------
# Tool-integrated reasoning with a scripted fake model
# ---------------------------------------------------------------------------


class Scripted:
    """A fake model: returns its script's pieces in order and records each prompt and stop list."""

    def __init__(self, pieces: Sequence[str]) -> None:
        self.pieces = list(pieces)
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def __call__(self, prompt: str, stop: Sequence[str]) -> str:
        self.calls.append((prompt, tuple(stop)))
        return self.pieces.pop(0)


def test_tir_runs_the_code_and_continues() -> None:
    model = Scripted(["Multiply.\n```python\nprint(17 * 23)\n```\n", "So the total is \\boxed{391}."])
    result = tir_generate(model, "PROMPT\n", max_rounds=3, limits=SMALL)
    expected = "Multiply.\n```python\nprint(17 * 23)\n```\n```output\n391\n```\nSo the total is \\boxed{391}."
    assert result.text == expected
    assert [run.code for run in result.runs] == ["print(17 * 23)"] and result.runs[0].shown == "391"
    # the second call saw the first piece and the real output, and both calls could stop at a code block
    assert model.calls[1] == ("PROMPT\n" + expected[: expected.index("So the")], STOPS)
    assert grade(result.text, 391).correct


def test_tir_replaces_an_output_fence_the_model_writes_itself() -> None:
    model = Scripted(["```python\nprint(2 + 2)\n```\n```output", "\\boxed{4}"])
    result = tir_generate(model, "", limits=SMALL)
    assert result.text == format_round("print(2 + 2)", "4") + "\\boxed{4}"


def test_tir_stops_after_max_rounds() -> None:
    block = "```python\nprint(1)\n```\n"
    model = Scripted([block, block, "still going " + block])
    result = tir_generate(model, "", max_rounds=2, limits=SMALL)
    assert len(result.runs) == 2 and len(model.calls) == 3
    assert [stop for _, stop in model.calls] == [STOPS, STOPS, ()]  # the last call cannot be stopped for code
    assert result.text == 2 * format_round("print(1)", "1") + "still going " + block


def test_tir_shows_errors_and_limits_to_the_model() -> None:
    model = Scripted(["```python\nprint(1 / 0)\n```\n", "```python\nwhile True:\n    pass\n```\n", "done"])
    result = tir_generate(model, "", limits=Limits(timeout_s=0.5, cpu_s=5))
    assert [run.shown for run in result.runs] == [
        "ZeroDivisionError: division by zero",
        "TimeoutError: the code ran past the time limit",
    ]
    assert result.text.endswith("```output\nTimeoutError: the code ran past the time limit\n```\ndone")


def test_tir_keeps_writing_after_a_fence_that_is_not_python() -> None:
    model = Scripted(["Plain text:\n```\n", "hello\n```\nand \\boxed{3}"])
    result = tir_generate(model, "", limits=SMALL)
    assert result.runs == () and result.text == "Plain text:\n```\nhello\n```\nand \\boxed{3}"


def test_output_truncation() -> None:
    text = "a" * 50 + "b" * 50
    # 60 characters: 20 kept (10 head, 10 tail), 80 cut
    assert truncate_output(text, 60) == "a" * 10 + "\n... [80 characters cut] ...\n" + "b" * 10
    assert truncate_output("short", 60) == "short"
    failed = SandboxResult("partial\n", "Traceback ...\nValueError: bad\n", "exit", 1, 0.1, 0.0)
    assert shown_output(failed) == "partial\nValueError: bad"
    assert cut_at_stop("code\n```\n\nmore", ["\n```\n"]) == "code\n```\n"
    assert cut_at_stop("no stop", ["\n```\n"]) == "no stop"


def test_hf_adapter_stops_right_after_a_stop_string(tiny_base: Path) -> None:
    from loralab.gsm.tir import HFGenerate
    from loralab.models.chat import prompt_text
    from loralab.models.load import load_base

    model, tok = load_base(tiny_base)
    generate = HFGenerate(model, tok, max_new_tokens=16)
    prompt = prompt_text(tok, "Who is Marie Curie married to?")
    full = generate(prompt, ())
    assert len(full) >= 8 and generate(prompt, ["never written"]) == full
    # a stop string inside the new text: cut right after its first occurrence
    stop = full[2:5]
    assert generate(prompt, [stop]) == full[: full.index(stop) + 3]
    # one that would span the prompt's end and the new text's start does not count there
    spanning = prompt[-1] + full[:2]
    assert generate(prompt, [spanning]) == cut_at_stop(full, [spanning])


# ---------------------------------------------------------------------------
# loralab sandbox run
# ---------------------------------------------------------------------------


def test_cli_runs_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = tmp_path / "ok.py"
    ok.write_text("print(6 * 7)\n")
    assert run_cli(["sandbox", "run", str(ok)], monkeypatch) == 0
    out, err = capsys.readouterr()
    assert out == "42\n" and err.startswith("sandbox: finished: exit 0")
    loop = tmp_path / "loop.py"
    loop.write_text("import time\ntime.sleep(60)\n")
    assert run_cli(["sandbox", "run", str(loop), "--timeout", "0.3", "--cpu-s", "1"], monkeypatch) == 1
    assert capsys.readouterr().err.startswith("sandbox: stopped by timeout: exit -9")
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    assert run_cli(["sandbox", "run", str(broken)], monkeypatch) == 1
    assert "SyntaxError" in (err := capsys.readouterr().err) and "sandbox: failed: exit 1;" in err


def test_cli_missing_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["sandbox", "run", str(tmp_path / "nope.py")], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith("nope.py: no such file") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--timeout", "nan"], "--timeout nan: must be positive and at most 3600"),
        (["--timeout", "inf"], "--timeout inf: must be positive and at most 3600"),
        (["--cpu-s", "100000000000000000000"], "--cpu-s 100000000000000000000: must be positive and at most"),
        (["--timeout", "0"], "--timeout 0.0: must be positive"),
    ],
)
def test_cli_limits_are_bounded(
    flags: list[str],
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """NaN crashed the limit setting, inf slept forever, a huge --cpu-s overflowed in the child."""
    ok = tmp_path / "ok.py"
    ok.write_text("print(1)\n")
    assert run_cli(["sandbox", "run", str(ok), *flags], monkeypatch) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
    assert run_cli(["sandbox", "run", str(tmp_path)], monkeypatch) == 2
    assert "a folder, not a Python file" in capsys.readouterr().err
