"""payments_create: a Stripe PaymentIntent, with a refund as its compensation.

Contract (stripe.com/docs/api): ``POST /v1/payment_intents`` (form-encoded:
``amount`` in minor units, lowercase ``currency``, ``confirm``,
``payment_method``, ``customer``, ``description``, ``metadata[…]``), with
``Authorization: Bearer <secret key>`` and an ``Idempotency-Key`` header →
200 and the PaymentIntent (``id`` ``pi_…``, ``status``). A card decline is
402 with ``error.type = card_error``. ``POST /v1/refunds`` with
``payment_intent`` → the Refund (``re_…``).

Every payment and refund is written to the transaction log
(``PaymentTransaction``) with amount, currency, purpose, vendor, approver and
time. Budgets and approval are enforced by the invocation pipeline before
this runs (financial tools always need an approval).
"""

from __future__ import annotations

from typing import Any

from tools.context import ToolContext
from tools.errors import ToolFailed, ToolRefused
from tools.integrations.base import base_url, call
from tools.registry import Tool
from tools.types import Money, SideEffect

SUCCEEDED = "succeeded"


def _headers(ctx: ToolContext, key: str) -> dict[str, str]:
    secret = ctx.credential("stripe")["secret_key"]
    return {"Authorization": f"Bearer {secret}", "Idempotency-Key": key, "Stripe-Version": "2024-06-20"}


def _idempotency_key(ctx: ToolContext, suffix: str = "") -> str:
    base = ctx.idempotency_key or f"call-{ctx.tool_call_id}"
    return f"staffer-{ctx.organization.pk}-{base}{suffix}"[:255]


def _log(ctx: ToolContext, *, kind: str, amount: int, currency: str, purpose: str, vendor: str, reference: str,
         status: str) -> None:
    from tools.models import PaymentTransaction

    approver = ctx.approval.decided_by if ctx.approval is not None else None
    PaymentTransaction.objects.for_org(ctx.organization).create(
        organization=ctx.organization,
        tool_call_id=ctx.tool_call_id,
        kind=kind,
        amount=amount,
        currency=currency.upper(),
        purpose=purpose[:500],
        vendor=vendor[:200],
        approver=approver,
        approver_label=approver.email if approver is not None else "",
        provider="stripe",
        provider_reference=reference,
        status=status,
    )


def payments_create(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    form = [
        ("amount", str(args["amount"])),
        ("currency", args["currency"].lower()),
        ("description", f"{args['purpose']} ({args['vendor']})"[:350]),
        ("metadata[purpose]", args["purpose"][:500]),
        ("metadata[vendor]", args["vendor"][:500]),
        ("metadata[organization]", str(ctx.organization.pk)),
        ("metadata[tool_call]", str(ctx.tool_call_id)),
    ]
    if args.get("customer"):
        form.append(("customer", args["customer"]))
    if args.get("payment_method"):
        form += [("payment_method", args["payment_method"]), ("confirm", "true")]
    intent = call(ctx, "stripe", "POST", f"{base_url('stripe')}/v1/payment_intents",
                  headers=_headers(ctx, _idempotency_key(ctx)), form=form).json()
    assert isinstance(intent, dict)
    status = str(intent.get("status", ""))
    _log(ctx, kind="payment", amount=int(intent.get("amount", args["amount"])), currency=args["currency"],
         purpose=args["purpose"], vendor=args["vendor"], reference=str(intent["id"]), status=status)
    if status in ("canceled", "requires_payment_method"):
        raise ToolRefused(f"the payment was not completed (Stripe status {status})", code="payment_not_completed")
    return {"payment_intent": intent["id"], "status": status, "amount": args["amount"],
            "currency": args["currency"].lower(), "vendor": args["vendor"]}


def payments_refund(ctx: ToolContext, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    refund = call(ctx, "stripe", "POST", f"{base_url('stripe')}/v1/refunds",
                  headers=_headers(ctx, _idempotency_key(ctx, f"-refund-{result['payment_intent']}")),
                  form=[("payment_intent", result["payment_intent"])]).json()
    assert isinstance(refund, dict)
    if refund.get("status") not in (SUCCEEDED, "pending"):
        raise ToolFailed(f"the refund was not accepted (status {refund.get('status')})", code="refund_failed")
    _log(ctx, kind="refund", amount=int(refund.get("amount", result["amount"])), currency=result["currency"],
         purpose=f"refund of {result['payment_intent']}", vendor=result.get("vendor", ""),
         reference=str(refund["id"]), status=str(refund["status"]))
    return {"refund": refund["id"], "status": refund["status"]}


def _money(args: dict[str, Any]) -> Money:
    return Money(int(args["amount"]), str(args["currency"]))


PAYMENTS_CREATE = Tool(
    name="payments_create",
    title="Make a payment",
    description=(
        "Charge a payment through Stripe (amount in cents). Always needs an approval by someone other than the "
        "requester, and must fit the organization's payment budget."
    ),
    parameters={
        "type": "object",
        "properties": {
            "amount": {"type": "integer", "minimum": 50, "maximum": 99_999_999},
            "currency": {"type": "string", "pattern": "^[a-zA-Z]{3}$"},
            "purpose": {"type": "string", "minLength": 3, "maxLength": 500},
            "vendor": {"type": "string", "minLength": 1, "maxLength": 200},
            "customer": {"type": "string", "pattern": "^cus_[A-Za-z0-9]{1,60}$"},
            "payment_method": {"type": "string", "pattern": "^pm_[A-Za-z0-9_]{1,60}$"},
        },
        "required": ["amount", "currency", "purpose", "vendor"],
        "additionalProperties": False,
    },
    handler=payments_create,
    compensation=payments_refund,
    side_effect=SideEffect.FINANCIAL,
    amount=_money,
    provider="stripe",
    timeout=45,
)
