"""The simulated vLLM server over real HTTP: OpenAI client, SSE pacing, vLLM metrics, SIGTERM."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_procs import Proc, server

pytestmark = pytest.mark.slow
MODEL = "sim-model"
VLLM_NAMES = {
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:e2e_request_latency_seconds", "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds", "vllm:request_queue_time_seconds", "vllm:request_success",
    "vllm:prompt_tokens", "vllm:generation_tokens", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED",
}  # fmt: skip


@pytest.fixture(scope="module")
def sim() -> Iterator[Proc]:
    with server("swell.servers.simulated_llm", "--model", MODEL, "--preset", "tiny-cpu") as p:
        yield p


def client(p: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=p.url + "/v1", api_key="unused", max_retries=0, timeout=20)


def scrape(p: Proc) -> dict[str, dict[str, float]]:
    """family name -> {sample name + sorted labels: value}"""
    status, text = p.get("/metrics")
    assert status == 200
    out: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = {s.name + str(sorted(s.labels.items())): s.value for s in fam.samples}
    return out


def total(fam: dict[str, float], suffix: str = "") -> float:
    return sum(v for k, v in fam.items() if k.split("[")[0].endswith(suffix))


def test_chat_streams_one_chunk_per_token_with_usage(sim: Proc) -> None:
    stream = client(sim).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x" * 400}], max_tokens=25, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 25
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 25 and chunks[-1].usage.prompt_tokens == 104  # 400/4 + 4


def test_a_chat_streams_its_first_byte_with_its_first_token_as_vllm_does(sim: Proc) -> None:
    """The assistant's role comes with the first token, after the prefill (as vLLM sends it), not at
    once: a proxy timing the first byte (swell's gateway) reads that as the TTFT. Compared in one
    run: the client's wait for the first byte against the server's own TTFT of the same request."""
    before = total(scrape(sim)["vllm:time_to_first_token_seconds"], "_sum")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 7600}], "max_tokens": 3, "stream": True}
    host, port = sim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()  # the headers: sent at once
    first = r.read1()
    waited = time.perf_counter() - started
    rest = r.read()
    conn.close()
    ttft = total(scrape(sim)["vllm:time_to_first_token_seconds"], "_sum") - before
    assert b'"role":"assistant"' in first + rest and ttft > 0
    assert waited >= 0.8 * ttft, (waited, ttft)  # at once, it was a thousandth of it


def test_completions_stream_and_full(sim: Proc) -> None:
    c = client(sim)
    full = c.completions.create(model=MODEL, prompt="hello world, twenty chars", max_tokens=7)
    assert full.usage is not None and full.usage.completion_tokens == 7 and full.usage.prompt_tokens == 7
    assert len(full.choices[0].text.split()) == 7
    pieces = [
        ch.choices[0].text for ch in c.completions.create(model=MODEL, prompt="hi", max_tokens=5, stream=True)
    ]
    assert len(pieces) == 5 and all(pieces)
    models = c.models.list()
    assert [m.id for m in models.data] == [MODEL]


def test_bad_requests_get_openai_errors(sim: Proc) -> None:
    c = client(sim)
    with pytest.raises(openai.NotFoundError):
        c.completions.create(model="other", prompt="x", max_tokens=1)
    with pytest.raises(openai.BadRequestError, match="'max_tokens' or 'max_completion_tokens' is too large"):
        c.completions.create(model=MODEL, prompt="x", max_tokens=100_000)
    with pytest.raises(openai.BadRequestError, match="messages"):
        c.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
    status, body = sim.post("/v1/completions", None, raw=b"{not json")
    assert status == 400 and "JSON" in body["error"]["message"]


def test_a_prompt_longer_than_the_context_gets_vllms_400(sim: Proc) -> None:
    status, body = sim.post("/v1/completions", {"model": MODEL, "prompt": "x" * 4 * 2100})  # tiny-cpu: 2048
    assert status == 400
    assert body == {"error": {
        "message": "This model's maximum context length is 2048 tokens. However, your request has 2100 input "
                   "tokens. Please reduce the length of the input messages.",
        "type": "BadRequestError", "param": None, "code": 400,
    }}  # fmt: skip
    status, body = sim.post("/v1/completions", {"model": MODEL, "prompt": "x" * 4 * 2000, "max_tokens": 100})
    assert status == 400 and "(100 > 2048 - 2000)" in body["error"]["message"]


def test_vllm_flags_set_the_served_context() -> None:
    with server("swell.servers.simulated_llm", "--model", MODEL, "--max-model-len=1024") as p:
        status, text = p.get("/v1/models")
        assert status == 200 and json.loads(text)["data"][0]["max_model_len"] == 1024
        status, body = p.post("/v1/completions", {"model": MODEL, "prompt": "x" * 4 * 1100})
        assert status == 400 and "maximum context length is 1024 tokens" in body["error"]["message"]


def test_metrics_have_vllm_names_and_count_the_load(sim: Proc) -> None:
    before = scrape(sim)
    assert before.keys() >= VLLM_NAMES
    n = 12  # more than tiny-cpu's max_num_seqs=8: some must queue
    with ThreadPoolExecutor(n) as pool:
        list(
            pool.map(
                lambda i: client(sim).completions.create(model=MODEL, prompt="p" * 200, max_tokens=40),
                range(n),
            )
        )
    after = scrape(sim)
    done = total(after["vllm:request_success"]) - total(before["vllm:request_success"])
    assert done == n
    gen = total(after["vllm:generation_tokens"]) - total(before["vllm:generation_tokens"])
    assert gen == n * 40
    queued = total(after["vllm:request_queue_time_seconds"], "_sum") - total(
        before["vllm:request_queue_time_seconds"], "_sum"
    )
    assert queued > 0
    itl = after["vllm:inter_token_latency_seconds"]
    assert any('"le", "0.01"' in k or "('le', '0.01')" in k for k in itl)  # vLLM's bucket bounds
    assert 0 <= total(after["DCGM_FI_DEV_GPU_UTIL"]) <= 100
    assert total(after["DCGM_FI_DEV_FB_USED"]) > 0
    labels = next(iter(after["vllm:num_requests_running"]))
    assert f"('model_name', '{MODEL}')" in labels


def test_client_going_away_aborts_the_request(sim: Proc) -> None:
    before = scrape(sim)
    stream = client(sim).completions.create(model=MODEL, prompt="x", max_tokens=400, stream=True)
    next(iter(stream))
    stream.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        aborted = scrape(sim)["vllm:request_success"]
        if total({k: v for k, v in aborted.items() if "abort" in k}) > total(
            {k: v for k, v in before["vllm:request_success"].items() if "abort" in k}
        ):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the abandoned request was not aborted")
    assert total(scrape(sim)["vllm:num_requests_running"]) == 0


def test_sigterm_lets_an_inflight_stream_finish() -> None:
    with server("swell.servers.simulated_llm", "--model", MODEL, "--time-scale", "0.5") as p:
        got: list[str] = []
        first = threading.Event()

        def consume() -> None:
            for ch in client(p).completions.create(model=MODEL, prompt="x", max_tokens=60, stream=True):
                got.append(ch.choices[0].text)
                first.set()

        t = threading.Thread(target=consume)
        t.start()
        assert first.wait(10)
        assert p.terminate() == 0
        t.join(10)
        assert len(got) == 60
        with pytest.raises(openai.APIConnectionError):
            client(p).completions.create(model=MODEL, prompt="x", max_tokens=1)


def test_startup_errors_are_one_line_not_a_traceback(sim: Proc) -> None:
    port = sim.url.rsplit(":", 1)[1]  # already taken by the module's server
    bad = (["--port", port], 1), (["--port", "0", "--preset", "nope"], 2), (["--port", "0", "--max-model-len", "1M"], 2)
    for args, rc in bad:
        run = subprocess.run([sys.executable, "-m", "swell.servers.simulated_llm", *args],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert run.returncode == rc and run.stderr.startswith("error:") and "Traceback" not in run.stderr
