"""A tiny OpenAI-shaped model server for the local-cluster tests (standard library only: starts fast).

`python tiny_server.py --port P [--delay S] [--token-delay S] [--startup-delay S] [--metrics-broken]
[--escapee PIDFILE] [--model NAME]`. Serves
/health, /metrics (tiny_requests_in_flight, tiny_requests_total), /v1/completions and
/v1/chat/completions (streaming SSE too), /env (its CUDA_VISIBLE_DEVICES), and test controls: POST /control/break-metrics,
/control/fix-metrics, /control/unhealthy, /control/healthy, /control/hang (every GET hangs from then on),
/control/release (answers every completion sent with `"hold": true`, which waits for it, at most 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"in_flight": 0, "total": 0, "metrics_broken": False, "healthy": True, "hung": False}
LOCK = threading.Lock()
RELEASE = threading.Event()  # completions sent with "hold": true wait for POST /control/release
ARGS = argparse.Namespace()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if STATE["hung"]:  # a hung server: accepts, reads, never answers
            time.sleep(60)
            return
        if self.path == "/health":
            self._send(200 if STATE["healthy"] else 503, b'{"status":"ok"}')
        elif self.path == "/env":
            self._send(
                200, json.dumps({"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}).encode()
            )
        elif self.path == "/metrics":
            if STATE["metrics_broken"]:
                self._send(500, b"broken")
                return
            text = (
                "# TYPE tiny_requests_in_flight gauge\n"
                f"tiny_requests_in_flight {STATE['in_flight']}\n"
                "# TYPE tiny_requests counter\n"
                f"tiny_requests_total {STATE['total']}\n"
            )
            self._send(200, text.encode(), "text/plain; version=0.0.4")
        else:
            self._send(404, b'{"error":"not found"}')

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path.startswith("/control/"):
            what = self.path.removeprefix("/control/")
            STATE["metrics_broken"] = {"break-metrics": True, "fix-metrics": False}.get(
                what, STATE["metrics_broken"]
            )
            if what in ("unhealthy", "healthy"):
                STATE["healthy"] = what == "healthy"
            if what == "release":
                RELEASE.set()
            if what == "hang":
                STATE["hung"] = True
            self._send(200, b"{}")
            return
        if self.path not in ("/v1/completions", "/v1/chat/completions"):
            self._send(404, b'{"error":"not found"}')
            return
        req = json.loads(raw or b"{}")
        with LOCK:
            STATE["in_flight"] += 1
            STATE["total"] += 1
        try:
            self._complete(req, chat=self.path.endswith("chat/completions"))
        finally:
            with LOCK:
                STATE["in_flight"] -= 1

    def _complete(self, req: dict[str, object], *, chat: bool) -> None:
        if req.get("hold"):
            RELEASE.wait(30)
        time.sleep(float(req.get("delay", ARGS.delay)))  # type: ignore[arg-type]
        tokens = [f"tok{i} " for i in range(int(req.get("max_tokens") or 4))]  # type: ignore[call-overload]
        obj = "chat.completion" if chat else "text_completion"
        base = {"id": "cmpl-tiny", "created": int(time.time()), "model": ARGS.model, "object": obj}
        if not req.get("stream"):
            choice: dict[str, object] = {"index": 0, "finish_reason": "length", "logprobs": None}
            if chat:
                choice["message"] = {"role": "assistant", "content": "".join(tokens)}
            else:
                choice["text"] = "".join(tokens)
            usage = {"prompt_tokens": 1, "completion_tokens": len(tokens), "total_tokens": len(tokens) + 1}
            self._send(200, json.dumps({**base, "choices": [choice], "usage": usage}).encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, tok in enumerate(tokens):
            last = i == len(tokens) - 1
            choice = {"index": 0, "finish_reason": "length" if last else None, "logprobs": None}
            if chat:
                choice["delta"] = {"role": "assistant", "content": tok} if i == 0 else {"content": tok}
            else:
                choice["text"] = tok
            chunk = {**base, "object": obj + (".chunk" if chat else ""), "choices": [choice]}
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            time.sleep(ARGS.token_delay)
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def escape(pid_file: str) -> None:
    """Double fork + setsid, as daemons and some model servers' helpers do: the grandchild is in
    another session and process group, so signals to the server's group never reach it."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open(pid_file, "a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(600)
        os._exit(0)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--token-delay", type=float, default=0.0)
    p.add_argument("--startup-delay", type=float, default=0.0)
    p.add_argument("--metrics-broken", action="store_true", help="start with /metrics answering 500")
    p.add_argument("--model", default="tiny", help="the model name its answers carry (a version, to tell two apart)")
    p.add_argument("--escapee", help="start a process that leaves the group (setsid), append its pid here")
    p.parse_args(argv, namespace=ARGS)
    if ARGS.escapee:
        escape(ARGS.escapee)
    STATE["metrics_broken"] = ARGS.metrics_broken
    time.sleep(ARGS.startup_delay)
    server = ThreadingHTTPServer((ARGS.host, ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
