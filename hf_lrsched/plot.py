"""The one function that draws learning-rate curves into a PNG: for `hf-lrsched plot`, the Trainer callback
(`lr_schedule.png`), `examples/glue.py` and the docs' figures; its figure and finishing (`new_figure`,
`save_figure`) also draw the benchmarks' plots. Needs matplotlib (`pip install matplotlib`, or the
`plot` extra)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from .atomic import write_file

__all__ = ["Curve", "figure_format", "new_figure", "plot_lr_curves", "save_figure", "write_file"]

# Characters per line of the title and of each legend entry, at the figure's width and font sizes: large enough to
# stay legible when a phone shows the figure at half its size.
TITLE_WIDTH = 48
LABEL_WIDTH = 58


@dataclass
class Curve:
    """One line of a plot: a label, the steps and their learning rates, and the steps to mark.

    `warmup_end` is drawn as a dashed and each of `restarts` as a dotted vertical line, in the curve's colour, each
    of `stages` (the first step of a new stage of the run) as a solid grey one. `dashed` draws the line itself
    dashed (a branch beside its trunk).
    """

    label: str
    steps: Sequence[int]
    lrs: Sequence[float]
    warmup_end: int | None = None
    restarts: Sequence[int] = field(default_factory=list)
    dashed: bool = False
    stages: Sequence[int] = field(default_factory=list)


def plot_lr_curves(curves: Sequence[Curve], path: str, *, title: str | None = None) -> None:
    """
    Draw `curves` into one PNG at `path`, legible at phone width. Curves identical to an earlier one are drawn
    once, with one legend entry naming them all and saying that they coincide.

    Raises:
        `RuntimeError`: when matplotlib is not installed.
    """
    groups: list[list[Curve]] = []
    for curve in curves:
        same = next((g for g in groups if _same_line(g[0], curve)), None)
        if same is None:
            groups.append([curve])
        else:
            same.append(curve)
    fig = new_figure()
    ax = fig.add_subplot()
    marks = stage_marks = False
    for group in groups:
        first = group[0]
        label = first.label if len(group) == 1 else " = ".join(c.label for c in group) + " (identical)"
        (line,) = ax.plot(first.steps, first.lrs, label=label, linewidth=2.0, linestyle="--" if first.dashed else "-")
        if first.warmup_end:
            ax.axvline(first.warmup_end, color=line.get_color(), linestyle="--", linewidth=1.0, alpha=0.7)
            marks = True
        for step in first.restarts:
            ax.axvline(step, color=line.get_color(), linestyle=":", linewidth=1.0, alpha=0.7)
            marks = True
        for step in first.stages:
            ax.axvline(step, color="0.35", linestyle="-", linewidth=1.2, alpha=0.8)
            stage_marks = True
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_xlim(0, max((max(c.steps) for c in curves if len(c.steps)), default=1))
    ax.set_ylim(bottom=0)
    save_figure(
        fig,
        ax,
        path,
        title=title or "Learning-rate schedule",
        legend=len(groups) > 1 or marks or stage_marks or len(groups[0]) > 1,
        legend_title=", ".join(
            [
                *(["dashed: end of warmup, dotted: restarts"] if marks else []),
                *(["grey: a new stage"] if stage_marks else []),
            ]
        )
        or None,
    )


def new_figure(width: float = 6.4, height: float = 4.6):
    """
    A matplotlib `Figure` (no pyplot: nothing global changes in the caller's process), sized so that with
    `save_figure`'s fonts its text stays legible when a phone shows it at half its size.

    Raises:
        `RuntimeError`: when matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("Drawing a learning-rate curve needs matplotlib: pip install matplotlib.") from None
    return Figure(figsize=(width, height), dpi=110)


def save_figure(fig, ax, path, *, title: str, legend: bool = True, legend_title: str | None = None) -> None:
    """
    Finish and write a figure of `new_figure`: a wrapped title, large labels and ticks, a grid, the legend (when
    `legend`) below the axes with wrapped entries, where it hides no curve (the image grows downwards to hold it),
    written to a temporary file and renamed into place (a kill never leaves a truncated PNG).
    """
    ax.set_title(textwrap.fill(title, TITLE_WIDTH), fontsize=15)
    ax.xaxis.label.set_fontsize(14)
    ax.yaxis.label.set_fontsize(14)
    ax.tick_params(labelsize=13)
    ax.grid(alpha=0.3)
    extra = []
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        labels = [textwrap.fill(label, LABEL_WIDTH, subsequent_indent="  ") for label in labels]
        box = ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.18),
            fontsize=12.5,
            frameon=False,
            title=legend_title,
            title_fontsize=12,
        )
        box.set_in_layout(False)  # the axes keep their size; bbox_extra_artists makes room for it
        extra.append(box)
    fig.tight_layout()
    image_format = figure_format(path)
    write_file(path, lambda f: fig.savefig(f, format=image_format, bbox_inches="tight", bbox_extra_artists=extra))


def figure_format(path: str | os.PathLike) -> str:
    """
    The image format that `path`'s suffix names (`png`, `pdf`, `svg`, ...; PNG for a path without a suffix, such
    as `/dev/stdout`), so that a file is written in the format its name says.

    Raises:
        `ValueError`: for a suffix that names no format matplotlib writes, listing those it does.
        `RuntimeError`: when matplotlib is not installed.
    """
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise RuntimeError("Drawing a learning-rate curve needs matplotlib: pip install matplotlib.") from None
    suffix = os.path.splitext(os.fspath(path))[1]
    if not suffix:
        return "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if suffix[1:].lower() not in supported:
        raise ValueError(
            f"{os.fspath(path)!r}: the suffix {suffix!r} names no image format that matplotlib writes; use one of "
            f"{', '.join('.' + name for name in sorted(supported))}."
        )
    return suffix[1:].lower()


def _same_line(a: Curve, b: Curve) -> bool:
    return (
        a.dashed == b.dashed
        and list(a.steps) == list(b.steps)
        and list(a.lrs) == list(b.lrs)
        and a.warmup_end == b.warmup_end
        and list(a.restarts) == list(b.restarts)
    )
