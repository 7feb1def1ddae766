"""Measure intent parsing against a labelled set of messages: accuracy, per-intent figures, confusion matrix.

    python manage.py intent_eval --org acme [--file tests/agents/intent_eval.jsonl] [--limit 50] [--json out.json]

Each line of the file is ``{"text", "label", "context"?}``; a label is an
intent (``simple_action``, ``complex_task``, ``question``, ``clarification``,
``conversation``) or ``memory:<command>``. ``context`` holds the turns before
the message (a clarification answers the assistant's question). Calls go
through the gateway with the organization's routing, as system work (no user:
not rate limited, not attributed to a person).

The offline scripted model answers from scenario scripts, not from reading
the message: it cannot measure accuracy, and the command says so and stops
(``--allow-scripted`` runs it anyway, for a smoke check of the pipeline).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.errors import ServiceError
from accounts.models import Organization, User
from agents.services.intents import INTENTS, MEMORY_COMMANDS, intent_parse

DEFAULT_FILE = Path(settings.BASE_DIR) / "tests" / "agents" / "intent_eval.jsonl"
LABELS = [i for i in INTENTS if i != "memory_command"] + [f"memory:{c}" for c in MEMORY_COMMANDS]
ERROR = "error"


def load_items(path: Path) -> list[dict[str, Any]]:
    """The labelled messages of ``path`` (a malformed line is an error naming it)."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or item.get("label") not in LABELS:
            raise CommandError(f"{path}:{number}: needs a text and a label among {', '.join(LABELS)}")
        context = item.get("context") or []
        if not isinstance(context, list) or not all(isinstance(t, dict) and t.get("role") in ("user", "assistant")
                                                    for t in context):
            raise CommandError(f"{path}:{number}: context is a list of user and assistant turns")
        items.append({"text": item["text"], "label": item["label"], "context": context})
    return items


def scores(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Accuracy, per-label precision/recall/F1 and the confusion matrix of (gold, predicted) pairs."""
    total = len(pairs)
    correct = sum(1 for gold, predicted in pairs if gold == predicted)
    matrix: dict[str, Counter[str]] = {label: Counter() for label in LABELS}
    for gold, predicted in pairs:
        matrix[gold][predicted] += 1
    per_label = {}
    for label in LABELS:
        tp = matrix[label][label]
        predicted = sum(matrix[g][label] for g in LABELS)
        gold = sum(matrix[label].values())
        precision = tp / predicted if predicted else None
        recall = tp / gold if gold else None
        f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (0.0 if gold else None)
        per_label[label] = {"support": gold, "precision": precision, "recall": recall, "f1": f1}
    return {"total": total, "correct": correct, "accuracy": correct / total if total else None,
            "per_label": per_label, "confusion": {g: dict(c) for g, c in matrix.items()}}


def _fmt(value: float | None) -> str:
    return "   -" if value is None else f"{value:.2f}"


class Command(BaseCommand):
    help = "Measure intent accuracy and the confusion matrix against the configured model (not the scripted one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="The organization whose model routing is used (slug).")
        parser.add_argument("--user", help="Attribute the calls to this member (email); default: system work.")
        parser.add_argument("--file", default=str(DEFAULT_FILE), help="The labelled messages (JSON lines).")
        parser.add_argument("--limit", type=int, default=0, help="Only the first N messages.")
        parser.add_argument("--json", dest="json_path", help="Also write the figures and every answer here.")
        parser.add_argument("--allow-scripted", action="store_true",
                            help="Run even with the scripted model (a smoke check; the figures mean nothing).")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"no organization {options['org']!r}")
        user = None
        if options.get("user"):
            user = User.objects.filter(email__iexact=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}")
        items = load_items(Path(options["file"]))
        if options["limit"]:
            items = items[: options["limit"]]
        if not items:
            raise CommandError("no labelled messages")
        pairs: list[tuple[str, str]] = []
        answers = []
        latencies: list[int] = []
        cost = Decimal(0)
        model = ""
        started = time.monotonic()
        for index, item in enumerate(items):
            try:
                intent = intent_parse(organization=organization, user=user, text=item["text"],
                                      context=item["context"])
            except ServiceError as exc:
                predicted, detail = ERROR, exc.message
            else:
                predicted, detail = intent.label, ""
                result = intent.result
                if result is not None:
                    if result.scripted and index == 0 and not options["allow_scripted"]:
                        raise CommandError(
                            "The configured model is the offline scripted model: it answers from scenario scripts, "
                            "not by reading the messages, so it cannot measure intent accuracy. Configure a model "
                            "(LLM_DEPLOYMENTS and LLM_TIERS, or the organization's LLM settings) and run this again.")
                    latencies.append(result.latency_ms)
                    cost += result.cost
                    model = model or f"{result.deployment} ({result.model})"
            pairs.append((item["label"], predicted if predicted in LABELS else ERROR))
            answers.append({**item, "predicted": predicted, "error": detail})
        figures = scores(pairs)
        self._print(figures, model=model, errors=sum(1 for _, p in pairs if p == ERROR), latencies=latencies,
                    cost=cost, seconds=time.monotonic() - started)
        if options.get("json_path"):
            Path(options["json_path"]).write_text(json.dumps(
                {"model": model, "figures": figures, "answers": answers, "cost": str(cost)}, indent=2,
                ensure_ascii=False))

    def _print(self, figures: dict[str, Any], *, model: str, errors: int, latencies: list[int], cost: Decimal,
               seconds: float) -> None:
        out = self.stdout.write
        out(f"model: {model or 'unknown'}")
        out(f"messages: {figures['total']}  correct: {figures['correct']}  errors: {errors}  "
            f"accuracy: {figures['accuracy']:.3f}")
        if latencies:
            out(f"latency ms: p50 {statistics.median(latencies):.0f}  "
                f"p95 {sorted(latencies)[int(0.95 * (len(latencies) - 1))]:.0f}  cost: {cost:.6f}  "
                f"wall: {seconds:.1f} s")
        out("")
        out(f"{'label':24} {'n':>4} {'prec':>5} {'rec':>5} {'f1':>5}")
        for label, row in figures["per_label"].items():
            out(f"{label:24} {row['support']:>4} {_fmt(row['precision']):>5} {_fmt(row['recall']):>5} "
                f"{_fmt(row['f1']):>5}")
        out("")
        columns = [*LABELS, ERROR]
        short = {label: label.replace("memory:", "m:")[:9] for label in columns}
        out("confusion (rows: gold, columns: predicted)")
        out(f"{'':24}" + "".join(f"{short[c]:>10}" for c in columns))
        for gold in LABELS:
            row = figures["confusion"][gold]
            out(f"{gold:24}" + "".join(f"{row.get(c, 0):>10}" for c in columns))
