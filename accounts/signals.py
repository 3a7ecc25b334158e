"""Signals accounts sends for the apps above it to react to (connected in their ready())."""

from django.dispatch import Signal

# Sign-ins were revoked; sent after the commit. Arguments: `user_id`, and `user_session_ids`
# and `session_keys` (the revoked devices' UserSession ids and Django session keys), or
# `everywhere=True` when every sign-in of the user is revoked.
sign_ins_revoked = Signal()
