"""A local OTLP/HTTP receiver for traces: keeps each export it is sent.

Usage: python otlp_receiver.py PORT FOLDER
Listens on 127.0.0.1:PORT; each POST to /v1/traces (OTLP/HTTP with JSON bodies) is
written to FOLDER/<n>.json and answered 200 with an empty export response.
"""

import itertools
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTER = itertools.count()


def main() -> None:
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/traces" or "json" not in self.headers.get("Content-Type", ""):
                self.send_response(415 if self.path == "/v1/traces" else 404)
                self.end_headers()
                return
            name = os.path.join(folder, f"{next(COUNTER)}.json")
            with open(name + ".partial", "wb") as f:
                f.write(body)
            os.rename(name + ".partial", name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
