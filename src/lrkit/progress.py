"""Progress for long work: a tqdm bar on a terminal, otherwise a plain line every ~10 seconds.

Work that can take more than about ten seconds (a range test, a study) reports through
:class:`Progress`, on stderr, so stdout keeps only results. On a terminal it draws a tqdm bar
(tqdm comes with ``lrkit[bench]``; without it, lines are printed instead). Elsewhere (a log
file, CI, a pipe) a bar would be a mess of carriage returns, so it prints one line every
``interval`` seconds and a last line when it closes; work shorter than ``interval`` prints
nothing.

>>> import io
>>> out = io.StringIO()
>>> with Progress(3, "demo", "steps", stream=out, interval=0.0) as progress:
...     for i in range(3):
...         progress.update(status=f"i={i}")
>>> print(out.getvalue().splitlines()[0].split(" after ")[0])
demo: 1/3 steps
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from lrkit.text import is_terminal

#: seconds between two progress lines when the output is not a terminal
INTERVAL = 10.0


class Progress:
    """Counts units of work done out of ``total`` and shows it on ``stream`` (default stderr).

    Args:
        total: the units expected (the count may stop short, e.g. a range test that diverges).
        desc: what is running, e.g. ``"range test"``.
        unit: what is counted, plural, e.g. ``"points"``.
        stream: where to write (default ``sys.stderr`` at the time of the call).
        interval: seconds between lines when ``stream`` is not a terminal (default :data:`INTERVAL`).
        bar: force a tqdm bar (True) or lines (False); default: a bar exactly when ``stream`` is
            a terminal.
    """

    def __init__(self, total: int, desc: str, unit: str = "steps", *, stream: IO[str] | None = None,
                 interval: float | None = None, bar: bool | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = INTERVAL if interval is None else interval
        self.n = 0
        self.started = self.last = time.monotonic()
        self.lines = 0
        self._bar: Any = None
        if bar if bar is not None else is_terminal(self.stream):
            try:
                from tqdm import tqdm
            except ModuleNotFoundError:  # lrkit[torch] without lrkit[bench]: lines do the job
                pass
            else:
                self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True)

    def update(self, n: int = 1, status: str = "") -> None:
        """Count ``n`` more units; ``status`` (e.g. the current loss) is shown beside the count."""
        self.n += n
        if self._bar is not None:
            if status:
                self._bar.set_postfix_str(status, refresh=False)
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line(status)

    def close(self, status: str = "") -> None:
        """End the bar, or print a last line when any line was printed."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.lines:
            self._line(status or "done")

    def _line(self, status: str) -> None:
        elapsed = time.monotonic() - self.started
        text = f"{self.desc}: {self.n}/{self.total} {self.unit} after {elapsed:.0f} s"
        print(text + (f", {status}" if status else ""), file=self.stream, flush=True)
        self.lines += 1

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["INTERVAL", "Progress"]
