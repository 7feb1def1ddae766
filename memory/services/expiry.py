"""Auto-expiry: unused facts older than the organization's period are proposed for deletion, never deleted unasked.

The periodic sweep marks candidates and opens (or extends) one pending
:class:`~memory.models.ExpiryReview`. A person approves (the candidates still
unused are deleted) or dismisses it (they are kept, counted as just used).
A fact used since it was proposed is kept either way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.errors import InvalidInput, NotFound
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from memory.models import ExpiryReview, ExpiryReviewStatus, Fact, FactStatus
from memory.services.settings import memory_settings_get


def expiry_sweep(*, organization: Organization, now: datetime | None = None) -> ExpiryReview | None:
    """Propose the facts unused for ``auto_expiry_days``; returns the pending review (None: nothing to ask)."""
    now = now or timezone.now()
    current = memory_settings_get(organization=organization)
    if current.auto_expiry_days == 0:
        return None
    cutoff = now - timedelta(days=current.auto_expiry_days)
    with transaction.atomic():
        candidates = (
            Fact.objects.for_org(organization)
            .filter(expiry_review__isnull=True)
            .exclude(status=FactStatus.PENDING)
            .annotate(seen=Coalesce("last_used_at", "updated_at"))
            .filter(seen__lt=cutoff)
        )
        ids = list(candidates.values_list("pk", flat=True))
        review = ExpiryReview.objects.for_org(organization).select_for_update().filter(
            status=ExpiryReviewStatus.PENDING).first()
        if not ids:
            return review
        if review is None:
            review = ExpiryReview.objects.for_org(organization).create(organization=organization, cutoff=cutoff)
        else:
            review.cutoff = cutoff
        Fact.objects.for_org(organization).filter(pk__in=ids).update(expiry_review=review)
        review.fact_count = Fact.objects.for_org(organization).filter(expiry_review=review).count()
        review.save(update_fields=["cutoff", "fact_count"])
    return review


def expiry_review_decide(
    *, organization: Organization, review: ExpiryReview, approve: bool, actor: User | None, summarize: bool = False
) -> int:
    """Approve (delete the proposed facts not used since) or dismiss (keep them). Returns how many were deleted.

    ``summarize``: before deleting, keep one extractive summary fact per subject and category of the deleted facts.
    """
    if review.organization_id != organization.pk:
        raise NotFound("no such review")
    with transaction.atomic():
        locked = ExpiryReview.objects.for_org(organization).select_for_update().get(pk=review.pk)
        if locked.status != ExpiryReviewStatus.PENDING:
            raise InvalidInput("this review is already decided", field="status")
        proposed = Fact.objects.for_org(organization).filter(expiry_review=locked)
        deleted = 0
        if approve:
            stale = proposed.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=locked.created_at))
            deleted = stale.count()
            if summarize:
                summarize_facts(organization=organization, facts=list(stale.select_related("subject")), actor=actor)
            Fact.objects.for_org(organization).filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
            proposed.update(expiry_review=None)
        else:
            proposed.update(expiry_review=None, last_used_at=timezone.now())
        locked.status = ExpiryReviewStatus.APPROVED if approve else ExpiryReviewStatus.DISMISSED
        locked.decided_by = actor if actor is not None and actor.pk else None
        locked.decided_at = timezone.now()
        locked.save()
        audit_record(organization=organization, actor=actor, action="memory.expiry.decide", target=locked,
                     target_label=str(locked), after={"approved": approve, "deleted": deleted})
    return deleted


SUMMARY_PREFIX = "Summary of older facts"


def summarize_facts(*, organization: Organization, facts: list[Fact], actor: User | None) -> list[Fact]:
    """One extractive summary fact per subject and category: the facts' sentences, most confident first."""
    from memory import conf
    from memory.services.facts import FactInput, fact_remember

    groups: dict[tuple[int | None, str], list[Fact]] = {}
    for fact in facts:
        if fact.status == FactStatus.ACTIVE:
            groups.setdefault((fact.subject_id, fact.category), []).append(fact)
    summaries = []
    for (_subject_id, category), members in groups.items():
        members.sort(key=lambda f: (-f.confidence, f.created_at))
        about = f" about {members[0].subject.name}" if members[0].subject_id else ""
        text = f"{SUMMARY_PREFIX}{about} ({len(members)}): "
        sentences = []
        for fact in members:
            sentence = fact.text.strip().rstrip(".")
            if len(text) + len("; ".join([*sentences, sentence])) + 1 > conf.MAX_TEXT_CHARS:
                break
            sentences.append(sentence)
        result = fact_remember(
            organization=organization,
            candidate=FactInput(text=text + "; ".join(sentences) + ".", category=category,
                                subject=members[0].subject, confidence=min(f.confidence for f in members),
                                source_type="system"),
            actor=actor,
        )
        summaries.append(result.fact)
    return summaries
