"""The storefront's `events`: an audit trail of back-office sign-ins.

authsvc already writes one `authsvc.audit` line per event; the storefront adds its own
line, on its own logger, for every sign-in of someone who can act in the back office.
"""

from __future__ import annotations

import logging

from authsvc.events import Events, SignInEvent
from authsvc.users.models import Role

audit = logging.getLogger("storefront.audit")
BACK_OFFICE = frozenset({Role.ADMIN, Role.STAFF, Role.DEVELOPER})


async def sign_in(event: SignInEvent) -> None:
    if event.user.role in BACK_OFFICE:
        audit.info(
            "back-office sign-in user=%s role=%s provider=%s",
            event.user.id,
            event.user.role.value,
            event.account.provider,
            extra={
                "fields": {
                    "event": "back-office-sign-in",
                    "user": event.user.id,
                    "role": event.user.role.value,
                    "provider": event.account.provider,
                }
            },
        )


EVENTS = Events(sign_in=sign_in)
