import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("rankly.startup")


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from accounts.signals import sign_ins_revoked
        from config.metrics import open_socket_counter_register
        from realtime.presence import open_socket_count
        from realtime.revocation import sign_ins_revoked_publish

        open_socket_counter_register(counter=open_socket_count)
        sign_ins_revoked.connect(sign_ins_revoked_publish, dispatch_uid="realtime.revocation")
        backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
        if backend.startswith("channels_redis."):
            logger.info("✅ Channels using Redis channel layer")
        else:
            logger.warning("⚠️ Channels using in-memory channel layer (single instance only)")
