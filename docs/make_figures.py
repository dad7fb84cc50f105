"""Draw every figure of the documentation from the library itself.

Run by the MkDocs hook (`docs/hooks.py`) at every build, into `docs/figures/`; never pasted in. The README's figure
is the `overview` figure, committed as this script writes it:

    python docs/make_figures.py                                  # all figures into docs/figures/
    python docs/make_figures.py --readme docs/assets/schedules.png  # the README's figure
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hf_lrsched.cli import compute_curve, draw_png

T = 1000

# name -> (title, [(schedule, warmup, kwargs), ...])
FIGURES = {
    "overview": (
        "hf_lrsched schedules over 1,000 steps (base learning rate 1)",
        [
            ("warmup_cosine", 100, {"min_lr_ratio": 0.05}),
            ("exponential_warmup_cosine", 100, {"min_lr_ratio": 0.05}),
            (
                "cosine_with_growing_restarts",
                50,
                {
                    "num_cycles": 3,
                    "cycle_mult": 2.0,
                    "cycle_decay": 0.8,
                    "restart_warmup_steps": 10,
                    "min_lr_ratio": 0.05,
                },
            ),
        ],
    ),
    "warmup_cosine": (
        "warmup_cosine: linear, exponential and cosine warmup over 100 steps, floor 0.1",
        [
            ("warmup_cosine", 100, {"min_lr_ratio": 0.1, "warmup_type": "linear"}),
            ("warmup_cosine", 100, {"min_lr_ratio": 0.1, "warmup_type": "exponential"}),
            ("warmup_cosine", 100, {"min_lr_ratio": 0.1, "warmup_type": "cosine"}),
        ],
    ),
    "exponential_warmup_cosine": (
        "exponential_warmup_cosine: k = 5 (default) against k = 2 and linear warmup",
        [
            ("exponential_warmup_cosine", 150, {}),
            ("exponential_warmup_cosine", 150, {"warmup_exp_rate": 2.0}),
            ("warmup_cosine", 150, {}),
        ],
    ),
    "cosine_with_growing_restarts": (
        "cosine_with_growing_restarts (4 cycles) against transformers' cosine_with_restarts",
        [
            (
                "cosine_with_growing_restarts",
                40,
                {
                    "num_cycles": 4,
                    "cycle_mult": 2.0,
                    "cycle_decay": 0.75,
                    "restart_warmup_steps": 15,
                    "min_lr_ratio": 0.02,
                },
            ),
            ("cosine_with_restarts", 40, {"num_cycles": 4}),
        ],
    ),
    "wsd": (
        "wsd: warmup 50, stable, then the last 20% decays: cosine, linear and 1-sqrt (floor 0.05)",
        [
            ("wsd", 50, {"decay_ratio": 0.2, "min_lr_ratio": 0.05}),
            ("wsd", 50, {"decay_ratio": 0.2, "min_lr_ratio": 0.05, "decay_type": "linear"}),
            ("wsd", 50, {"decay_ratio": 0.2, "min_lr_ratio": 0.05, "decay_type": "1-sqrt"}),
        ],
    ),
    "wsd_branches": (
        "One wsd trunk (stable until step 800) and cooldowns of 60 steps branched at steps 300 and 550",
        [
            ("wsd", 50, {"num_decay_steps": 200, "decay_type": "1-sqrt"}),
            ("wsd", 50, {"num_decay_steps": 60, "decay_type": "1-sqrt"}, (300, 60)),
            ("wsd", 50, {"num_decay_steps": 60, "decay_type": "1-sqrt"}, (550, 60)),
        ],
    ),
    "phases_shapes": (
        "phases: each shape from 1 to the floor 0.1 after a constant stretch (warmup 50)",
        [
            (
                "phases",
                50,
                {
                    "phases": [{"shape": "constant", "ratio": 0.3}, {"shape": shape, **extra}],
                    "min_lr_ratio": 0.1,
                    "label": label,
                },
            )
            for shape, extra, label in [
                ("linear", {}, "linear"),
                ("cosine", {}, "cosine"),
                ("1-sqrt", {}, "1-sqrt"),
                ("power", {"p": 0.4}, "power, p = 0.4"),
                ("power", {"p": 2.0}, "power, p = 2"),
                ("exponential", {}, "exponential"),
                ("rex", {}, "rex"),
            ]
        ],
    ),
    "phases_multi_period_wsd": (
        "Multi-period WSD as a phase list: decay to 0.3, re-warm, stable, decay to the floor",
        [
            (
                "phases",
                50,
                {
                    "phases": [
                        {"shape": "constant", "ratio": 0.4},
                        {"shape": "1-sqrt", "ratio": 0.1, "to": 0.3},
                        {"shape": "linear", "ratio": 0.05, "to": 1.0},
                        {"shape": "constant", "ratio": 0.25},
                        {"shape": "1-sqrt"},
                    ],
                    "min_lr_ratio": 0.01,
                    "label": "multi-period WSD",
                },
            ),
        ],
    ),
    "phases_rex": (
        "REX against cosine and linear decay (no warmup, floor 0)",
        [
            ("phases", 0, {"phases": [{"shape": "rex"}], "label": "rex"}),
            ("phases", 0, {"phases": [{"shape": "cosine"}], "label": "cosine"}),
            ("phases", 0, {"phases": [{"shape": "linear"}], "label": "linear"}),
        ],
    ),
    "phases_power_cooldown": (
        "A stable run with a power-0.4 cooldown over the last 30% against 1-sqrt and linear",
        [
            (
                "phases",
                50,
                {"phases": [{"shape": "constant", "ratio": 0.65}, {"shape": shape, **extra}], "label": label},
            )
            for shape, extra, label in [
                ("power", {"p": 0.4}, "power, p = 0.4"),
                ("1-sqrt", {}, "1-sqrt"),
                ("linear", {}, "linear"),
            ]
        ],
    ),
    "auto_warmup": (
        "num_warmup_steps='auto', AdamW beta2 = 0.98: linear 100 steps, exponential 250",
        [
            ("warmup_cosine", "auto", {"max_auto_warmup_ratio": 0.3}),
            ("exponential_warmup_cosine", "auto", {"max_auto_warmup_ratio": 0.3}),
        ],
    ),
}


def make_figure(name: str, path: str | Path) -> Path:
    title, specs = FIGURES[name]
    curves = []
    for schedule, warmup, kwargs, *branch in specs:
        # A branch (k, D) is a run resumed from the trunk's checkpoint at step k with T = k + D: drawn from k on.
        total = branch[0][0] + branch[0][1] if branch else T
        kwargs = dict(kwargs)
        label = kwargs.pop("label", None)
        curve = compute_curve(schedule, warmup, total, beta2=0.98, kwargs=kwargs)
        options = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("num_cycles", "min_lr_ratio"))
        curve.name = label or (f"{schedule} ({options})" if options else schedule)
        if branch:
            curve.branch = branch[0]
            curve.name = f"branch at step {branch[0][0]}: {options}"
        curves.append(curve)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_png(curves, str(path), title=title)
    return path


def make_all(out_dir: str | Path) -> list[Path]:
    return [make_figure(name, Path(out_dir) / f"{name}.png") for name in FIGURES]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=str(Path(__file__).parent / "figures"))
    parser.add_argument("--readme", metavar="PATH", help="write only the README's figure (the overview) to PATH")
    args = parser.parse_args()
    for written in [make_figure("overview", args.readme)] if args.readme else make_all(args.out_dir):
        print(written)
