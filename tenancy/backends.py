from typing import Any

from django.contrib.auth.backends import ModelBackend

from tenancy.models import User


class StaffBackend(ModelBackend):
    """Django's password backend, loading the user's tenant with the user on every request."""

    def get_user(self, user_id: Any) -> User | None:
        user = User.objects.select_related("tenant").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
