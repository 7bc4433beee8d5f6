"""An auditor's verifier of the Expense-Wise audit log, written from docs/audit-log.md
alone: it shares no code with the product, and needs nothing of it but the files a
bundle holds, or the JSON of a proof fetched over HTTP, and the log's public key.

    verify_audit.py bundle DIR [--public-key FILE]      (FILE: keys, one per line)
    verify_audit.py inclusion PROOF.json --public-key FILE
    verify_audit.py consistency PROOF.json --public-key FILE

`bundle` prints the report as JSON (the shape `expensewise audit verify --json` prints)
and exits 0 when clean, 2 when tampered. The proof commands print "ok" and exit 0, or
say why not and exit 2.
"""

import base64
import hashlib
import json
import math
import os
import sys
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# --- canonical JSON (RFC 8785) -------------------------------------------------------


def canonical(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return canonical_number(float(value)) if abs(value) >= 2**53 else str(value)
    if isinstance(value, float):
        return canonical_number(value)
    if isinstance(value, str):
        return canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        members = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(canonical_string(k) + ":" + canonical(v) for k, v in members) + "}"
    raise TypeError(f"not JSON: {value!r}")


def canonical_string(text):
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical_number(x):
    """A double as ECMAScript's Number.prototype.toString prints it."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError("JSON has no NaN or infinity")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + canonical_number(-x)
    # The shortest digits that read back as x, and the decimal exponent.
    digits, exponent = shortest_digits(x)
    k = len(digits)
    n = exponent + k  # x = 0.digits × 10^n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{sign}{abs(e)}"


def shortest_digits(x):
    # Python's repr is the shortest round-tripping representation.
    text = repr(x)
    if "e" in text or "E" in text:
        mantissa, exp = text.lower().split("e")
        exp = int(exp)
    else:
        mantissa, exp = text, 0
    if "." in mantissa:
        whole, frac = mantissa.split(".")
    else:
        whole, frac = mantissa, ""
    if frac == "0":
        frac = ""
    digits = (whole + frac).lstrip("0")
    exp -= len(frac)
    stripped = digits.rstrip("0")
    exp += len(digits) - len(stripped)
    return stripped or "0", exp


# --- the tree (RFC 9162 §2.1) ---------------------------------------------------------


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(leaf_bytes):
    return sha256(b"\x00" + leaf_bytes)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def largest_power_of_two_below(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_root(hashes):
    """MTH over leaf hashes, iteratively: a stack of perfect subtrees."""
    if not hashes:
        return sha256(b"")
    stack = []  # (size, hash)
    for h in hashes:
        size, node = 1, h
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            node = node_hash(left, node)
            size += left_size
        stack.append((size, node))
    size, node = stack.pop()
    while stack:
        _, left = stack.pop()
        node = node_hash(left, node)
    return node


def verify_inclusion(index, size, leaf, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or first > second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# --- signed checkpoints (C2SP signed-note, tlog-checkpoint) ---------------------------


class Key:
    def __init__(self, text):
        name, key_id, key = text.strip().split("+", 2)
        raw = base64.b64decode(key, validate=True)
        if raw[0] != 1 or len(raw) != 33:
            raise ValueError("not an Ed25519 verifier key")
        self.name = name
        self.key_id = bytes.fromhex(key_id)
        self.key = Ed25519PublicKey.from_public_bytes(raw[1:])
        expected = sha256(name.encode() + b"\n\x01" + raw[1:])[:4]
        if expected != self.key_id:
            raise ValueError("the key id does not match the key")


def keys_of(text):
    """The keys of a key file: one per line."""
    return [Key(line) for line in text.splitlines() if line.strip()]


def open_checkpoint(note, keys):
    """(size, root) of a checkpoint one of `keys` signed for its own origin, else None."""
    for key in keys:
        opened = open_with(note, key)
        if opened is not None:
            return opened
    return None


def open_with(note, key):
    """(size, root) of a checkpoint `key` signed for its own origin, else None."""
    if "\n\n" not in note:
        return None
    split = note.rindex("\n\n")
    text, signatures = note[: split + 1], note[split + 2 :]
    good = False
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            return None
        name, _, blob = line[2:].partition(" ")
        try:
            blob = base64.b64decode(blob, validate=True)
        except ValueError:
            return None
        if name != key.name or blob[:4] != key.key_id:
            continue
        try:
            key.key.verify(blob[4:], text.encode())
        except InvalidSignature:
            return None
        good = True
    if not good:
        return None
    lines = text.split("\n")
    if lines[0] != key.name:
        return None
    return int(lines[1]), base64.b64decode(lines[2], validate=True)


def claimed_size(note):
    try:
        return int(note.split("\n")[1])
    except (IndexError, ValueError):
        return None


# --- bundles ---------------------------------------------------------------------------

KIND_ORDER = [
    "bad-signature",
    "tree-mismatch",
    "changed",
    "missing",
    "inserted",
    "reordered",
    "truncated",
    "receipt-changed",
    "receipt-missing",
]


def leaf_of(event):
    leaf = {
        k: event[k]
        for k in (
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "event_type",
            "event_version",
            "payload",
            "metadata",
            "recorded_at",
        )
    }
    return leaf_hash(canonical(leaf).encode("utf-8"))


def divergence(kind, leaf_index=None, event_id=None, tree_size=None):
    return {"kind": kind, "leaf_index": leaf_index, "event_id": event_id, "tree_size": tree_size}


def order_key(d):
    return (
        d["tree_size"] is None,
        d["tree_size"] or 0,
        d["leaf_index"] if d["leaf_index"] is not None else 2**64,
        KIND_ORDER.index(d["kind"]),
        uuid.UUID(d["event_id"]).bytes if d["event_id"] else b"",
    )


def verify_bundle(directory, keys):
    def path(name):
        return os.path.join(directory, name)

    notes = [json.loads(line)["note"] for line in open(path("checkpoints.ndjson"), encoding="utf-8")]
    leaves = []  # (hash, event id or None)
    for line in open(path("leaves.txt"), encoding="utf-8"):
        h, ident = line.rstrip("\n").split(" ")
        leaves.append((bytes.fromhex(h), None if ident == "-" else ident))
    found = []
    signed = []
    for note in notes:
        opened = open_checkpoint(note, keys)
        if opened is None:
            found.append(divergence("bad-signature", tree_size=claimed_size(note)))
        else:
            signed.append(opened)
    signed_size = max((s for s, _ in signed), default=0)
    for size, root in signed:
        if 0 < size <= len(leaves) and tree_root([h for h, _ in leaves[:size]]) != root:
            found.append(divergence("tree-mismatch", tree_size=size))

    seen = [False] * len(leaves)
    order = []  # (leaf index, event id) of recorded events, in the store's order
    unrecorded = []  # (recorded events before it, event id)
    uploads, ended = [], set()
    count = 0
    for line in open(path("events.ndjson"), encoding="utf-8"):
        event = json.loads(line)
        count += 1
        fields = event["payload"].get(event["event_type"], {})
        if event["aggregate_type"] == "receipt" and event["event_type"] == "ReceiptUploaded":
            uploads.append((event, fields))
        if event["event_type"] == "RetentionEnded" and fields.get("aggregate_type") == "receipt":
            ended.add(fields.get("aggregate_id"))
        index = event["leaf_index"]
        if index is None or index >= len(leaves) or seen[index]:
            unrecorded.append((len(order), event["event_id"]))
            continue
        seen[index] = True
        if leaves[index][0] != leaf_of(event):
            found.append(divergence("changed", index, event["event_id"]))
        order.append((index, event["event_id"]))

    present = [i for i in range(len(leaves)) if seen[i]]
    for rank, (index, event_id) in enumerate(order):
        if present[rank] != index:
            found.append(divergence("reordered", index, event_id))
    pending = 0
    for before, event_id in unrecorded:
        if before < len(present):
            found.append(divergence("inserted", present[before], event_id))
        else:
            pending += 1
    last_present = present[-1] + 1 if present else 0
    tail = None
    for i in range(len(leaves)):
        if seen[i] or leaves[i][1] is None:
            continue
        if i < last_present:
            found.append(divergence("missing", i, leaves[i][1]))
        else:
            tail = (i, leaves[i][1])
            break
    if tail is None and len(leaves) < signed_size:
        tail = (len(leaves), None)
    if tail is not None:
        found.append(divergence("truncated", tail[0], tail[1]))

    receipts = path("receipts")
    if os.path.isdir(receipts):
        for event, fields in uploads:
            if event["aggregate_id"] in ended:
                continue
            file = os.path.join(receipts, event["aggregate_id"])
            if not os.path.exists(file):
                kind = "receipt-missing"
            elif hashlib.sha256(open(file, "rb").read()).hexdigest() != fields.get("sha256"):
                kind = "receipt-changed"
            else:
                continue
            found.append(divergence(kind, event["leaf_index"], event["event_id"]))

    found.sort(key=order_key)
    return {
        "verdict": "tampered" if found else "clean",
        "signed_size": signed_size,
        "checkpoints": len(notes),
        "leaves": len(leaves),
        "events": count,
        "pending": pending,
        "divergences": found,
    }


# --- proofs fetched over HTTP -----------------------------------------------------------


def check_inclusion(proof, keys):
    opened = open_checkpoint(proof["checkpoint"], keys)
    if opened is None:
        return "the checkpoint's signature does not verify"
    size, root = opened
    if size != proof["tree_size"]:
        return "the checkpoint is of another tree"
    leaf = leaf_of(proof["leaf"])
    if base64.b64decode(proof["leaf_hash"]) != leaf:
        return "the event does not hash to the leaf"
    path = [base64.b64decode(p) for p in proof["proof"]]
    if not verify_inclusion(proof["leaf_index"], size, leaf, path, root):
        return "the inclusion proof does not lead to the signed root"
    return None


def check_consistency(proof, keys):
    old = open_checkpoint(proof["from_checkpoint"], keys)
    new = open_checkpoint(proof["to_checkpoint"], keys)
    if old is None or new is None:
        return "a checkpoint's signature does not verify"
    path = [base64.b64decode(p) for p in proof["proof"]]
    if not verify_consistency(old[0], new[0], old[1], new[1], path):
        return "the consistency proof does not verify"
    return None


def main(argv):
    command, target = argv[1], argv[2]
    key_file = argv[argv.index("--public-key") + 1] if "--public-key" in argv else None
    if command == "bundle":
        keys = keys_of(open(key_file or os.path.join(target, "public-key"), encoding="utf-8").read())
        report = verify_bundle(target, keys)
        print(json.dumps(report, indent=2))
        return 0 if report["verdict"] == "clean" else 2
    keys = keys_of(open(key_file, encoding="utf-8").read())
    proof = json.load(open(target, encoding="utf-8"))
    problem = (check_inclusion if command == "inclusion" else check_consistency)(proof, keys)
    print(problem or "ok")
    return 2 if problem else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
