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
"""

import builtins
import contextlib
import errno
import importlib
import io
import json
import os
import sys
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


if __name__ == "__main__":
    runs, results_path = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
    if os.environ.get("RANK", "0") != "0":  # launched on several processes: one file each
        results_path = results_path.with_name(f"{results_path.name}.{os.environ['RANK']}")
    if os.environ.get("GLUE_FAULT"):
        argv = runs[0]
        install_fault(os.environ["GLUE_FAULT"], argv[argv.index("--output_dir") + 1])
    results = []
    for argv in runs:
        results.append(run(argv))
        results_path.write_text(json.dumps(results))
