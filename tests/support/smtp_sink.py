"""A real SMTP server (aiosmtpd) that keeps every mail it accepts as a file.

Usage: python smtp_sink.py PORT FOLDER [--login USER PASSWORD] [--tls starttls|tls CA_FILE]
With --login, clients must authenticate (PLAIN or LOGIN) before sending. With --tls, the
server has a certificate for 127.0.0.1 signed by a CA made on the spot, whose certificate
it writes to CA_FILE: `starttls` requires STARTTLS before login and mail, `tls` speaks TLS
from the first byte. Each accepted mail becomes FOLDER/<n>.eml, the envelope recipients in
an `X-Envelope-To` first line. Prints "ready" once it listens on 127.0.0.1:PORT.
"""

import argparse
import datetime
import ipaddress
import itertools
import logging
import os
import signal
import ssl
import tempfile
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


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


def server_context(ca_file: str) -> ssl.SSLContext:
    """A CA and a server certificate for 127.0.0.1 it signed; the CA's goes to ca_file."""
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def certificate(subject, issuer, public_key, signing_key, is_ca):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        )
        if is_ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            ).add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Expense-Wise test CA")])
    ca = certificate(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    leaf = certificate(leaf_name, ca_name, key.public_key(), ca_key, False)
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with tempfile.TemporaryDirectory() as folder:
        chain, key_file = os.path.join(folder, "chain.pem"), os.path.join(folder, "key.pem")
        with open(chain, "wb") as f:
            f.write(leaf.public_bytes(serialization.Encoding.PEM))
        with open(key_file, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key_file)
    return context


def main() -> None:
    # A login over a connection that began with TLS is what the tests want; aiosmtpd
    # warns about it because it cannot tell.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("folder")
    parser.add_argument("--login", nargs=2, metavar=("USER", "PASSWORD"))
    parser.add_argument("--tls", nargs=2, metavar=("MODE", "CA_FILE"))
    args = parser.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    options = {}
    if args.login:
        user, password = args.login[0].encode(), args.login[1].encode()

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
            return AuthResult(success=ok)

        # aiosmtpd cannot tell a connection that began with TLS from a plain one, so it
        # is told to require TLS for the login only where STARTTLS brings it.
        starttls = args.tls is not None and args.tls[0] == "starttls"
        options.update(authenticator=authenticate, auth_required=True, auth_require_tls=starttls)
    if args.tls:
        mode, ca_file = args.tls
        context = server_context(ca_file)
        if mode == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif mode == "tls":
            options.update(ssl_context=context)
        else:
            parser.error(f"--tls: '{mode}' is not starttls or tls")
    controller = Controller(Sink(args.folder), hostname="127.0.0.1", port=args.port, **options)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
