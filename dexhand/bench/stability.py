"""``dexhand bench stability``: penetration and energy drift behind the timestep choice."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dexhand.report import format_table

CANDIDATES = ((0.002, 40), (0.004, 20), (0.008, 10))


def run(seconds: float = 3.0, episodes: int = 4, steps: int = 100) -> dict[str, Any]:
    """``seconds`` is unused: this benchmark measures fixed rollouts, not rates."""
    from sim.stability import measure

    return {"candidates": [asdict(measure(dt, n, episodes=episodes, steps=steps)) for dt, n in CANDIDATES]}


def print_results(r: dict[str, Any]) -> None:
    print(format_table(r["candidates"], title="dexhand bench stability (nominal scene, random relative actions)"))
