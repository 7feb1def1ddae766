"""A local OpenAI-compatible chat completions server for the gateway's HTTP tests.

It listens on 127.0.0.1 (a free port), serves ``POST /v1/chat/completions``
(plain JSON, server-sent events when ``stream`` is true, tool calls in both) and
``GET /v1/models``. Behaviour is programmed per model name:

    stub = StubOpenAI().start()
    stub.program("good", content="Hello there")                 # every call
    stub.program("tools", tool_calls=[("lookup", {"q": "x"})])  # a tool call (a str: raw arguments)
    stub.fail("bad", status=500)                                # HTTP 500 every time
    stub.fail("flaky", status=500, times=1)                     # once, then normal
    stub.program("slow", delay=3.0)                             # before any byte is sent
    stub.program("drip", chunk_delay=0.05)                      # between streamed chunks
    stub.program("cut", cut_after=2)                            # streamed: connection lost after 2 chunks
    stub.requests                                               # what arrived, in order
    stub.stop()
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    content: str = "stub reply"
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    delay: float = 0.0
    chunk_delay: float = 0.0
    fail_status: int | None = None
    fail_times: int | None = None  # None: always (when fail_status is set)
    replies: list[str] = field(default_factory=list)  # consumed in order before ``content``
    cut_after: int | None = None  # streamed: drop the connection after this many content chunks


@dataclass
class Received:
    model: str
    body: dict[str, Any]
    at: float


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


class StubOpenAI:
    def __init__(self) -> None:
        self._behaviours: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Received] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- programming ---------------------------------------------------------------
    def program(self, model: str, **values: Any) -> Behaviour:
        with self._lock:
            behaviour = self._behaviours.setdefault(model, Behaviour())
            for key, value in values.items():
                setattr(behaviour, key, value)
            return behaviour

    def fail(self, model: str, *, status: int = 500, times: int | None = None) -> None:
        self.program(model, fail_status=status, fail_times=times)

    def heal(self, model: str) -> None:
        self.program(model, fail_status=None, fail_times=None, delay=0.0)

    def calls_for(self, model: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.model == model]

    # --- lifecycle -----------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StubOpenAI:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    with stub._lock:
                        names = sorted(stub._behaviours)
                    self._json(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": "not found"}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stub._serve(self, body)

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="stub-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- serving -------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _serve(self, handler: Any, body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        with self._lock:
            self.requests.append(Received(model=model, body=body, at=time.monotonic()))
            behaviour = self._behaviours.setdefault(model, Behaviour())
            failing = behaviour.fail_status is not None and (behaviour.fail_times is None or behaviour.fail_times > 0)
            if failing and behaviour.fail_times is not None:
                behaviour.fail_times -= 1
            content = behaviour.replies.pop(0) if behaviour.replies else behaviour.content
            tool_calls = list(behaviour.tool_calls)
            delay, chunk_delay, status = behaviour.delay, behaviour.chunk_delay, behaviour.fail_status
            cut_after = behaviour.cut_after
        try:
            self._sleep(delay)
            if failing:
                handler._json(status, {"error": {"message": f"stub failure {status}", "type": "server_error"}})
                return
            prompt_tokens = sum(_count_tokens(str(m.get("content") or "")) for m in body.get("messages", []))
            if body.get("stream"):
                self._stream(handler, body, model, content, tool_calls, prompt_tokens, chunk_delay, cut_after)
            else:
                handler._json(200, self._completion(model, content, tool_calls, prompt_tokens))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            return

    @staticmethod
    def _tool_call_objects(tool_calls: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
            for i, (name, args) in enumerate(tool_calls)
        ]

    def _completion(
        self, model: str, content: str, tool_calls: list[tuple[str, dict[str, Any]]], prompt_tokens: int
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None if tool_calls else content}
        if tool_calls:
            message["tool_calls"] = self._tool_call_objects(tool_calls)
        completion_tokens = _count_tokens(content) if not tool_calls else 10
        return {
            "id": f"chatcmpl-stub-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _stream(
        self,
        handler: Any,
        body: dict[str, Any],
        model: str,
        content: str,
        tool_calls: list[tuple[str, dict[str, Any]]],
        prompt_tokens: int,
        chunk_delay: float,
        cut_after: int | None = None,
    ) -> None:
        # Chunked transfer encoding, as real servers (uvicorn under vLLM) send: a connection lost
        # before the terminating empty chunk is a protocol error at the client, not a normal end.
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.close_connection = True
        ident = f"chatcmpl-stub-{len(self.requests)}"

        def send(data: bytes) -> None:
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> None:
            payload: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                payload["usage"] = usage
            send(f"data: {json.dumps(payload)}\n\n".encode())

        chunk({"role": "assistant", "content": ""})
        if tool_calls:
            for i, call in enumerate(self._tool_call_objects(tool_calls)):
                arguments = call["function"]["arguments"]
                half = len(arguments) // 2
                self._sleep(chunk_delay)
                chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                       "function": {"name": call["function"]["name"], "arguments": arguments[:half]}}]})
                self._sleep(chunk_delay)
                chunk({"tool_calls": [{"index": i, "function": {"arguments": arguments[half:]}}]})
            chunk({}, finish="tool_calls")
            completion_tokens = 10
        else:
            words = content.split(" ")
            for i, word in enumerate(words):
                if cut_after is not None and i >= cut_after:
                    handler.connection.shutdown(2)  # the server died mid-answer
                    return
                self._sleep(chunk_delay)
                chunk({"content": word if i == 0 else " " + word})
            chunk({}, finish="stop")
            completion_tokens = _count_tokens(content)
        if (body.get("stream_options") or {}).get("include_usage"):
            chunk({}, usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens})
        send(b"data: [DONE]\n\n")
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
