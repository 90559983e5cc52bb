"""The OpenAPI schema's error answers, added to every operation.

Every error is ``{"detail": "..."}`` (plus ``errors`` with the field messages of
a validation failure; see ``apis.exception_handler``). drf-spectacular documents
only the success answers; this post-processing hook (named in
SPECTACULAR_SETTINGS) adds the errors each operation can give, so a client, and
the property-based schema test, hold the API to what it really answers.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in a sentence."},
        "errors": {
            "type": "object",
            "additionalProperties": True,
            "description": "Per-field messages of a validation failure.",
        },
    },
    "required": ["detail"],
}

_EVERY_OPERATION = {
    "400": "Malformed body or parameters, or a value out of range; `detail` says "
    "what to change.",
    "401": "Not signed in, or the token is unknown (`WWW-Authenticate: Token`).",
    "403": "Signed in, but this role may not do this (or the CSRF token is missing).",
    "413": "The request body is larger than the site accepts.",
}
_WITH_PATH_PARAMETER = {"404": "No such object, or not one of yours."}
_WRITES = {
    "404": "An object the request names does not exist, or is not yours.",
    "409": "Conflicts with the current state (already graded, not handed to you, "
    "undo window passed, vote final, a job already running); `detail` says which.",
}
_TOKEN = {"429": "Too many failed sign-ins; wait `Retry-After` seconds."}


def _answer(text: str) -> dict:
    return {
        "description": text,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
        },
    }


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = (
        ERROR_SCHEMA
    )
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            errors = dict(_EVERY_OPERATION)
            if "{" in path:
                errors.update(_WITH_PATH_PARAMETER)
            if method in ("post", "put", "patch", "delete"):
                errors.update(_WRITES)
            if path.endswith("/auth/token/"):
                errors.update(_TOKEN)
            responses = operation.setdefault("responses", {})
            for code, text in errors.items():
                responses.setdefault(code, _answer(text))
    return result
