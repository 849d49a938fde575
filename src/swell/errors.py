"""The one exception tree of swell.

    SwellError                      everything swell raises on purpose
    ├── RecipeError                 a recipe (or observation file) is invalid; carries every Problem
    ├── SignalError                 a signal cannot be evaluated the way it was asked (e.g. raw PromQL
    │                               without a Prometheus server)
    ├── MetricsError                a scrape or a Prometheus query failed (read as "no value" upstream)
    ├── ClusterError                a cluster could not observe or apply (process, API server)
    │   ├── CapacityError           no slot / node for a replica
    │   └── KubernetesError         the Kubernetes API answered an error (carries the HTTP status)
    └── EngineError                 a model server could not start or answered badly

The CLI turns any SwellError into a message and exit code 1, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with an input: where (a dotted path), what value, which rule."""

    path: str
    value: object
    rule: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.rule} (got {cut(repr(self.value), 80)})"


ECHO_CHARS = 200  # an input echoed in an error (a name, a value, a path) is cut to this many characters


def cut(text: str, n: int = ECHO_CHARS) -> str:
    """`text` at most `n` characters long, '...' marking where it was cut (an echo of a huge input)."""
    return text if len(text) <= n else text[: n - 3] + "..."


class SwellError(Exception):
    """Base of every error swell raises on purpose."""


class RecipeError(SwellError):
    """An invalid recipe or input file. Holds every problem found, not only the first."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class SignalError(SwellError):
    """A signal cannot be evaluated by the requested evaluator."""


class MetricsError(SwellError):
    """Scraping or querying metrics failed."""


class ClusterError(SwellError):
    """A cluster could not be observed or changed."""


class CapacityError(ClusterError):
    """No device slot or node can hold another replica."""


class KubernetesError(ClusterError):
    """The Kubernetes API answered with an error; `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class EngineError(SwellError):
    """A model server failed to start or misbehaved."""
