from gamification.tests.conftest import events  # noqa: F401
