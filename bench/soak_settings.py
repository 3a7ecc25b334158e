"""Settings of the soak's servers: development with DEBUG off, and the real rate limits.

The soak's users each come from a loopback address of their own, so the per-IP limits see
thousands of clients, as they would in production, instead of one load generator.
"""

from config.settings.development import *  # noqa: F403

DEBUG = False
