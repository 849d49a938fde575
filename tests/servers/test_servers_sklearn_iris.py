"""The KServe v1 iris server over real HTTP: predictions, errors naming the problem, metrics, SIGTERM."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_procs import Proc, server

from swell.servers import sklearn_iris

pytestmark = pytest.mark.slow
SETOSA, VERSICOLOR, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.8, 2.8, 4.8, 1.4], [7.7, 3.0, 6.1, 2.3]


@pytest.fixture(scope="module")
def iris() -> Iterator[Proc]:
    with server("swell.servers.sklearn_iris", "--name", "iris") as p:
        yield p


def test_status_and_predictions(iris: Proc) -> None:
    assert iris.get("/v1/models/iris")[0] == 200 and '"ready": true' in iris.get("/v1/models/iris")[1]
    status, body = iris.post("/v1/models/iris:predict", {"instances": [VERSICOLOR, SETOSA, VIRGINICA]})
    assert (status, body) == (200, {"predictions": [1, 0, 2]})


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"inputs": []}, '"instances"'),
        ({"instances": []}, "non-empty"),
        ({"instances": [[1, 2, 3]]}, "instances[0]: expected 4 numbers"),
        ({"instances": [SETOSA, [1, "x", 3, 4]]}, "instances[1][1] (sepal width)"),
    ],
    ids=["no instances key", "empty list", "short row", "non-number names row, column and feature"],
)
def test_bad_input_is_400_naming_the_problem(iris: Proc, body: object, needle: str) -> None:
    status, answer = iris.post("/v1/models/iris:predict", body)
    assert status == 400 and needle in answer["error"]


def test_not_json_and_unknown_model(iris: Proc) -> None:
    status, answer = iris.post("/v1/models/iris:predict", None, raw=b"[1,")
    assert status == 400 and "JSON" in answer["error"]
    status, answer = iris.post("/v1/models/rose:predict", {"instances": [SETOSA]})
    assert status == 404 and "rose" in answer["error"]


def test_metrics_count_requests(iris: Proc) -> None:
    iris.post("/v1/models/iris:predict", {"instances": [SETOSA]})
    fams = {f.name: f for f in text_string_to_metric_families(iris.get("/metrics")[1])}
    assert {"request_predict_seconds", "swell_request_duration_seconds", "swell_requests"} <= fams.keys()
    ok = [s.value for s in fams["swell_requests"].samples if s.labels.get("code") == "200"]
    assert ok and ok[0] >= 1


def in_flight(p: Proc) -> float:
    fams = {f.name: f for f in text_string_to_metric_families(p.get("/metrics")[1])}
    return fams["swell_requests_in_flight"].samples[0].value


def test_parse_instances_accepts_ints_and_floats() -> None:
    assert sklearn_iris.parse_instances({"instances": [[1, 2.5, 3, 4]]}) == [[1.0, 2.5, 3.0, 4.0]]


def test_simulated_service_time_queues_on_one_worker_then_drains_on_sigterm() -> None:
    args = ("--workers", "1", "--service-time-ms", "150", "--service-cv", "0")
    with server("swell.servers.sklearn_iris", *args) as p:

        def timed(_: int) -> float:
            t = time.monotonic()
            assert p.post("/v1/models/iris:predict", {"instances": [SETOSA]})[0] == 200
            return time.monotonic() - t

        with ThreadPoolExecutor(4) as pool:
            lat = sorted(pool.map(timed, range(4)))
        # A lower bound, not a timing race: sleeps never end early, so the last of four requests on
        # one worker waited for three 150 ms service times (on parallel workers it would take ~150 ms).
        assert lat[-1] >= 3 * 0.150

        result: list[int] = []
        t = threading.Thread(
            target=lambda: result.append(p.post("/v1/models/iris:predict", {"instances": [SETOSA]})[0])
        )
        t.start()
        deadline = time.monotonic() + 10
        while in_flight(p) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert p.terminate() == 0
        t.join(10)
        assert result == [200]
