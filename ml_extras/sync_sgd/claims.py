"""Chen et al.'s claims on the straggler experiment's rows: backup workers cut the sync step time,
and sync SGD with backups beats async SGD in test accuracy at an equal number of updates."""

from __future__ import annotations

from typing import Any

from ml_extras.results import all_of, claim, greater, less


def _row(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [r for r in rows if r["run"] == name]
    if len(found) != 1:
        raise KeyError(f"expected one row named {name!r}, found {len(found)}")
    return found[0]


def sync_sgd_claims(rows: list[dict[str, Any]], steps: int) -> list[dict[str, Any]]:
    """Step time decided on both the measured wall time and the load-independent delay model."""
    sync = sorted((r for r in rows if r["run"].startswith("sync b=") and "no stragglers" not in r["run"]),
                  key=lambda r: r["b"])
    if len(sync) < 2:
        raise ValueError("need sync rows for b = 0 and at least one b > 0")
    base, most = sync[0], sync[-1]
    if base["b"] != 0:
        raise ValueError("the sync rows lack b = 0")
    asyncs = [r for r in rows if r["run"].startswith("async")]
    if len(asyncs) != 1:
        raise KeyError("expected one async row")
    acc_key = f"acc@{steps}"
    best_backup = max((r for r in sync if r["b"] > 0), key=lambda r: r[acc_key])
    return [
        claim(f"backup workers cut the synchronous step time under stragglers (b = {most['b']} vs b = 0, "
              f"N = {most['N']}): measured mean step time and the step time the seeded delays imply both drop",
              all_of([less(most["step_ms"], base["step_ms"]), less(most["model_step_ms"], base["model_step_ms"])]),
              {"step_ms": {f"b={r['b']}": r["step_ms"] for r in sync},
               "p90_ms": {f"b={r['b']}": r["p90_ms"] for r in sync},
               "model_step_ms": {f"b={r['b']}": r["model_step_ms"] for r in sync}}),
        claim(f"sync SGD with backup workers reaches a higher test accuracy than async SGD after the same "
              f"number of updates ({steps})",
              greater(best_backup[acc_key], asyncs[0][acc_key]),
              {"sync_backup_acc": {f"b={r['b']}": r[acc_key] for r in sync if r["b"] > 0},
               "sync_b0_acc": base[acc_key], "async_acc": asyncs[0][acc_key], "updates": steps}),
    ]
