"""The offline scripted model: a LiteLLM custom provider answering from scenario scripts.

Registered as provider ``scripted`` (model ``scripted/staffer``) in
``litellm.custom_provider_map`` by :func:`agents.llm.router.litellm_module`.
The gateway passes what the script needs in ``metadata["staffer"]`` (role,
step, attempt, scenario, request); without it the call is answered as the
``assistant`` role. Plain and streamed answers, text and tool calls in OpenAI's
format. This module imports LiteLLM: import it lazily.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import litellm
from litellm import CustomLLM
from litellm.types.utils import (
    ChatCompletionMessageToolCall,
    Function,
    GenericStreamingChunk,
    Message,
    ModelResponse,
)
from litellm.types.utils import Usage as LiteLLMUsage

from agents.llm.scenarios import ScriptedReply, ScriptRequest, script_reply

HINT_KEY = "staffer"


def script_request_from(messages: list[dict[str, Any]], litellm_params: dict[str, Any] | None) -> ScriptRequest:
    metadata = (litellm_params or {}).get("metadata") or {}
    hint = metadata.get(HINT_KEY) or {}
    return ScriptRequest(
        role=str(hint.get("role") or "assistant"),
        messages=messages,
        step=str(hint.get("step") or ""),
        attempt=int(hint.get("attempt") or 1),
        scenario=str(hint.get("scenario") or ""),
        request=str(hint.get("request") or ""),
    )


def _token_count(messages: list[dict[str, Any]], text: str = "") -> int:
    try:
        if text:
            return int(litellm.token_counter(model="gpt-3.5-turbo", text=text))
        return int(litellm.token_counter(model="gpt-3.5-turbo", messages=messages))
    except (ValueError, TypeError, KeyError):  # an odd message shape: a rough count
        words = text.split() if text else " ".join(str(m.get("content") or "") for m in messages).split()
        return max(1, int(len(words) * 1.3))


def _tool_call_objects(reply: ScriptedReply) -> list[ChatCompletionMessageToolCall]:
    return [
        ChatCompletionMessageToolCall(
            id=f"call_scripted_{i}_{uuid.uuid4().hex[:8]}",
            type="function",
            function=Function(name=call.name, arguments=json.dumps(call.arguments, ensure_ascii=False)),
        )
        for i, call in enumerate(reply.tool_calls)
    ]


class ScriptedLLM(CustomLLM):
    """Answers every call from :func:`agents.llm.scenarios.script_reply`."""

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:  # type: ignore[override]
        model_response: ModelResponse = kwargs.get("model_response") or ModelResponse()
        reply = script_reply(script_request_from(messages, kwargs.get("litellm_params")))
        tool_calls = _tool_call_objects(reply)
        model_response.choices[0].message = Message(  # type: ignore[union-attr]
            content=None if tool_calls else reply.content,
            role="assistant",
            tool_calls=tool_calls or None,
        )
        model_response.choices[0].finish_reason = "tool_calls" if tool_calls else "stop"
        model_response.model = f"scripted/{model}"
        model_response.created = int(time.time())
        prompt_tokens = _token_count(messages)
        completion_tokens = _token_count(messages, reply.content or json.dumps([c.arguments for c in reply.tool_calls]))
        model_response.usage = LiteLLMUsage(  # type: ignore[attr-defined]
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        return model_response

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:  # type: ignore[override]
        return self.completion(model, messages, *args, **kwargs)

    def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[GenericStreamingChunk]:  # type: ignore[override]
        reply = script_reply(script_request_from(messages, kwargs.get("litellm_params")))
        prompt_tokens = _token_count(messages)
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        if reply.tool_calls:
            for i, call in enumerate(_tool_call_objects(reply)):
                yield GenericStreamingChunk(
                    text="",
                    tool_use={"id": call.id, "type": "function", "index": i,
                              "function": {"name": call.function.name, "arguments": call.function.arguments}},
                    is_finished=False, finish_reason="", usage=None, index=0,
                )
            completion_tokens = _token_count(messages, json.dumps([c.arguments for c in reply.tool_calls]))
            usage.update(completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)
            yield GenericStreamingChunk(text="", tool_use=None, is_finished=True, finish_reason="tool_calls",
                                        usage=usage, index=0)  # type: ignore[typeddict-item]
            return
        words = reply.content.split(" ")
        for i, word in enumerate(words):
            yield GenericStreamingChunk(text=word if i == 0 else " " + word, tool_use=None, is_finished=False,
                                        finish_reason="", usage=None, index=0)
        completion_tokens = _token_count(messages, reply.content)
        usage.update(completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)
        yield GenericStreamingChunk(text="", tool_use=None, is_finished=True, finish_reason="stop", usage=usage,
                                    index=0)  # type: ignore[typeddict-item]

    async def astreaming(  # type: ignore[override]
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        for chunk in self.streaming(model, messages, *args, **kwargs):
            yield chunk
