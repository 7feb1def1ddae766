"""The intent evaluation set and the intent_eval command (accuracy and confusion matrix against a real model)."""

from __future__ import annotations

import json
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from agents.management.commands import intent_eval
from agents.services.intents import Intent

DATASET = Path(__file__).with_name("intent_eval.jsonl")


def test_the_evaluation_set_has_200_varied_labelled_messages():
    """At least 200 distinct messages, every label (intents and memory commands) represented, clarifications with
    the question they answer."""
    items = intent_eval.load_items(DATASET)
    assert len(items) >= 200
    assert len({i["text"] for i in items}) == len(items)
    counts = Counter(i["label"] for i in items)
    assert set(counts) == set(intent_eval.LABELS)
    assert min(counts[label] for label in ("simple_action", "complex_task", "question", "clarification",
                                           "conversation")) >= 25
    assert all(i["context"] and i["context"][-1]["role"] == "assistant" for i in items if i["label"] == "clarification")


def test_scores_count_accuracy_per_label_and_the_confusion_matrix():
    """Two of three right: accuracy 2/3; the miss lands in its row and column."""
    figures = intent_eval.scores([("question", "question"), ("question", "conversation"),
                                  ("complex_task", "complex_task")])
    assert figures["accuracy"] == pytest.approx(2 / 3)
    assert figures["confusion"]["question"] == {"question": 1, "conversation": 1}
    assert figures["per_label"]["question"]["recall"] == 0.5
    assert figures["per_label"]["conversation"]["precision"] == 0.0


@pytest.mark.django_db
def test_the_scripted_model_cannot_measure_accuracy_and_the_command_says_so(tenant_a, settings):
    """With no model configured the scripted model answers: the command stops and explains why."""
    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_TIERS = {}
    with pytest.raises(CommandError, match=r"scripted model.*cannot measure intent accuracy"):
        call_command("intent_eval", "--org", tenant_a.slug, "--limit", "3", stdout=StringIO())


@pytest.mark.django_db
def test_the_command_reports_accuracy_and_the_confusion_matrix(tenant_a, monkeypatch, tmp_path):
    """Against a model (faked here) that misreads every clarification as conversation: the accuracy, the per-label
    figures and the confusion matrix say exactly that; --json keeps every answer."""
    def fake(*, organization, user, text, context=None, **kwargs):
        item = next(i for i in intent_eval.load_items(DATASET) if i["text"] == text)
        label = "conversation" if item["label"] == "clarification" else item["label"]
        intent, _, command = label.partition(":")
        return Intent(intent="memory_command" if command else intent, confidence=0.9, command=command)

    monkeypatch.setattr(intent_eval, "intent_parse", fake)
    out = StringIO()
    report = tmp_path / "eval.json"
    call_command("intent_eval", "--org", tenant_a.slug, "--json", str(report), stdout=out)
    items = intent_eval.load_items(DATASET)
    wrong = sum(1 for i in items if i["label"] == "clarification")
    text = out.getvalue()
    assert f"accuracy: {(len(items) - wrong) / len(items):.3f}" in text
    assert "confusion (rows: gold, columns: predicted)" in text
    saved = json.loads(report.read_text())
    assert saved["figures"]["confusion"]["clarification"] == {"conversation": wrong}
    assert saved["figures"]["per_label"]["clarification"]["recall"] == 0.0
    assert len(saved["answers"]) == len(items)


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "label", "scenario"), [
    ("Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana", "complex_task", "hr_onboarding"),
    ("Prepare the weekly report and send it to the team", "complex_task", "weekly_report"),
    ("Who is Maria's manager?", "question", "memory_question"),
    ("Schedule a meeting with Dana", "simple_action", "clarification_meeting"),
    ("Remember that our fiscal year starts in April", "memory:remember", "memory_remember"),
    ("Forget Maria's phone number", "memory:forget", "memory_forget"),
    ("What do you know about Globex?", "memory:about", "memory_about"),
    ("Show my data", "memory:show_my_data", "memory_show_my_data"),
    ("Clear my data", "memory:clear_my_data", "memory_clear_my_data"),
    ("Hello there!", "conversation", "fallback"),
])
def test_intent_parse_reads_the_demo_messages_through_the_gateway(tenant_a, settings, text, label, scenario):
    """Offline, each demo message parses (structured output, validated) to its intent, and the scenario that
    answered is kept so the rest of the work follows the same script."""
    from agents.services.intents import intent_parse

    settings.LLM_DEPLOYMENTS = {}
    settings.LLM_TIERS = {}
    intent = intent_parse(organization=tenant_a.organization, user=tenant_a.member, text=text)
    assert intent.label == label
    assert intent.scenario == scenario
    assert 0 <= intent.confidence <= 1
