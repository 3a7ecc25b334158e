import os


def default_settings_module() -> str:
    """The settings module for this process: production on a deployment, development elsewhere."""
    if os.environ.get("REPLIT_DEPLOYMENT") == "1":
        return "config.settings.production"
    return "config.settings.development"
