"""The realtime events in the OpenAPI schema, from the one declared list (realtime.events)."""

from typing import Any

from realtime.events import EVENTS, STREAM_PATHS


def add_realtime_events(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the events under `info.x-websocket-events`, and
    listed in the description that /api/docs/ shows."""
    events = [
        {
            "type": event.name,
            "stream": STREAM_PATHS[event.stream],
            "fields": list(event.fields),
            "description": event.description,
        }
        for event in EVENTS.values()
    ]
    lines = [
        f"- `{e['type']}` on `{e['stream']}`: "
        + ", ".join(f"`{field}`" for field in e["fields"])
        + f". {e['description']}"
        for e in events
    ]
    info = result.setdefault("info", {})
    info["description"] = (
        info.get("description", "")
        + "\n\nWebSocket events, as frames `{type, data, ts, id}`:\n\n"
        + "\n".join(lines)
    )
    info["x-websocket-events"] = events
    return result
