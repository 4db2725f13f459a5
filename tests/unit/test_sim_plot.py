"""``--plot``: a readable PNG (one line per repository, labelled axes)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from annexproxy.sim import Trace, start

SIM = """seed 3
init src
init n1
init n2
connect src -> n1
connect src -> n2
group n1 pool
group n2 pool
wanted n1 balanced=pool
wanted n2 balanced=pool
maxsize n1 20MB
maxsize n2 30MB
addmulti 12 .dat 500kB 4MB src
step 40
"""


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from annexproxy.cli.simulate import plot_simulation

    trace = Trace()
    state = start(SIM, initial_seed=0, note=lambda _: None, trace=trace)
    target = tmp_path / "fill.png"
    plot_simulation(state, [{"names": trace.names, "samples": trace.samples}], target)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800
    assert height >= 400
    assert len(trace.names) == 3
    assert len(trace.samples) > 5


def test_plot_axes_and_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from annexproxy.cli.simulate import plot_simulation

    trace = Trace()
    state = start(SIM, initial_seed=0, note=lambda _: None, trace=trace)
    captured: list[Any] = []
    original = plt.close

    def keep(figure: Any) -> None:
        captured.append(figure)

    monkeypatch.setattr(plt, "close", keep)
    plot_simulation(state, [{"names": trace.names, "samples": trace.samples}], tmp_path / "p.png")
    (figure,) = captured
    over_time, at_end = figure.axes
    assert over_time.get_xlabel().startswith("simulation events")
    assert over_time.get_ylabel() == "size (MB)"
    assert at_end.get_xlabel() == "repository"
    assert [line.get_label() for line in over_time.get_lines()] == ["n1", "n2", "src"]
    original(figure)
