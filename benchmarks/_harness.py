"""What every benchmark script shares: repeated measurements, the machine they ran on, and results
written as JSON beside Markdown.

A figure is only worth quoting with its spread and the load it was measured under, so a
:class:`Bench` repeats each measurement (3 times unless told otherwise), reports the median and the
range, records the cores, the load average before and after and torch's thread count, and warns
when the load average exceeds the core count (other work was competing for the CPU: the times and
the ratios between them are not to be trusted).

    from _harness import Bench, add_arguments

    ap = argparse.ArgumentParser(); add_arguments(ap); args = ap.parse_args()
    bench = Bench("my_benchmark", args)
    t = bench.time("load", lambda: load(path))          # Timing: runs, median, lo, hi
    slow, fast = bench.alternate({"slow": f, "fast": g}) # round-robin runs, for ratios
    bench.ratio("speed-up", slow, fast)                  # median and range of the paired ratios
    bench.record("peak_rss_mb", 123.0)                   # any other value
    bench.finish()                                       # prints the summary, writes NAME.json + NAME.md

Scripts in this directory import it as ``_harness`` (Python puts a script's own directory first on
``sys.path``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Timing:
    """Seconds of each run of one measurement."""

    label: str
    runs: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def lo(self) -> float:
        return min(self.runs)

    @property
    def hi(self) -> float:
        return max(self.runs)

    def __str__(self) -> str:
        """
        >>> str(Timing("x", [0.25, 0.2, 0.21]))
        '0.210 s (0.200-0.250, n=3)'
        """
        return f"{self.median:.3f} s ({self.lo:.3f}-{self.hi:.3f}, n={len(self.runs)})"

    def summary(self) -> dict[str, Any]:
        return {"median_s": self.median, "min_s": self.lo, "max_s": self.hi, "runs_s": self.runs, "note": self.note}


@dataclass
class Ratio:
    """``slow / fast`` of paired runs (run i of one against run i of the other)."""

    label: str
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def __str__(self) -> str:
        """
        >>> str(Ratio("x", [3.5, 3.7, 3.6]))
        'x3.60 (3.50-3.70)'
        """
        return f"x{self.median:.2f} ({min(self.values):.2f}-{max(self.values):.2f})"

    def summary(self) -> dict[str, Any]:
        return {"median": self.median, "min": min(self.values), "max": max(self.values), "runs": self.values}


def cores() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def torch_threads() -> int | None:
    if "torch" not in sys.modules:  # importing torch only to ask would cost a second
        return None
    return sys.modules["torch"].get_num_threads()


def gpu_name() -> str | None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def add_arguments(ap: argparse.ArgumentParser, repeats: int = 3) -> None:
    """The options every benchmark takes: ``--repeats`` and ``--out`` (where NAME.json/.md go)."""
    ap.add_argument("--repeats", type=int, default=repeats, help=f"runs of each measurement (default {repeats})")
    ap.add_argument("--out", default=None, help="directory for NAME.json and NAME.md (default: print only)")


@dataclass
class Bench:
    """One benchmark run: its measurements, its machine, its output files."""

    name: str
    args: argparse.Namespace | None = None
    repeats: int = 3
    out: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.args is not None:
            self.repeats = getattr(self.args, "repeats", self.repeats)
            self.out = getattr(self.args, "out", self.out)
            self.params = {k: v for k, v in vars(self.args).items() if k not in ("repeats", "out")} | self.params
        if self.repeats < 1:
            raise ValueError("repeats must be >= 1")
        self.timings: dict[str, Timing] = {}
        self.ratios: dict[str, Ratio] = {}
        self.values: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.load_before = load_average()
        self.started = time.time()
        self._check_load("before")

    def _check_load(self, when: str) -> None:
        load, n = load_average(), cores()
        if load > n:
            msg = f"load average {load:.2f} {when} the run exceeds the {n} cores: other work competes, times are not comparable"
            self.warnings.append(msg)
            print(f"WARNING: {msg}", file=sys.stderr)

    def time(
        self,
        label: str,
        fn: Callable[[], Any],
        repeats: int | None = None,
        sync: Callable[[], None] | None = None,
        note: str = "",
    ) -> Timing:
        """Run ``fn`` ``repeats`` times (``sync`` waits for a device before each clock read); the last
        result is kept as ``timing.result``."""
        runs = []
        result = None
        for _ in range(repeats or self.repeats):
            if sync:
                sync()
            t0 = time.perf_counter()
            result = fn()
            if sync:
                sync()
            runs.append(time.perf_counter() - t0)
        timing = Timing(label, runs, note)
        timing.result = result  # type: ignore[attr-defined]
        self.timings[label] = timing
        return timing

    def alternate(
        self, fns: dict[str, Callable[[], Any]], repeats: int | None = None, sync: Callable[[], None] | None = None
    ) -> list[Timing]:
        """Time several functions in turn, round after round (a burst of load hits every side of a ratio
        alike rather than all runs of one); one :class:`Timing` per function, in order."""
        timings = {label: Timing(label, []) for label in fns}
        for _ in range(repeats or self.repeats):
            for label, fn in fns.items():
                once = self.time(label, fn, repeats=1, sync=sync)
                timings[label].runs += once.runs
                timings[label].result = once.result  # type: ignore[attr-defined]
        self.timings.update(timings)
        return list(timings.values())

    def add_timing(self, label: str, runs: list[float], note: str = "") -> Timing:
        """A measurement timed elsewhere (e.g. in a child process)."""
        self.timings[label] = Timing(label, list(runs), note)
        return self.timings[label]

    def ratio(self, label: str, slow: Timing, fast: Timing) -> Ratio:
        values = [s / f for s, f in zip(slow.runs, fast.runs, strict=True)]
        self.ratios[label] = Ratio(label, values)
        return self.ratios[label]

    def record(self, key: str, value: Any) -> None:
        self.values[key] = value

    def machine(self) -> dict[str, Any]:
        return {
            "cores": cores(), "cpu": platform.processor() or platform.machine(), "gpu": gpu_name(),
            "torch_threads": torch_threads(), "load_before": self.load_before, "load_after": load_average(),
            "python": platform.python_version(),
            "torch": getattr(sys.modules.get("torch"), "__version__", None),
        }  # fmt: skip

    def result(self) -> dict[str, Any]:
        return {
            "benchmark": self.name, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "wall_s": time.time() - self.started, "repeats": self.repeats, "params": self.params,
            "machine": self.machine(), "warnings": self.warnings,
            "timings": {k: t.summary() for k, t in self.timings.items()},
            "ratios": {k: r.summary() for k, r in self.ratios.items()}, "values": self.values,
        }  # fmt: skip

    def markdown(self, result: dict[str, Any]) -> str:
        lines = [
            f"## {self.name}",
            "",
            f"{machine_line(result['machine'])}; {self.repeats} runs each, median (min-max); {result['started']}",
            "",
        ]
        lines += [f"> WARNING: {w}" for w in self.warnings] + ([""] if self.warnings else [])
        if self.timings:
            lines += ["| measurement | median s | min s | max s | note |", "|---|---:|---:|---:|---|"]
            lines += [f"| {t.label} | {t.median:.3f} | {t.lo:.3f} | {t.hi:.3f} | {t.note} |" for t in self.timings.values()]
            lines.append("")
        if self.ratios:
            lines += ["| ratio | median | min | max |", "|---|---:|---:|---:|"]
            lines += [f"| {r.label} | x{r.median:.2f} | x{min(r.values):.2f} | x{max(r.values):.2f} |" for r in self.ratios.values()]
            lines.append("")
        if self.values:
            lines += ["| value | |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in self.values.items()] + [""]
        return "\n".join(lines)

    def finish(self) -> dict[str, Any]:
        """Check the load again, print the Markdown summary to stderr and write NAME.json/NAME.md to ``out``."""
        self._check_load("after")
        result = self.result()
        md = self.markdown(result)
        print(md, file=sys.stderr)
        if self.out:
            out = Path(self.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{self.name}.json").write_text(json.dumps(result, indent=2, default=_jsonable) + "\n")
            (out / f"{self.name}.md").write_text(md + "\n")
        return result


def machine_line(m: dict[str, Any]) -> str:
    """
    >>> machine_line({"cores": 2, "cpu": "x86_64", "gpu": None, "torch_threads": 2, "load_before": 0.1,
    ...               "load_after": 1.9, "torch": "2.14.1"})
    '2 cores (x86_64), no GPU, torch 2.14.1 with 2 threads, load average 0.10 before / 1.90 after'
    """
    gpu = f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
    torch = f"torch {m['torch']} with {m['torch_threads']} threads" if m.get("torch") else "no torch"
    return f"{m['cores']} cores ({m['cpu']}), {gpu}, {torch}, load average {m['load_before']:.2f} before / {m['load_after']:.2f} after"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB: ``VmHWM`` of its own address space.
    (``ru_maxrss`` would also count what a parent held when it forked this process.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # not Linux: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
