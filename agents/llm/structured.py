"""Structured output: JSON answers checked against a JSON schema, and the repair prompt."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from agents.llm.errors import InvalidLLMRequest

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
MAX_ERRORS = 10


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    if not isinstance(schema, dict):
        raise InvalidLLMRequest("response_schema must be a JSON schema object", field="response_schema")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidLLMRequest(f"response_schema is not a valid JSON schema: {exc.message}",
                                field="response_schema") from exc
    return Draft202012Validator(schema)


def parse_and_validate(content: str, validator: Draft202012Validator) -> tuple[Any, list[str]]:
    """``(value, errors)``: the parsed JSON and what is wrong with it (empty when valid)."""
    text = content or ""
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
    errors = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        errors.append(f"{where}: {error.message}")
        if len(errors) >= MAX_ERRORS:
            break
    return value, errors


def response_format(schema: dict[str, Any], name: str = "answer") -> dict[str, Any]:
    """OpenAI's ``response_format`` for a JSON schema (providers that support it enforce it)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}


def schema_instruction(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": "system",
        "content": "Answer with one JSON value only, no prose, matching this JSON schema:\n"
        + json.dumps(schema, ensure_ascii=False),
    }


def repair_messages(messages: list[dict[str, Any]], content: str, errors: list[str]) -> list[dict[str, Any]]:
    """The conversation plus the invalid answer and what is wrong with it, asking for a corrected answer."""
    return [
        *messages,
        {"role": "assistant", "content": content},
        {
            "role": "user",
            "content": "Your answer does not match the required JSON schema:\n- "
            + "\n- ".join(errors)
            + "\nReply again with the corrected JSON only.",
        },
    ]
