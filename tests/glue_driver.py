"""Run `examples/glue.py`'s `main` (or `glue_snapshots.py`'s, with `GLUE_SCRIPT=glue_snapshots`) in a fresh process,
once or several times, with an optional fault injected.

    python tests/glue_driver.py RUNS.json RESULTS.json

`RUNS.json` is a list of argument lists; `RESULTS.json` receives, for each run, its exit status and what it wrote to
stderr (an uncaught exception is exit status 1 with its traceback); under `accelerate launch`, process N > 0 writes
`RESULTS.json.N`. `GLUE_FAULT` injects one fault, counted over the
file writes of the checkpoints and results (each `torch.save`, `safetensors` save, atomic text write and rename) and
the optimizer steps (glue.py's `after_step`):

- `kill:N`: at the N-th of them the process dies at once (`os._exit(137)`, as after SIGKILL); a `torch.save` that is
  the N-th leaves its file half written first.
- `fsize:N`: no file can grow beyond N bytes (`RLIMIT_FSIZE`): a larger write fails for real, in `torch.save` or
  `safetensors` as on a full disk.
- `erofs`: every file opened for writing under `--output_dir` fails with "Read-only file system".

    python tests/glue_driver.py --serve

imports the four examples once, then forks a fresh child process for each request read from stdin (one JSON line:
`runs`, `results`, `script`, `fault`, `env`, `log`), which runs them as above with its stdout and stderr in `log` and
exits; the server answers with the request's `id` and the child's exit status (`{"id": I, "rc": N}`). A child is a
real process of its own, killed for real by `kill:N`, but it starts with the examples already imported:
`tests/helpers.run_examples` uses one server per test worker, so that the imports (about 6 s of CPU) are paid once,
not once per test. What differs from a new interpreter: every child of one server has the server's hash seed, and
what a library read from the environment when it was imported (`HF_HUB_OFFLINE`, for one) is the server's; the log
is a file, so a `fsize:N` fault limits it too (a run writes a few hundred bytes there).
"""

import builtins
import contextlib
import errno
import importlib
import io
import json
import os
import sys
import threading
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "examples"), str(ROOT)]

import torch  # noqa: E402

import hf_lrsched.atomic  # noqa: E402

import glue  # noqa: E402

SCRIPT = importlib.import_module(os.environ.get("GLUE_SCRIPT", "glue"))


def install_fault(spec: str, output_dir: str) -> None:
    kind, _, count = spec.partition(":")
    state = {"events": 0}

    def event() -> bool:
        state["events"] += 1
        return state["events"] == int(count)

    if kind == "kill":
        import accelerate.utils.other as accelerate_other

        def wrap(function, truncate=False):
            def wrapped(*args, **kwargs):
                if event():
                    if truncate and isinstance(args[1], (str, os.PathLike)):
                        buffer = io.BytesIO()
                        real_torch_save(args[0], buffer)
                        data = buffer.getvalue()
                        with open(args[1], "wb") as f:
                            f.write(data[: len(data) // 2])
                    os._exit(137)
                return function(*args, **kwargs)

            return wrapped

        real_torch_save = torch.save
        torch.save = wrap(torch.save, truncate=True)
        accelerate_other.safe_save_file = wrap(accelerate_other.safe_save_file)
        hf_lrsched.atomic.write_file = wrap(hf_lrsched.atomic.write_file)
        os.replace = wrap(os.replace)
        glue.after_step = wrap(glue.after_step)
    elif kind == "fsize":  # a real write error, as on a full disk: files may grow to `count` bytes, no further
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(count), resource.RLIM_INFINITY))
    elif kind == "erofs":
        real_open, root = builtins.open, os.path.abspath(output_dir)

        def read_only(file, mode="r", *args, **kwargs):
            if (
                isinstance(file, (str, os.PathLike))
                and os.path.abspath(file).startswith(root)
                and set(mode) & set("wax+")
            ):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
            return real_open(file, mode, *args, **kwargs)

        builtins.open = read_only
    else:
        raise SystemExit(f"unknown GLUE_FAULT {spec!r}")


def run(argv: list[str]) -> dict:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            code = SCRIPT.main([str(a) for a in argv])
        except SystemExit as error:  # argparse's own errors
            code = error.code
        except BaseException:
            traceback.print_exc()
            code = 1
    return {"rc": code, "stderr": stderr.getvalue()}


def run_all(runs: list[list[str]], results_path: Path) -> None:
    """Each run in turn, its result added to `results_path` as soon as it ends (a killed process keeps the earlier)."""
    if os.environ.get("RANK", "0") != "0":  # launched on several processes: one file each
        results_path = results_path.with_name(f"{results_path.name}.{os.environ['RANK']}")
    if os.environ.get("GLUE_FAULT"):
        argv = runs[0]
        install_fault(os.environ["GLUE_FAULT"], argv[argv.index("--output_dir") + 1])
    results = []
    for argv in runs:
        results.append(run(argv))
        results_path.write_text(json.dumps(results))


def child(request: dict) -> None:
    """A forked child: its output in the request's log, its environment and fault, its runs; then it exits."""
    global SCRIPT
    code = 1
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.clear()  # the requesting test's environment, nothing left from the server's
        os.environ.update(request["env"])
        if request.get("fault"):
            os.environ["GLUE_FAULT"] = request["fault"]
        SCRIPT = importlib.import_module(request["script"])
        run_all(json.loads(Path(request["runs"]).read_text()), Path(request["results"]))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        raise SystemExit(code)  # the interpreter's exit, as in a process of its own (its atexit handlers run)


def serve() -> None:
    """Fork a child for each request on stdin; answer each with the child's exit status on stdout."""
    for name in ("glue", "glue_snapshots", "glue_trainer", "trl_sft"):
        importlib.import_module(name)
    import matplotlib.pyplot  # noqa: F401  (what every run draws its curve with)
    import sklearn.metrics  # noqa: F401  (what every evaluation computes F1 with)

    # A fork copies only the thread that calls it: a lock held by another thread would stay held in the child.
    assert threading.active_count() == 1, f"threads running in the server: {threading.enumerate()}"
    answers = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)  # raises SystemExit: the child never comes back into this loop
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"id": request["id"], "rc": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        run_all(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
