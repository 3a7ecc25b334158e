"""Who is connected: open sockets in this process."""

import threading

_lock = threading.Lock()
_open_sockets = 0


def socket_opened() -> None:
    global _open_sockets
    with _lock:
        _open_sockets += 1


def socket_closed() -> None:
    global _open_sockets
    with _lock:
        _open_sockets -= 1


def open_socket_count() -> int:
    """WebSockets open on this instance now."""
    return _open_sockets
