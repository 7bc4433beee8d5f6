"""A real SMTP server (aiosmtpd) that keeps every mail it accepts as a file.

Usage: python smtp_sink.py PORT FOLDER [USER PASSWORD]
With USER and PASSWORD, clients must authenticate (PLAIN or LOGIN) before sending.
Each accepted mail becomes FOLDER/<n>.eml, the envelope recipients in an
`X-Envelope-To` first line. Prints "ready" once it listens on 127.0.0.1:PORT.
"""

import itertools
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.counter = itertools.count()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            name = os.path.join(self.folder, f"{os.getpid()}-{next(self.counter)}.eml")
        partial = name + ".partial"
        with open(partial, "wb") as f:
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content)
        os.rename(partial, name)
        return "250 OK"


def main() -> None:
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    options = {}
    if len(sys.argv) == 5:
        user, password = sys.argv[3].encode(), sys.argv[4].encode()

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
            return AuthResult(success=ok)

        options = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False}
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
