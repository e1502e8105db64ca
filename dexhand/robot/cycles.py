"""Control-cycle bookkeeping: cycle times and missed periods, for the policy's diagnostics."""

from __future__ import annotations


class CycleMeter:
    """Counts cycles and the periods missed when a cycle starts more than half a period late."""

    def __init__(self, period: float) -> None:
        if period <= 0:
            raise ValueError(f"control period must be > 0, got {period}")
        self.period = period
        self.previous: float | None = None
        self.cycles = 0
        self.late_cycles = 0

    def tick(self, now: float) -> float:
        """Record a cycle start; returns the time since the previous one (0 for the first)."""
        self.cycles += 1
        if self.previous is None:
            self.previous = now
            return 0.0
        gap = now - self.previous
        self.previous = now
        missed = int(round(gap / self.period)) - 1
        if missed > 0:
            self.late_cycles += missed
        return gap
