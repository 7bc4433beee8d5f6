"""Schemathesis hooks for tests/e2e/contract.rs (loaded through SCHEMATHESIS_HOOKS).

Two things a generated request can get wrong that are not the API's to answer for:

- An Idempotency-Key names one request: sent again with another request, it is refused
  with 422, as draft-ietf-httpapi-idempotency-key-header asks. That rule cannot be said
  in a schema, and schemathesis reuses the few keys it generates across different
  requests. So each well-formed key gets a fresh suffix, as a real client's key would be
  fresh; malformed ones are sent as generated, so that their refusal is still checked.
  Reuse itself is tested in tests/e2e/expense_requests.rs.
- Schemathesis 4.32's coverage phase narrows header values to letters and digits; for an
  optional header whose pattern needs another character (a consistency token's `.`) it
  still sends its narrowed value ("0") in a case it calls valid. Such a value, which the
  header's own pattern refuses, is taken out of the valid case (the header is optional);
  negative cases keep every value they were given.
"""

import re
import uuid

import schemathesis

WELL_FORMED_KEY = re.compile(r"[!-~]{1,255}")


def _fresh_idempotency_keys(headers):
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        key = headers[name]
        if isinstance(key, str) and WELL_FORMED_KEY.fullmatch(key):
            headers[name] = f"{key[:200]}.{uuid.uuid4().hex}"


def _drop_values_the_pattern_refuses(case, headers):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    for parameter in case.operation.headers:
        pattern = parameter.definition.get("schema", {}).get("pattern")
        value = headers.get(parameter.name)
        if (
            not parameter.is_required
            and isinstance(pattern, str)
            and isinstance(value, str)
            and re.search(pattern, value) is None
        ):
            del headers[parameter.name]


@schemathesis.hook
def before_call(context, case, kwargs):
    if not case.headers:
        return
    _fresh_idempotency_keys(case.headers)
    _drop_values_the_pattern_refuses(case, case.headers)
