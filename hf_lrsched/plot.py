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
    dashed (a branch beside its trunk). `num_cycles`, where known, names the number of cycles in the legend of a
    curve too dense to draw as a line (see `plot_lr_curves`).
    """

    label: str
    steps: Sequence[int]
    lrs: Sequence[float]
    warmup_end: int | None = None
    restarts: Sequence[int] = field(default_factory=list)
    dashed: bool = False
    stages: Sequence[int] = field(default_factory=list)
    num_cycles: int | None = None


def plot_lr_curves(curves: Sequence[Curve], path: str, *, title: str | None = None):
    """
    Draw `curves` into one PNG at `path`, legible at phone width. Curves identical to an earlier one are drawn
    once, with one legend entry naming them all and saying that they coincide.

    A curve that turns more often than every other pixel column of the plot (a thousand restarts over a billion
    steps) cannot be drawn as a line: its points would fill a block, and where its samples miss the cycles' peaks
    and troughs it would show changes that are not there. Such a curve is drawn as its envelope instead, the
    lowest and the highest rate of each pixel column, with the legend saying so; its restarts are not marked one
    by one. The envelope is as exact as the points given: `hf-lrsched plot` samples every column's extremes.

    Returns:
        The matplotlib `Figure` drawn (already written to `path`).

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
    end = max((max(c.steps) for c in curves if len(c.steps)), default=1)
    columns = max(1, round(ax.get_position().width * fig.get_figwidth() * fig.dpi))  # the axes' width in pixels
    warmup_marks = restart_marks = stage_marks = False
    for index, group in enumerate(groups):
        first = group[0]
        color = f"C{index % 10}"  # matplotlib's colour cycle, shared by lines and envelopes
        label = first.label if len(group) == 1 else " = ".join(c.label for c in group) + " (identical)"
        envelope = _envelope(first.steps, first.lrs, 0, end, columns) if _turns(first.lrs) > columns / 2 else None
        if envelope is None:
            ax.plot(
                first.steps,
                first.lrs,
                label=label,
                color=color,
                linewidth=2.0,
                linestyle="--" if first.dashed else "-",
            )
        else:
            edges, low, high = envelope
            cycles = f"{first.num_cycles:,} cycles" if first.num_cycles else "it turns too often"
            ax.fill_between(
                edges,
                low,
                high,
                step="post",
                color=color,
                alpha=0.35,
                linewidth=0,
                label=f"{label}: {cycles}, too many to draw at this width; the band spans each pixel column's lowest "
                "to highest rate",
            )
            ax.step(edges, high, where="post", color=color, linewidth=1.2)
            ax.step(edges, low, where="post", color=color, linewidth=1.2)
        if first.warmup_end:
            ax.axvline(first.warmup_end, color=color, linestyle="--", linewidth=1.0, alpha=0.7)
            warmup_marks = True
        if envelope is None:
            for step in first.restarts:
                ax.axvline(step, color=color, linestyle=":", linewidth=1.0, alpha=0.7)
                restart_marks = True
        for step in first.stages:
            ax.axvline(step, color="0.35", linestyle="-", linewidth=1.2, alpha=0.8)
            stage_marks = True
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_xlim(0, end)
    ax.set_ylim(bottom=0)
    marks = [
        *(["dashed: end of warmup"] if warmup_marks else []),
        *(["dotted: restarts"] if restart_marks else []),
        *(["grey: a new stage"] if stage_marks else []),
    ]
    save_figure(
        fig,
        ax,
        path,
        title=title or "Learning-rate schedule",
        legend=len(groups) > 1 or bool(marks) or len(groups[0]) > 1 or len(ax.collections) > 0,
        legend_title=", ".join(marks) or None,
    )
    return fig


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


def _turns(lrs: Sequence[float]) -> int:
    """How many times the curve changes direction (a rise after a fall, or the reverse)."""
    turns, direction = 0, 0
    for a, b in zip(lrs, lrs[1:]):
        if b != a:
            now = 1 if b > a else -1
            turns += direction == -now
            direction = now
    return turns


def _envelope(steps: Sequence[int], lrs: Sequence[float], start: float, end: float, columns: int):
    """The lowest and the highest of `lrs` (at increasing `steps`) in each of `columns` equal columns of
    `[start, end]`: `(edges, low, high)`, one more edge than columns and the last values repeated, for a step plot.
    A column without a point takes the rate of the last point before it."""
    width = (end - start) / columns or 1.0
    low: list[float] = []
    high: list[float] = []
    i, last = 0, lrs[0] if len(lrs) else 0.0
    for column in range(columns):
        right = start + (column + 1) * width
        points = []
        while i < len(steps) and (steps[i] < right or column == columns - 1):
            points.append(lrs[i])
            i += 1
        if points:
            last = points[-1]
        low.append(min(points, default=last))
        high.append(max(points, default=last))
    edges = [start + column * width for column in range(columns + 1)]
    return edges, [*low, low[-1]], [*high, high[-1]]
