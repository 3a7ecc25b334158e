"""The middleware order keeps a request in one worker thread instead of hopping back and forth."""

from django.conf import settings
from django.utils.module_loading import import_string


def test_no_async_capable_middleware_sits_below_a_sync_only_one():
    # Django runs an async-capable middleware below a sync-only one on the event loop, with
    # two thread hops per process_request/process_response, instead of inline in the thread.
    classes = [import_string(path) for path in settings.MIDDLEWARE]
    sync_only = [i for i, cls in enumerate(classes) if not getattr(cls, "async_capable", False)]

    below = classes[sync_only[-1] + 1 :] if sync_only else []

    assert [cls.__name__ for cls in below if getattr(cls, "async_capable", False)] == []
