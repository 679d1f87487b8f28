"""Progress of long steps: a bar on a terminal, a log line every so often anywhere else.

On a terminal a tqdm bar redraws in place. Under Nextflow, SLURM or any redirected stderr a bar
would write a line per redraw (or nothing readable), so there the step logs one line every
`interval` seconds (30 by default, `VAEBIN_PROGRESS_SECONDS` to change) with how far it is, the
rate and the time left, plus a last line when it ends. `quiet` silences both.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType

from tqdm import tqdm

log = logging.getLogger("vaebin")

DEFAULT_INTERVAL_SECONDS = 30.0


def _interval_from_environment() -> float:
    value = os.environ.get("VAEBIN_PROGRESS_SECONDS")
    if value is None:
        return DEFAULT_INTERVAL_SECONDS
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_INTERVAL_SECONDS


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Counts `total` units of a step (`what`, e.g. "training", in `unit`s, e.g. "epoch")."""

    def __init__(
        self,
        what: str,
        total: int,
        unit: str,
        quiet: bool = False,
        bar: bool | None = None,
        interval: float | None = None,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.done = 0
        self.details = ""
        self._quiet = quiet
        self._interval = _interval_from_environment() if interval is None else interval
        use_bar = (not quiet and sys.stderr.isatty()) if bar is None else bar
        self._bar = tqdm(total=total, desc=what, unit=unit, file=sys.stderr) if use_bar else None
        self._started = self._last_line = time.perf_counter()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
        elif (
            kind is None
            and not self._quiet
            and self.done
            and time.perf_counter() - self._started >= self._interval > 0
        ):
            # A step long enough to log along the way also logs its end; short ones stay silent.
            self._log_line()

    def update(self, count: int = 1, **details: object) -> None:
        """`count` more units done; `details` (e.g. loss=0.12) are shown beside the count."""
        self.done += count
        if details:
            self.details = ", ".join(f"{name} {_format(value)}" for name, value in details.items())
        if self._bar is not None:
            if details:
                self._bar.set_postfix({name: _format(value) for name, value in details.items()})
            self._bar.update(count)
            return
        if self._quiet:
            return
        now = time.perf_counter()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._log_line()

    def _log_line(self) -> None:
        elapsed = time.perf_counter() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        parts = [
            f"{self.what}: {self.unit} {self.done}/{self.total} "
            f"({100 * self.done / max(self.total, 1):.0f} %)"
        ]
        if self.details:
            parts.append(self.details)
        parts.append(f"{rate:.3g} {self.unit}s/s")
        if self.done < self.total:
            parts.append(f"about {_duration(left)} left")
        else:
            parts.append(f"done in {_duration(elapsed)}")
        log.info(", ".join(parts))


def _format(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
