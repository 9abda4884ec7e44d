"""Password rules beyond Django's own validators (``AUTH_PASSWORD_VALIDATORS`` names them)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

SHORTEST_NAME_CHECKED = 3


class UserNameInPasswordValidator:
    """Refuses a password that contains the user name (``new1new1new1`` for ``new1``).

    Django's ``UserAttributeSimilarityValidator`` compares the whole password with the name,
    so a name repeated or padded to the minimum length passes it; someone who knows the user
    name guesses such a password first. Names shorter than three characters are not checked
    (they would refuse too many good passwords).
    """

    def validate(self, password: str, user: Any = None) -> None:
        username = str(getattr(user, "username", "") or "").casefold()
        if len(username) >= SHORTEST_NAME_CHECKED and username in password.casefold():
            raise ValidationError(
                _("The password cannot contain the user name."), code="password_has_username"
            )

    def get_help_text(self) -> str:
        return _("Your password cannot contain your user name.")
