"""Each ScalingRecipe reads its own service's series only: namespace plus the scrape labels.

The controller's queries carry `namespace="<recipe namespace>"` (always) and the recipe's
`metricLabels` (default `service: <target name>`, the label a ServiceMonitor attaches). GPU
utilization (DCGM series carry the workload's namespace and pod, not its service) is scoped to
the target's pods. A raw `query` gets the namespace matcher injected into every vector selector
(prom-label-proxy's rule) unless the operator allows queries across namespaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from swell import recipe
from swell.core import signals

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<comment>\#[^\n]*)
    |(?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    |(?P<num>0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?:[a-zA-Z]+[0-9]*)*)
    |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    |(?P<op>.)""",
    re.X | re.S,
)
# Words that are never a metric name at the top level of an expression.
_KEYWORDS = {
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "limitk", "limit_ratio", "by", "without", "on", "ignoring",
    "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan", "atan2",
}  # fmt: skip
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def inject(query: str, matchers: Sequence[str]) -> str:
    """`query` with `matchers` (e.g. 'namespace="a"') added to every vector selector. A selector
    that already names the label keeps its own matcher too: PromQL ANDs them, so it cannot widen."""
    if not matchers:
        return query
    add = ",".join(matchers)
    tokens = [(m.lastgroup, m.group(), m.start(), m.end()) for m in _TOKEN.finditer(query)]
    code = [t for t in tokens if t[0] not in ("ws", "comment")]
    inserts: list[tuple[int, str]] = []
    depth_brace = depth_bracket = 0
    skip_parens = 0  # inside a `by (...)` label list
    expect_list = False
    for i, (kind, text, _start, end) in enumerate(code):
        nxt = code[i + 1][1] if i + 1 < len(code) else ""
        if skip_parens:
            skip_parens += {"(": 1, ")": -1}.get(text, 0)
            continue
        if expect_list and text == "(":
            expect_list, skip_parens = False, 1
            continue
        expect_list = False
        if text == "{":
            if depth_brace == 0 and depth_bracket == 0:
                prev = code[i - 1] if i else None
                if prev is None or prev[0] != "ident" or prev[1].lower() in _KEYWORDS:
                    inserts.append((end, add + ("" if nxt == "}" else ",")))  # a selector with no name
            depth_brace += 1
        elif text == "}":
            depth_brace -= 1
        elif text == "[":
            depth_bracket += 1
        elif text == "]":
            depth_bracket -= 1
        elif kind == "ident" and depth_brace == 0 and depth_bracket == 0:
            if text.lower() in _LABEL_LISTS:
                expect_list = True
            elif text.lower() in _KEYWORDS or nxt == "(":
                continue  # an operator or a function call
            elif nxt == "{":
                after = code[i + 2][1] if i + 2 < len(code) else ""
                inserts.append((code[i + 1][3], add + ("" if after == "}" else ",")))
            else:
                inserts.append((end, "{" + add + "}"))
    out, last = [], 0
    for pos, text in sorted(inserts):
        out += [query[last:pos], text]
        last = pos
    return "".join(out) + query[last:]


def metric_labels(namespace: str, labels: Mapping[str, str]) -> dict[str, str]:
    """The equality matchers every signal of the recipe carries (namespace always wins)."""
    return {**labels, "namespace": namespace}


def scoped_query(
    sig: recipe.Signal,
    *,
    namespace: str,
    labels: Mapping[str, str],
    pods: Iterable[str] = (),
    pod_pattern: str | None = None,
    resources: recipe.Resources | None = None,
    any_namespace: bool = False,
) -> str:
    """The PromQL the controller sends for one signal of a recipe in `namespace` (GPU
    utilization: `pods` by name, or a `pod_pattern` regex where the pods are not known)."""
    if sig.kind == "promql":
        assert sig.query is not None
        return sig.query if any_namespace else inject(sig.query, [f"namespace={quote(namespace)}"])
    if sig.kind == "utilization" and sig.resource == "gpu":
        names = sorted(pods)
        pod = pod_pattern or ("|".join(re.escape(n) for n in names) if names else "^$")  # none: no series
        matchers = [f"namespace={quote(namespace)}", f"pod=~{quote(pod)}"]
        return inject(signals.render(sig, idle_as_zero=True, resources=resources), matchers)
    extra = {k: v for k, v in labels.items() if k not in sig.labels}  # the signal's own labels win
    extra["namespace"] = namespace
    return signals.render(sig, extra, idle_as_zero=True, resources=resources)
