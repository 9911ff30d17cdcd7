"""Secrets Manager's forced-deletion window.

On AWS, DeleteSecret with ForceDeleteWithoutRecovery answers at once but completes
asynchronously: until it has, CreateSecret with the same name fails with
InvalidRequestException ("You can't create this secret because a secret with this name is
already scheduled for deletion."). LocalStack deletes at once. This module wraps LocalStack's
Secrets Manager provider so that, for `delay` seconds after such a delete, the name stays taken.

The delay is 0 unless set: LOCAL_RDS_SECRET_DELETION_DELAY_SECS for every account, or per
account (and optionally region) through POST /_local_rds/secrets-deletion-delay.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time

LOG = logging.getLogger(__name__)

SCHEDULED_MESSAGE = (
    "You can't create this secret because a secret with this name is already scheduled for deletion."
)


class DeletionDelays:
    def __init__(self):
        self._lock = threading.Lock()
        try:
            self.default = float(os.environ.get("LOCAL_RDS_SECRET_DELETION_DELAY_SECS", "0"))
        except ValueError:
            self.default = 0.0
        self._per_account: dict[tuple[str, str | None], float] = {}
        # (account, region, name) -> monotonic time the forced deletion completes
        self._pending: dict[tuple[str, str, str], float] = {}

    def set(self, account: str, seconds: float, region: str | None = None) -> None:
        with self._lock:
            self._per_account[(account, region)] = seconds

    def delay_for(self, account: str, region: str) -> float:
        with self._lock:
            for key in ((account, region), (account, None)):
                if key in self._per_account:
                    return self._per_account[key]
        return self.default

    def view(self) -> dict:
        now = time.monotonic()
        with self._lock:
            return {
                "default_seconds": self.default,
                "accounts": [
                    {"account": a, "region": r, "seconds": s} for (a, r), s in self._per_account.items()
                ],
                "pending": [
                    {"account": a, "region": r, "name": n, "remaining_seconds": round(t - now, 3)}
                    for (a, r, n), t in self._pending.items()
                    if t > now
                ],
            }

    def scheduled(self, account: str, region: str, name: str, delay: float) -> None:
        if delay <= 0:
            return
        with self._lock:
            self._pending[(account, region, name)] = time.monotonic() + delay

    def blocked(self, account: str, region: str, name: str) -> bool:
        now = time.monotonic()
        with self._lock:
            until = self._pending.get((account, region, name))
            if until is None:
                return False
            if now >= until:
                del self._pending[(account, region, name)]
                return False
            return True


DELAYS = DeletionDelays()
_PATCHED = False


def patch_secretsmanager() -> None:
    """Wraps create_secret/delete_secret of LocalStack's provider class (before it is loaded)."""
    global _PATCHED
    if _PATCHED:
        return
    from localstack.aws.api.secretsmanager import InvalidRequestException
    from localstack.services.secretsmanager.provider import SecretsmanagerProvider

    original_create = SecretsmanagerProvider.create_secret
    original_delete = SecretsmanagerProvider.delete_secret

    @functools.wraps(original_create)
    def create_secret(self, context, request):
        name = request.get("Name")
        if name and DELAYS.blocked(context.account_id, context.region, name):
            raise InvalidRequestException(SCHEDULED_MESSAGE)
        return original_create(self, context, request)

    @functools.wraps(original_delete)
    def delete_secret(self, context, request):
        response = original_delete(self, context, request)
        if request.get("ForceDeleteWithoutRecovery"):
            delay = DELAYS.delay_for(context.account_id, context.region)
            name = response.get("Name") or request.get("SecretId")
            DELAYS.scheduled(context.account_id, context.region, name, delay)
        return response

    SecretsmanagerProvider.create_secret = create_secret
    SecretsmanagerProvider.delete_secret = delete_secret
    _PATCHED = True
    LOG.info("local RDS: Secrets Manager forced deletions complete after a configurable delay")
