"""daphne, with oversized WebSocket messages refused by a close frame (1009), not a dropped link.

Takes daphne's command line: `python -m config.server [daphne options] config.asgi:application`.
"""

# Pinned: daphne==4.2.3, autobahn==26.10.2 (overrides Server.run; requirements.txt).
import sys

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import reactor


class RanklyServer(Server):
    def run(self) -> None:
        # daphne's WebSocket factory fails a message over its size limit by dropping the TCP
        # connection; with failByDrop off, autobahn sends the close code 1009 first.
        reactor.callWhenRunning(lambda: self.ws_factory.setProtocolOptions(failByDrop=False))
        super().run()  # type: ignore[no-untyped-call]  # daphne ships no annotations


class RanklyCommandLineInterface(CommandLineInterface):
    server_class = RanklyServer


if __name__ == "__main__":
    sys.exit(RanklyCommandLineInterface.entrypoint())  # type: ignore[no-untyped-call]
