"""A curve with more cycles than a plot has pixel columns: 1,000 equal cycles over 10^9 steps.

A preview samples a few thousand steps. With cycles shorter than the stride, the samples fall at drifting phases of
the cycles: drawn as a line they made a solid block whose lower edge jumped from the floor to 0.15 where the marked
restarts ran out (a drop the schedule does not have). The samples now hold every column's trough and peak, and the
plot draws such a curve as its envelope, saying so in the legend.
"""

import pytest

from hf_lrsched.cli import compute_curve, main
from hf_lrsched.plot import Curve, plot_lr_curves

T = 10**9
THOUSAND_CYCLES = [
    ("cosine_with_growing_restarts", {"num_cycles": 1000, "cycle_mult": 1.0}),
    ("cosine_with_restarts", {"num_cycles": 1000}),  # transformers' own
]


def column_extremes(steps, lrs, columns=500):
    """The lowest and highest sampled rate in each of `columns` equal parts of 0..T."""
    low, high = [None] * columns, [None] * columns
    for step, lr in zip(steps, lrs):
        c = min(columns - 1, step * columns // T)
        low[c] = lr if low[c] is None else min(low[c], lr)
        high[c] = lr if high[c] is None else max(high[c], lr)
    return low, high


@pytest.mark.parametrize(("name", "kwargs"), THOUSAND_CYCLES, ids=[name for name, _ in THOUSAND_CYCLES])
def test_the_samples_hold_every_columns_floor_and_peak(name, kwargs):
    curve = compute_curve(name, 0, T, kwargs=kwargs)
    low, high = column_extremes(curve.steps, curve.lrs)
    # each 1/500 of the run holds two whole cycles, each from the peak (1) down to the floor (0)
    assert max(low) < 1e-6, f"a column's lowest sampled rate is {max(low):.3f}, not the floor"
    assert min(high) > 1 - 1e-6, f"a column's highest sampled rate is {min(high):.3f}, not the peak"
    assert len(curve.steps) < 40_000  # still a preview: a few points per column, not a step per step


def test_a_thousand_cycles_are_drawn_as_their_envelope_with_the_legend_saying_so(tmp_path):
    curve = compute_curve("cosine_with_growing_restarts", 0, T, kwargs=THOUSAND_CYCLES[0][1])
    fig = plot_lr_curves(
        [Curve("growing restarts", curve.steps, curve.lrs, restarts=curve.restarts, num_cycles=1000)],
        str(tmp_path / "lr.png"),
    )
    ax = fig.axes[0]
    legend = [" ".join(text.get_text().split()) for text in ax.get_legend().get_texts()]
    assert len(legend) == 1 and "1,000 cycles, too many to draw at this width" in legend[0], legend
    assert len(ax.collections) == 1  # the band between the two edges
    low, high = (line.get_ydata() for line in ax.lines[:2] if len(line.get_xdata()) > 2)
    low, high = (low, high) if max(low) < max(high) else (high, low)
    assert max(low) < 1e-6 and min(high) > 1 - 1e-6  # floor and peak all the way: no drop
    # the 999 restarts are not marked one by one (their dotted lines would hatch the plot)
    assert not [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_linestyle() == ":"]
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_few_cycles_stay_one_line_with_their_restarts_marked(tmp_path):
    curve = compute_curve("cosine_with_growing_restarts", 50, 1000, kwargs={"num_cycles": 3})
    fig = plot_lr_curves(
        [Curve("growing restarts", curve.steps, curve.lrs, 50, curve.restarts, num_cycles=3)],
        str(tmp_path / "lr.png"),
    )
    ax = fig.axes[0]
    assert not ax.collections
    assert [line.get_linestyle() for line in ax.lines if len(line.get_xdata()) == 2].count(":") == 2
    assert ax.get_legend().get_title().get_text() == "dashed: end of warmup, dotted: restarts"


def test_hf_lrsched_plot_of_a_thousand_cycles_at_a_billion_steps(tmp_path, capsys):
    path = tmp_path / "lr.png"
    args = ["plot", "cosine_with_restarts", "--kwargs", '{"num_cycles": 1000}', "--num-training-steps", str(T)]
    assert main([*args, "--num-warmup-steps", "0", "-o", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hf_lrsched_show_of_a_thousand_cycles_draws_each_columns_range(capsys):
    args = ["show", "cosine_with_growing_restarts", "--kwargs", '{"num_cycles": 1000, "cycle_mult": 1.0}']
    assert main([*args, "--num-training-steps", str(T), "--num-warmup-steps", "0", "--height", "6"]) == 0
    out = capsys.readouterr().out
    assert "1,000 cycles: too many to draw at this width" in out
    grid = [line.split("|", 1)[1] for line in out.splitlines() if "|" in line][:6]
    # every column spans the peak (top row) to the floor (bottom row): no moiré of single points
    assert grid[0].strip("*") == "" and grid[-1].strip("*") == "" and len(grid[0]) == 64, grid
