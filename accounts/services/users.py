from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.errors import Conflict, InvalidInput
from accounts.models import User


def user_sign_up(*, email: str, password: str, full_name: str = "") -> User:
    email = email.strip().lower()
    if not email:
        raise InvalidInput("an email address is required", field="email")
    candidate = User(email=email, full_name=full_name.strip())
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from exc
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, full_name=full_name.strip())
    except IntegrityError as exc:
        raise Conflict("an account with this email already exists", field="email") from exc
