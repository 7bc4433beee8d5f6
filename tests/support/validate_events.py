"""Validates events against schema/events with a JSON Schema validator that is not ours.

Usage: python validate_events.py SCHEMA_DIR < events.json
Reads a JSON array of {"aggregate_type", "event_type", "event_version", "payload"} and
prints {"schemas": [...], "used": [...], "failures": [...]}: every schema file, the
ones some event was checked against, and one line per event that has no schema or
does not match its schema.
"""

import json
import pathlib
import sys

from jsonschema import Draft202012Validator, FormatChecker


def main(schema_dir: str) -> None:
    validators = {}
    for path in sorted(pathlib.Path(schema_dir).glob("*/*.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        key = (schema["x-aggregate-type"], schema["x-event-type"], schema["x-event-version"])
        expected = f"{key[0]}/{key[1]}-{key[2]}.json"
        if path.relative_to(schema_dir).as_posix() != expected:
            raise SystemExit(f"{path} describes {key}; it should be named {expected}")
        validators[key] = Draft202012Validator(schema, format_checker=FormatChecker())
    used = set()
    failures = []
    for event in json.load(sys.stdin):
        key = (event["aggregate_type"], event["event_type"], event["event_version"])
        validator = validators.get(key)
        if validator is None:
            failures.append(f"no schema for {key}")
            continue
        used.add(key)
        for error in validator.iter_errors(event["payload"]):
            path = "/".join(str(p) for p in error.absolute_path)
            failures.append(f"{key} at /{path}: {error.message}")
    print(
        json.dumps(
            {
                "schemas": sorted("/".join(k) for k in validators),
                "used": sorted("/".join(k) for k in used),
                "failures": failures,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
