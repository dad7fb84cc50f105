"""The `hf-lrsched` console script: every subcommand, the PNG, the exit status on bad input. The cases call its
`main` in-process (the same code, without a new interpreter each time); the installed script itself runs where only
a new process can tell: that it is installed, answers `--help` and exits 2 without a traceback."""

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hf_lrsched import (
    LRSchedTrainingArguments,
    available_schedules,
    get_warmup_cosine_schedule,
    resolve_num_warmup_steps,
    schedule_description,
    schedule_multipliers,
)
from hf_lrsched.cli import compute_curve, main
from hf_lrsched.registry import RESERVED_SCHEDULE_KWARGS, _transformers_names, get_schedule_entry

SCRIPT = shutil.which("hf-lrsched", path=str(Path(sys.executable).parent)) or shutil.which("hf-lrsched")


def run(*args):
    """The installed console script, in a new process."""
    assert SCRIPT, "the hf-lrsched console script is not installed (pip install -e .)"
    return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=120)


def run_in_process(capsys, *args):
    """`hf-lrsched ARGS` through `main`, as the script calls it: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def test_list_names_every_schedule_with_its_description(capsys):
    status, out, err = run_in_process(capsys, "list")
    assert status == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == len(available_schedules())
    for name, line in zip(available_schedules(), lines):
        assert line.split()[0] == name and line.endswith(schedule_description(name))


def test_show_draws_and_tabulates_the_key_steps(capsys):
    kwargs = '{"num_cycles": 3, "cycle_mult": 2.0, "min_lr_ratio": 0.1}'
    status, out, err = run_in_process(
        capsys,
        "show",
        "cosine_with_growing_restarts",
        "--num-training-steps",
        80,
        "--num-warmup-steps",
        10,
        "--kwargs",
        kwargs,
        "--lr",
        2,
    )
    assert status == 0, err
    # D = 70, L_0 = 10: restarts at 10 + 10 and 10 + 30
    assert "80 steps, warmup 10, restarts at [20, 40]" in out
    table = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line[:4].strip().isdigit()}
    assert table == {"0": "0", "10": "2", "20": "2", "40": "2", "80": "0.2"}
    assert "^" in out and out.count("R") >= 2  # the warmup end and restarts marked under the text plot
    assert sum(line.count("*") for line in out.splitlines()) == 64  # one point per column


def test_show_several_names_and_warmup_ratio(capsys):
    status, out, err = run_in_process(
        capsys, "show", "linear", "warmup_cosine", "--num-training-steps", 100, "--warmup-ratio", 0.05
    )
    assert status == 0, err
    assert "linear: 100 steps, warmup 5" in out and "warmup_cosine: 100 steps, warmup 5" in out


def test_plot_writes_a_valid_png_with_curves_overlaid(capsys, tmp_path):
    import matplotlib.image

    output = tmp_path / "curves.png"
    status, _out, err = run_in_process(
        capsys,
        "plot",
        "warmup_cosine",
        "exponential_warmup_cosine",
        "cosine_with_growing_restarts",
        "--num-training-steps",
        500,
        "--num-warmup-steps",
        "auto",
        "--beta2",
        0.98,
        "--lr",
        5e-5,
        "--kwargs",
        "{}",
        "--kwargs",
        "{}",
        "--kwargs",
        '{"num_cycles": 2, "cycle_decay": 0.5}',
        "-o",
        output,
    )
    assert status == 0, err
    with open(output, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(output)
    height, width = image.shape[:2]
    # 6.4 x 4.6 inches at 110 dpi, cropped to its contents and grown downwards to hold the legend; not blank
    assert 600 <= width <= 710 and 500 <= height <= 800 and image.std() > 0.05, image.shape
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_curve_marks_warmup_and_restarts():
    curve = compute_curve("cosine_with_growing_restarts", 10, 80, kwargs={"num_cycles": 3, "cycle_mult": 2.0})
    assert (curve.num_warmup_steps, curve.restarts) == (10, [20, 40])
    assert curve.lrs == schedule_multipliers("cosine_with_growing_restarts", 10, 80, num_cycles=3, cycle_mult=2.0)
    # transformers' hard restarts are found where the rate rises again
    hard = compute_curve("cosine_with_restarts", 10, 100, kwargs={"num_cycles": 3})
    assert hard.restarts == [40, 70]
    auto = compute_curve("warmup_cosine", "auto", 10_000, beta2=0.98)
    assert auto.num_warmup_steps == 100
    # a cosine that rises smoothly again (two cycles, no restart) has no restarts, and no trough is called one
    assert compute_curve("cosine", 0, 100, kwargs={"num_cycles": 2}).restarts == []


def test_a_billion_steps_are_sampled_with_every_key_step():
    curve = compute_curve("cosine_with_growing_restarts", 1000, 10**9, kwargs={"num_cycles": 4, "cycle_mult": 3.0})
    assert len(curve.steps) < 5000  # sampled, never the whole curve
    assert curve.num_restarts == 3 and len(curve.restarts) == 3
    for restart in curve.restarts:
        assert restart in curve.steps and restart - 1 in curve.steps
        assert curve.lr_at(restart) == 1.0 and curve.lr_at(restart - 1) < 1e-12
    assert {0, 1000, 10**9} <= set(curve.steps)
    many = compute_curve(
        "cosine_with_growing_restarts", 0, 15_000_000, kwargs={"num_cycles": 10**7, "cycle_mult": 1 + 1e-12}
    )
    assert many.num_restarts == 10**7 - 1 and len(many.restarts) == 200


@pytest.mark.parametrize(
    "args,message",
    [
        (["show", "warmup_cosin", "--num-training-steps", 10], "Unknown schedule name 'warmup_cosin'. Did you mean"),
        (
            ["show", "warmup_cosine", "--num-training-steps", 10, "--kwargs", '{"min_lr_ratio": 2}'],
            "`min_lr_ratio` must be in [0, 1), got 2.0",
        ),
        (
            ["show", "warmup_cosine", "--num-training-steps", 10, "--num-warmup-steps", 20],
            "`num_warmup_steps` must be",
        ),
        (["show", "warmup_cosine", "--num-training-steps", 10, "--kwargs", "{oops"], "Expecting property name"),
        (
            ["show", "warmup_cosine", "--num-training-steps", 10, "--num-warmup-steps", "soon"],
            "(--warmup-ratio takes a ratio); got 'soon'",
        ),
        (
            [
                "plot",
                "warmup_cosine",
                "linear",
                "--num-training-steps",
                10,
                "--kwargs",
                "{}",
                "--kwargs",
                "{}",
                "--kwargs",
                "{}",
                "-o",
                "x.png",
            ],
            "once per schedule: 2 schedules, 3 --kwargs",
        ),
        (["show", "reduce_lr_on_plateau", "--num-training-steps", 10], "no multiplier curve"),
        (["show", "warmup_cosine"], "`--num-training-steps` is required"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["show", "warmup_cosine", "--num-training-steps", 10, "--width", 1], "`--width` must be at least 2"),
        (["show", "warmup_cosine", "--num-training-steps", 10, "--width", 0], "`--width` must be at least 2"),
        (["show", "warmup_cosine", "--num-training-steps", 10, "--height", 0], "`--height` must be at least 2"),
        (["show", "warmup_cosine", "--num-training-steps", 10, "--lr", "inf"], "`--lr` must be a finite number > 0"),
        (
            ["show", "warmup_cosine", "--num-training-steps", 10, "--kwargs", "[1, 2]"],
            "`--kwargs` must be a JSON object",
        ),
        (["show", "warmup_cosine", "--num-training-steps", 10, "--kwargs", "{oops"], "`--kwargs` is not valid JSON"),
        (
            ["plot", "warmup_cosine", "--num-training-steps", 10, "-o", "/nonexistent-dir/x.png"],
            "the directory '/nonexistent-dir' does not exist",
        ),
    ],
)
def test_bad_input_exits_2_with_the_message(capsys, args, message):
    status, _out, err = run_in_process(capsys, *args)
    assert status == 2
    assert message in err


def test_show_and_plot_a_branched_cooldown(capsys, tmp_path):
    args = [
        "wsd",
        "--num-training-steps",
        1000,
        "--num-warmup-steps",
        50,
        "--kwargs",
        '{"decay_ratio": 0.2}',
        "--branch-at",
        400,
        "--branch-steps",
        100,
    ]
    status, out, _ = run_in_process(capsys, "show", *args)
    assert status == 0 and "wsd, branched at step 400: cooldown of 100 steps: 500 steps" in out
    status, out, _ = run_in_process(capsys, "plot", *args, "-o", tmp_path / "b.png")
    assert status == 0 and (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    # Inside the trunk's decay (from step 800), a branch is no valid resume; neither is a branch of a cosine.
    status, _, err = run_in_process(capsys, "show", *args[:-4], "--branch-at", 900, "--branch-steps", 50)
    assert status == 2 and "not a valid branch of this trunk" in err and "had begun its decay at step 800" in err
    status, _, err = run_in_process(
        capsys, "show", "warmup_cosine", "--num-training-steps", 100, "--branch-at", 50, "--branch-steps", 10
    )
    assert status == 2 and "'warmup_cosine' is not wsd" in err


def test_plot_into_a_path_under_a_file_or_onto_a_directory_exits_2(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    status, _, err = run_in_process(
        capsys, "plot", "warmup_cosine", "--num-training-steps", 10, "-o", tmp_path / "file" / "x.png"
    )
    assert status == 2 and "is a file, not a directory" in err
    status, _, err = run_in_process(capsys, "plot", "warmup_cosine", "--num-training-steps", 10, "-o", tmp_path)
    assert status == 2 and "is a directory" in err


def test_the_installed_script_answers_and_exits_2_without_a_traceback():
    result = run("--help")
    assert result.returncode == 0 and "{list,show,plot}" in result.stdout, result.stderr
    result = run("show", "warmup_cosine", "--num-training-steps", 10, "--kwargs", '{"cycle_mult": 2}')
    assert result.returncode == 2
    assert (
        "hf-lrsched: error: Schedule 'warmup_cosine' got an unexpected keyword argument 'cycle_mult'" in result.stderr
    )
    assert "Traceback" not in result.stderr


# ---- -o: what is written, and where ------------------------------------------------------------------------------

PLOT = ["plot", "warmup_cosine", "--num-training-steps", 50, "--num-warmup-steps", 5]


@pytest.mark.parametrize(
    ("name", "magic"), [("x.png", b"\x89PNG\r\n\x1a\n"), ("x.pdf", b"%PDF"), ("x.svg", b"<?xml"), ("x", b"\x89PNG")]
)
def test_plot_writes_the_format_its_suffix_names(capsys, tmp_path, name, magic):
    status, _, err = run_in_process(capsys, *PLOT, "-o", tmp_path / name)
    assert status == 0, err
    assert (tmp_path / name).read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing else left behind


def test_plot_refuses_a_suffix_that_names_no_format(capsys, tmp_path):
    status, _, err = run_in_process(capsys, *PLOT, "-o", tmp_path / "x.docx")
    assert status == 2
    assert "`--output`" in err and "the suffix '.docx' names no image format" in err and ".png" in err
    assert list(tmp_path.iterdir()) == []


def test_plot_with_an_empty_output_leaves_nothing_behind(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_in_process(capsys, *PLOT, "-o", "")
    assert status == 2 and "`--output` is empty" in err
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / ".tmp").exists()


def test_plot_writes_into_a_pipe_and_never_replaces_it(capsys, tmp_path):
    # A FIFO stands for a device node such as /dev/null, which no test may risk replacing (run as root, the code
    # before this fix renamed a regular file over it).
    import os
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    status, _, err = run_in_process(capsys, *PLOT, "-o", fifo)
    reader.join(timeout=10)
    assert status == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received and received[0].startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_plot_through_a_symlink_replaces_its_target_and_keeps_the_link(capsys, tmp_path):
    import os

    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.png"
    link.symlink_to(real)
    status, _, err = run_in_process(capsys, *PLOT, "-o", link)
    assert status == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes().startswith(b"\x89PNG")
    assert oct(os.stat(real).st_mode & 0o777) == oct(0o640)  # the file's permissions kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png", "real.png"]


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    from hf_lrsched.plot import write_file

    path = tmp_path / "lr.png"
    path.write_bytes(b"the last good image")

    def fail(f):
        f.write(b"half an ima")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file(path, fail)
    assert path.read_bytes() == b"the last good image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.png"]


# ---- bad input: exit 2 with the option named, within a second; no traceback, no hang -------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["inverse_sqrt", "--num-training-steps", 100, "--kwargs", '{"timescale": 0}'],
            "`timescale` must be in (0, inf)",
        ),
        (["inverse_sqrt", "--num-training-steps", 100, "--kwargs", '{"timescale": -5}'], "`timescale` must be in"),
        (["polynomial", "--num-training-steps", 100, "--kwargs", '{"power": -1}'], "`power` must be in (0, inf)"),
        (["linear", "--num-training-steps", 10, "--num-warmup-steps", 20], "`num_warmup_steps` must be an integer in"),
        (
            ["warmup_cosine", "--num-training-steps", 10, "--num-warmup-steps", "9" * 400],  # too large for a float
            "`num_warmup_steps` must be an integer in [0, 10]",
        ),
        (["warmup_cosine", "--num-training-steps", 10, "--width", 10**9], "`--width` must be at least 2 and at most"),
        (
            ["warmup_cosine", "--num-training-steps", 10, "--height", 10**8],
            "`--height` must be at least 2 and at most",
        ),
        (["warmup_cosine", "--num-training-steps", 10**400], "`--num-training-steps` must be an integer in [1, 2**53"),
        (
            ["warmup_cosine", "--num-training-steps", 10, "--kwargs", '{"last_epoch": 5}'],
            "must not contain 'last_epoch'",
        ),
        (
            ["wsd", "--num-training-steps", 1000, "--branch-at", 10**15, "--branch-steps", 10],
            "`--branch-at` must be a step of the trunk, in [1, 1000]",
        ),
        (
            ["cosine_with_restarts", "--num-training-steps", 1000, "--kwargs", '{"num_cycles": 1e9}'],
            "`num_cycles` must be an integer in [1, 1000]",
        ),
    ],
)
def test_bad_values_exit_2_naming_the_option_within_a_second(capsys, args, message):
    import time

    run_in_process(capsys, "show", "warmup_cosine", "--num-training-steps", 10)  # imports done before the clock
    start = time.perf_counter()
    status, out, err = run_in_process(capsys, "show", *args)
    assert time.perf_counter() - start < 1.0
    assert status == 2, out
    assert message in err and "Traceback" not in err


def test_huge_but_valid_curves_answer_within_a_second(capsys):
    import time

    run_in_process(capsys, "show", "warmup_cosine", "--num-training-steps", 10)
    for args in (
        ["cosine_with_restarts", "--num-training-steps", 10**12, "--kwargs", '{"num_cycles": 1000000000}'],
        ["polynomial", "--num-training-steps", 10, "--num-warmup-steps", 10],  # upstream divides by zero at T
        ["cosine", "--num-training-steps", 2**53, "--num-warmup-steps", 5],
    ):
        start = time.perf_counter()
        status, out, err = run_in_process(capsys, "show", *args)
        assert time.perf_counter() - start < 1.0, args
        assert status == 0, err
    status, out, _ = run_in_process(
        capsys,
        "show",
        "cosine_with_restarts",
        "--num-training-steps",
        10**12,
        "--kwargs",
        '{"num_cycles": 1000000000}',
    )
    assert "999999999 restarts, the first at 1000, 2000, 3000, 4000, 5000, ..." in out


# The schedules of hf_lrsched are drawn without torch or transformers: the same rates as the optimizer-built ones.

OURS = {
    "warmup_cosine": {"min_lr_ratio": 0.1, "warmup_type": "exponential"},
    "exponential_warmup_cosine": {"warmup_start_ratio": 0.05},
    "cosine_with_growing_restarts": {
        "num_cycles": 4,
        "cycle_mult": 1.5,
        "cycle_decay": 0.8,
        "restart_warmup_steps": 3,
    },
    "wsd": {"decay_ratio": 0.25, "decay_type": "1-sqrt", "min_lr_ratio": 0.01},
    "phases": {
        "phases": [
            {"shape": "constant", "ratio": 0.3},
            {"shape": "rex", "to": 0.2},
            {"shape": "power", "p": 0.4, "steps": 200},
        ]
    },
}


@pytest.mark.parametrize("name", OURS)
@pytest.mark.parametrize("warmup", [40, "auto"])
def test_the_torch_free_curve_is_the_optimizer_built_one(name, warmup):
    import torch

    from hf_lrsched import get_schedule

    curve = compute_curve(name, warmup, 1000, lr=3e-4, beta2=0.98, kwargs=OURS[name])
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=3e-4, betas=(0.9, 0.98))
    scheduler = get_schedule(name, optimizer, warmup, 1000, **OURS[name])
    assert curve.lrs == [3e-4 * scheduler.lr_lambdas[0](step) for step in curve.steps]  # bit for bit


def test_show_and_plot_of_ours_import_neither_torch_nor_transformers(tmp_path):
    code = (
        "import sys; from hf_lrsched.cli import main; "
        f"main(['show', 'wsd', '--num-training-steps', '1000', '--num-warmup-steps', 'auto']); "
        f"main(['plot', 'phases', '--num-training-steps', '100', '--kwargs', '{{\"phases\": [{{\"shape\": \"rex\"}}]}}', "
        f"'-o', {str(tmp_path / 'x.png')!r}]); "
        "print('loaded:', sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("loaded: []")


def test_show_marks_a_wsd_decay_and_lists_phases(capsys):
    status, out, _ = run_in_process(
        capsys, "show", "wsd", "--num-training-steps", 1000, "--kwargs", '{"decay_ratio": 0.2}'
    )
    assert status == 0 and "no restarts" in out and " 800  decay starts" in out and "D" in out.splitlines()[-7]
    phases = '{"phases": [{"shape": "constant", "ratio": 0.4}, {"shape": "1-sqrt", "steps": 100, "to": 0.3}, {"shape": "linear"}]}'
    status, out, _ = run_in_process(capsys, "show", "phases", "--num-training-steps", 1000, "--kwargs", phases)
    assert status == 0 and "400  phase 1: 1-sqrt" in out and "500  phase 2: linear" in out


def test_show_and_plot_a_saved_run_with_its_stages_and_groups(capsys, tmp_path):
    import torch

    from hf_lrsched import get_schedule

    def optimizer():
        return torch.optim.AdamW(
            [
                {"params": [torch.zeros(1, requires_grad=True)], "lr": 1e-3},
                {"params": [torch.zeros(1, requires_grad=True)], "lr": 1e-4, "start_step": 10, "warmup_steps": 5},
            ]
        )

    first = get_schedule("warmup_cosine", optimizer(), 10, 60, min_lr_ratio=0.1)
    for _ in range(40):
        first.optimizer.step()
        first.step()
    second = get_schedule("phases", optimizer(), 5, 75, phases=[{"shape": "1-sqrt"}], min_lr_ratio=0.1, new_stage=True)
    second.optimizer.load_state_dict(first.optimizer.state_dict())
    second.load_state_dict(first.state_dict())
    checkpoint = tmp_path / "checkpoint-40"
    checkpoint.mkdir()
    torch.save(second.state_dict(), checkpoint / "scheduler.pt")
    status, out, err = run_in_process(capsys, "show", "--state", checkpoint)
    assert status == 0, err
    assert "from step 0: warmup_cosine over 60 steps, warmup 10" in out
    assert "from step 40: phases over 35 steps, warmup 5" in out
    assert "40  stage 1: phases" in out and "S" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("0 ", "1 "))][:2]
    assert rows == [["0", "0.001", "0.0001", "0", "0"], ["1", "0.0001", "1e-05", "10", "5"]]
    status, _, err = run_in_process(capsys, "plot", "--state", checkpoint, "-o", tmp_path / "run.png")
    assert status == 0 and (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", err
    status, _, err = run_in_process(capsys, "show", "--state", checkpoint, "wsd")
    assert status == 2 and "give no NAME" in err


def test_version_and_python_m():
    from hf_lrsched import __version__

    result = subprocess.run(
        [sys.executable, "-m", "hf_lrsched", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == f"hf-lrsched {__version__}"


def test_the_reserved_keys_are_the_parameters_a_caller_supplies():
    # One table for the training loops and the command line: the factory's parameters that are not the schedule's
    # options (the optimizer, the two lengths, how the scheduler starts).
    parameters = inspect.signature(get_warmup_cosine_schedule).parameters
    supplied = [name for name, p in parameters.items() if p.kind is not p.KEYWORD_ONLY] + ["last_epoch", "new_stage"]
    assert sorted(RESERVED_SCHEDULE_KWARGS) == sorted(supplied)


@pytest.mark.parametrize("key", sorted(RESERVED_SCHEDULE_KWARGS))
def test_the_command_line_and_the_training_arguments_refuse_the_same_reserved_keys(capsys, tmp_path, key):
    reserved = RESERVED_SCHEDULE_KWARGS[key]
    kwargs = json.dumps({key: 1})
    status, _, err = run_in_process(capsys, "show", "warmup_cosine", "--num-training-steps", 10, "--kwargs", kwargs)
    assert status == 2 and f"`--kwargs` must not contain {key!r}: {reserved.command_line}." in err, err
    with pytest.raises(
        ValueError, match=re.escape(f"`lr_schedule_kwargs` must not contain {key!r}: {reserved.loop}.")
    ):
        LRSchedTrainingArguments(output_dir=str(tmp_path), lr_schedule="warmup_cosine", lr_schedule_kwargs={key: 1})


LIBRARY_ALLOWS = "a whole number of steps, a ratio in [0, 1), or 'auto'"


@pytest.mark.parametrize(
    ("flag", "kind", "allows"),
    [
        ("--warmup-ratio", "ratio", "a ratio in [0, 1) (--num-warmup-steps takes steps or 'auto')"),
        ("--num-warmup-steps", "steps", "a whole number of steps or 'auto' (--warmup-ratio takes a ratio)"),
    ],
)
@pytest.mark.parametrize("value", ["0", "1", "1.0", "0.999", "-0.1", "1e-1", "nan", "inf", "auto", "10", "soon"])
def test_the_warmup_flags_read_values_as_the_library_does(capsys, flag, kind, allows, value):
    # One rule (`resolve_num_warmup_steps`): each flag takes the values that the library reads as its kind (a ratio
    # below 1, or steps and 'auto') with the same result, and refuses every other value with the library's message,
    # which names what the flag takes.
    T = 1000
    status, out, err = run_in_process(capsys, "show", "warmup_cosine", "--num-training-steps", T, flag, value)
    try:
        library = resolve_num_warmup_steps(value, T, option=flag)
    except ValueError as error:
        library = error
    if isinstance(library, ValueError):
        read_as = None
    elif library == "auto" or float(value) >= 1:
        read_as = "steps"
    else:
        read_as = "ratio" if float(value) > 0 else kind  # 0 is no warmup, as steps and as a ratio
    if read_as == kind:
        assert status == 0, err
        warmup = 100 if library == "auto" else library  # beta2 0.999: ceil(2 / 0.001) = 2000, capped at 0.1 * T
        assert f"warmup_cosine: {T} steps, warmup {warmup}," in out
    else:
        assert status == 2 and f"`{flag}` must be {allows}; got {value!r}." in err, err
        if read_as is None:  # the library refuses it too, in the same words
            assert str(library).replace(LIBRARY_ALLOWS, allows) in err


BEFORE_TORCH = """
import json, sys
from hf_lrsched.cli import main
status = main(sys.argv[1:])
print(json.dumps([status, sorted(m for m in ("torch", "transformers") if m in sys.modules)]))
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "warmup_cosin"], "Unknown schedule name 'warmup_cosin'. Did you mean 'warmup_cosine' or"),
        (["show", "linear", "nope"], "Unknown schedule name 'nope'. Available schedules: ['constant',"),
        (["plot", "nope", "-o", "lr.png"], "Unknown schedule name 'nope'."),
        (["show", "warmup_cosine", "--kwargs", "{oops"], "`--kwargs` is not valid JSON (Expecting property name"),
        (["show", "linear", "--kwargs", "{oops"], "`--kwargs` is not valid JSON"),
        (["show", "cosine", "--kwargs", "[1]"], "`--kwargs` must be a JSON object"),
    ],
)
def test_a_bad_name_or_bad_json_is_refused_before_torch_is_imported(tmp_path, args, message):
    # A typo answers at once: transformers' names are read without importing transformers (which imports torch).
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    argv = [*args, "--num-training-steps", "10"]
    result = subprocess.run(
        [sys.executable, "-c", BEFORE_TORCH, *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    status, imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 2 and message in result.stderr, result.stderr
    assert imported == [], f"imported {imported} before refusing: {result.stderr}"
    if "Unknown" in message:  # the same words as the library's, with transformers' names loaded
        name = message.split("'")[1]
        with pytest.raises(ValueError) as error:
            get_schedule_entry(name)
        assert f"hf-lrsched: error: {error.value}" in result.stderr


def test_transformers_names_read_without_importing_them_are_its_scheduler_types():
    from transformers.trainer_utils import SchedulerType

    assert sorted(_transformers_names()) == sorted(member.value for member in SchedulerType)
