"""Local stand-ins for Slack, GitHub, BambooHR and Stripe that check requests against each provider's contract."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs

from .servers import StubServer

SLACK_PATH = "/services/T000/B000/XXXXSECRETXXXX"
GITHUB_TOKEN = "ghp_testtoken0123456789abcdef"
BAMBOO_KEY = "bamboo-api-key-0123456789"
STRIPE_KEY = "sk_test_0123456789abcdefghij"


class Providers:
    """One stub server answering as all four providers (each under its own path prefix)."""

    def __init__(self) -> None:
        self.issues: dict[int, dict] = {}
        self.comments: dict[int, dict] = {}
        self.employees: dict[int, dict] = {}
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.slack_messages: list[dict] = []
        self.stripe_idempotency: dict[str, tuple[int, dict]] = {}
        self.fail_next: dict[str, tuple[int, object]] = {}
        self.server = StubServer({"*": self.route})
        self.base = self.server.base_url

    def close(self) -> None:
        self.server.close()

    @property
    def requests(self):
        return self.server.requests

    def route(self, r):
        path = r["path"]
        for prefix, handler in (("/slack", self.slack), ("/github", self.github), ("/bamboo", self.bamboo),
                                ("/stripe", self.stripe)):
            if path.startswith(prefix):
                forced = self.fail_next.pop(prefix.strip("/"), None)
                if forced:
                    return forced[0], {}, forced[1]
                return handler(r, path[len(prefix):])
        return 404, {}, "no such provider"

    # --- Slack incoming webhook ---------------------------------------------------------------
    def slack(self, r, path):
        if r["method"] != "POST" or path != SLACK_PATH:
            return 404, {"Content-Type": "text/plain"}, "no_service"
        if not r["headers"].get("content-type", "").startswith("application/json"):
            return 400, {"Content-Type": "text/plain"}, "invalid_payload"
        try:
            body = json.loads(r["body"])
        except ValueError:
            return 400, {"Content-Type": "text/plain"}, "invalid_payload"
        if not body.get("text") and not body.get("blocks"):
            return 400, {"Content-Type": "text/plain"}, "no_text"
        self.slack_messages.append(body)
        return 200, {"Content-Type": "text/html"}, "ok"

    # --- GitHub REST ----------------------------------------------------------------------------
    def github(self, r, path):
        h = r["headers"]
        if h.get("authorization") != f"Bearer {GITHUB_TOKEN}":
            return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        if h.get("accept") != "application/vnd.github+json" or not h.get("user-agent"):
            return 400, {}, {"message": "missing Accept or User-Agent"}
        issue = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues", path)
        if issue and r["method"] == "POST":
            body = json.loads(r["body"] or b"{}")
            if not body.get("title"):
                return 422, {}, {"message": "Validation Failed",
                                 "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}]}
            number = len(self.issues) + 1
            self.issues[number] = {"number": number, "title": body["title"], "body": body.get("body"),
                                   "labels": body.get("labels", []), "state": "open", "repo": issue.groups()}
            url = f"https://github.com/{issue.group(1)}/{issue.group(2)}/issues/{number}"
            return 201, {}, {"id": 1000 + number, "number": number, "html_url": url, "state": "open"}
        one = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)", path)
        if one and r["method"] == "PATCH":
            number = int(one.group(3))
            if number not in self.issues:
                return 404, {}, {"message": "Not Found"}
            body = json.loads(r["body"])
            self.issues[number]["state"] = body.get("state", "open")
            return 200, {}, {"number": number, "state": self.issues[number]["state"]}
        comments = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", path)
        if comments and r["method"] == "POST":
            if int(comments.group(3)) not in self.issues:
                return 404, {}, {"message": "Not Found"}
            comment_id = 5000 + len(self.comments) + 1
            self.comments[comment_id] = {"body": json.loads(r["body"])["body"], "issue": int(comments.group(3))}
            return 201, {}, {"id": comment_id, "html_url": f"https://github.com/x/y/issues/1#c{comment_id}"}
        delete = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)", path)
        if delete and r["method"] == "DELETE":
            if self.comments.pop(int(delete.group(3)), None) is None:
                return 404, {}, {"message": "Not Found"}
            return 204, {}, b""
        return 404, {}, {"message": "Not Found"}

    # --- BambooHR ---------------------------------------------------------------------------------
    def bamboo(self, r, path):
        auth = r["headers"].get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{BAMBOO_KEY}:x".encode()).decode()
        if auth != expected:
            return 401, {}, ""
        create = re.fullmatch(r"/api/gateway\.php/([^/]+)/v1/employees/", path)
        if create and r["method"] == "POST":
            body = json.loads(r["body"] or b"{}")
            if not body.get("firstName") or not body.get("lastName"):
                return 400, {"X-BambooHR-Error-Message": "firstName and lastName are required"}, ""
            employee_id = 100 + len(self.employees) + 1
            self.employees[employee_id] = {**body, "status": "Active"}
            location = f"https://api.bamboohr.com/api/gateway.php/{create.group(1)}/v1/employees/{employee_id}"
            return 201, {"Location": location}, ""
        update = re.fullmatch(r"/api/gateway\.php/([^/]+)/v1/employees/(\d+)/", path)
        if update and r["method"] == "POST":
            employee_id = int(update.group(2))
            if employee_id not in self.employees:
                return 404, {}, ""
            self.employees[employee_id].update(json.loads(r["body"]))
            return 200, {}, ""
        return 404, {}, ""

    # --- Stripe -------------------------------------------------------------------------------------
    def stripe(self, r, path):
        if r["headers"].get("authorization") != f"Bearer {STRIPE_KEY}":
            return 401, {}, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
        if not r["headers"].get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {}, {"error": {"type": "invalid_request_error", "message": "form encoding expected"}}
        key = r["headers"].get("idempotency-key")
        if key and key in self.stripe_idempotency:
            status, body = self.stripe_idempotency[key]
            return status, {"Idempotent-Replayed": "true"}, body
        form = {k: v[0] for k, v in parse_qs(r["body"].decode()).items()}
        if path == "/v1/payment_intents" and r["method"] == "POST":
            status, body = self._intent(form)
        elif path == "/v1/refunds" and r["method"] == "POST":
            status, body = self._refund(form)
        else:
            status, body = 404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}
        if key:
            self.stripe_idempotency[key] = (status, body)
        return status, {}, body

    def _intent(self, form):
        if not form.get("amount", "").isdigit() or not re.fullmatch(r"[a-z]{3}", form.get("currency", "")):
            return 400, {"error": {"type": "invalid_request_error", "param": "amount",
                                   "message": "Missing required param: amount."}}
        if form.get("payment_method") == "pm_card_chargeDeclined":
            return 402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                                   "message": "Your card was declined."}}
        intent_id = f"pi_{len(self.intents) + 1:06d}"
        confirmed = form.get("confirm") == "true"
        intent = {"id": intent_id, "object": "payment_intent", "amount": int(form["amount"]),
                  "currency": form["currency"], "description": form.get("description"),
                  "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
                  "status": "succeeded" if confirmed else "requires_confirmation"}
        self.intents[intent_id] = intent
        return 200, intent

    def _refund(self, form):
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return 400, {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}}
        if intent.get("refunded"):
            return 400, {"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                                   "message": "Charge has already been refunded."}}
        intent["refunded"] = True
        refund_id = f"re_{len(self.refunds) + 1:06d}"
        self.refunds[refund_id] = {"id": refund_id, "object": "refund", "amount": intent["amount"],
                                   "payment_intent": intent["id"], "status": "succeeded"}
        return 200, self.refunds[refund_id]
