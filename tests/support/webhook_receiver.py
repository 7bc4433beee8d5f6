"""A webhook receiver that is not ours: it verifies each message with the
`standardwebhooks` package (the Standard Webhooks reference library) and logs it.

    webhook_receiver.py --port P --secrets FILE --log FILE [--redirect-to URL]
                        [--check-base URL --check-token-file FILE]

FILE holds one `whsec_…` secret per line and is read again for every message, so a
test can add a rotated secret without restarting the receiver. Each message is verified
with each secret on its own; the log gets one JSON line per message: its headers, body,
which secrets verified it (by line number) and, when none did, the library's reason.
A verified message is answered 204, any other 400. With --redirect-to, nothing is
verified: every POST is answered 307 to that URL.

With --check-base, a verified ExpenseCreated message is followed at once by what an
integration does on receipt: it lists the organization's expenses (GET
/v1/expenses?limit=500 with the token in the file, no consistency token) and logs
whether the new expense is there (`visible`).
"""

import argparse
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secrets")
    parser.add_argument("--log")
    parser.add_argument("--redirect-to")
    parser.add_argument("--check-base")
    parser.add_argument("--check-token-file")
    args = parser.parse_args()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if args.redirect_to:
                self.send_response(307)
                self.send_header("location", args.redirect_to)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            with open(args.secrets) as f:
                secrets = [line.strip() for line in f if line.strip()]
            verified_by = []
            reason = None
            for index, secret in enumerate(secrets):
                try:
                    Webhook(secret).verify(body, headers)
                    verified_by.append(index)
                except WebhookVerificationError as e:
                    reason = str(e)
            visible = None
            if verified_by and args.check_base:
                message = json.loads(body)
                if message["type"] == "ExpenseCreated":
                    with open(args.check_token_file) as f:
                        token = f.read().strip()
                    request = urllib.request.Request(
                        args.check_base + "/v1/expenses?limit=500",
                        headers={"authorization": "Bearer " + token},
                    )
                    with urllib.request.urlopen(request) as answer:
                        listed = json.load(answer)
                    ids = {item["id"] for item in listed["items"]}
                    visible = message["data"]["aggregate_id"] in ids
            entry = {
                "headers": {k: v for k, v in headers.items() if k.startswith("webhook-")},
                "body": body.decode("utf-8", "replace"),
                "verified_by": verified_by,
                "reason": None if verified_by else reason,
                "visible": visible,
            }
            with lock, open(args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
            self.send_response(204 if verified_by else 400)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
