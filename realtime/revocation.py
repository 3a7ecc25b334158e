"""Revoked sign-ins close their open /ws/me/ sockets (4401) on every instance.

accounts sends `sign_ins_revoked` after the commit; this tells every instance's hub through
the channel layer, like an event, and each hub closes its matching sockets of the user.
"""

from typing import Any

from realtime.events import user_group
from realtime.hub import REVOKE_TYPE, message_publish


def sign_ins_revoked_publish(
    sender: Any,
    *,
    user_id: int,
    user_session_ids: list[int],
    session_keys: list[str],
    everywhere: bool,
    **kwargs: Any,
) -> None:
    message_publish(
        {
            "type": REVOKE_TYPE,
            "group": user_group(user_id),
            "event": REVOKE_TYPE,
            "user_session_ids": user_session_ids,
            "session_keys": session_keys,
            "everywhere": everywhere,
        }
    )
