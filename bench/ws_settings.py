"""Settings for bench/ws_fanout.py: development settings with the channel layer it measures."""

import os

from config.redis import redis_db
from config.settings.development import *  # noqa: F403
from config.settings.development import CHANNEL_LAYERS, LOGGING, REDIS_URL

LAYER = os.environ.get("RANKLY_BENCH_LAYER", "pubsub")
if REDIS_URL and LAYER == "core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": f"rankly.{redis_db(REDIS_URL)}",
                "capacity": 1000,
                "expiry": 10,
                "group_expiry": 300,
            },
        }
    }
if os.environ.get("RANKLY_BENCH_REPLAY") == "off":
    REALTIME_REPLAY_SECONDS = 0
LOGGING["root"]["level"] = "WARNING"
