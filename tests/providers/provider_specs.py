"""The providers' published OpenAPI specs (../shared/specs) as JSON Schemas, and one contract case
per HTTP provider: how to build it, where its spec says the request and responses are, and how
to read a request it sent back into the instance the spec describes.

$refs are inlined here (the request schemas have no cycles), then object schemas are closed
(additionalProperties: false) so a misspelt field fails validation instead of passing silently.
Where a spec is known to be behind the API, the difference is added explicitly and commented.
"""

from __future__ import annotations

import base64
import copy
import email
import email.policy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from runner.providers.http import HttpProvider
from runner.providers.mailgun import MailgunProvider
from runner.providers.postmark import PostmarkProvider
from runner.providers.resend import ResendProvider
from runner.providers.sendgrid import SendGridProvider

SPECS_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs"

# Credentials the cases use; tests assert none of them ever shows up in an error message.
SECRETS = {
    "postmark": "pm-SECRET-server-token-0001",
    "sendgrid": "SG.SECRET-sendgrid-key-0002",
    "mailgun": "key-SECRET-mailgun-0003",
    "resend": "re_SECRET_resend_key_0004",
}


def require_specs() -> Path:
    if not SPECS_DIR.is_dir():
        pytest.skip(f"provider OpenAPI specs not found at ../shared/specs beside the project root ({SPECS_DIR})")
    return SPECS_DIR


@cache
def load_spec(relative: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(require_specs() / relative, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)  # a safe loader (C or pure Python)


def pointer(document: Any, ref: str) -> Any:
    """Follow a local JSON pointer such as '#/components/schemas/Tag'."""
    assert ref.startswith("#/"), f"only local $refs are expected, got {ref}"
    node = document
    for token in ref[2:].split("/"):
        key: str | int = token.replace("~1", "/").replace("~0", "~")
        if key not in node and key.isdigit():  # YAML read keys such as 422 as integers
            key = int(key)
        node = node[key]
    return node


def inline(node: Any, document: Any, seen: tuple[str, ...] = ()) -> Any:
    """`node` with every $ref replaced by a copy of its target (a cycle becomes {} = anything)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                return {}
            return inline(pointer(document, ref), document, (*seen, ref))
        return {key: inline(value, document, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(value, document, seen) for value in node]
    return node


def closed(schema: Any) -> Any:
    """A copy in which every object schema listing `properties` rejects unlisted ones."""
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node and "patternProperties" not in node:
                node["additionalProperties"] = False
            for key in ("properties", "patternProperties"):
                for child in node.get(key, {}).values():
                    close(child)
            for key in ("items", "additionalProperties"):
                close(node.get(key))
            for key in ("oneOf", "anyOf"):
                for child in node.get(key, []):
                    close(child)

    close(schema)
    return schema


def openapi_examples(document: dict[str, Any], path: str, method: str = "post") -> Iterator[tuple[int, Any]]:
    """(status, JSON body) for every example response the spec gives for one operation."""
    for status, response in document["paths"][path][method]["responses"].items():
        response = inline(response, document)
        for media in response.get("content", {}).values():
            for example in media.get("examples", {}).values():
                if "value" in example:
                    yield int(status), example["value"]
            if "example" in media:
                yield int(status), media["example"]


def expected_for(status: int) -> str:
    """The shared classification rules (runner/providers/http.py) as the suite expects them."""
    if 200 <= status < 300:
        return "accepted"
    if status in (401, 403, 404, 405):
        return "unusable"  # ProviderError: credentials or endpoint are wrong
    if status in (408, 429) or status >= 500:
        return "retryable"
    return "permanent"


def spec_examples(spec_name: str, path: str) -> list[tuple[int, Any, str]]:
    return [(status, body, expected_for(status)) for status, body in openapi_examples(load_spec(spec_name), path)]


def openapi_response_schema(spec_name: str, path: str, status: int) -> dict[str, Any] | None:
    """The JSON schema an OpenAPI 3 spec gives for one POST response status, if any."""
    spec = load_spec(spec_name)
    response = inline(spec["paths"][path]["post"]["responses"].get(str(status), {}), spec)
    return response.get("content", {}).get("application/json", {}).get("schema")


def form_fields(request: httpx.Request) -> list[tuple[str, str]]:
    """The (name, value) fields of a multipart/form-data request, in order."""
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data"), content_type
    raw = b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + request.read()
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    fields = []
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        fields.append((name, part.get_payload(decode=True).decode("utf-8")))
    return fields


@dataclass(frozen=True)
class HttpCase:
    """How the contract suite drives and checks one HTTP provider against its published spec."""

    name: str
    cls: type[HttpProvider]
    make: Callable[..., HttpProvider]  # make(**options) with a client, fake time, ...
    path: str  # the URL path the spec documents for sending
    request_schema: Callable[[], dict[str, Any]]
    validator: type[jsonschema.protocols.Validator]
    instance: Callable[[httpx.Request], Any]  # the request body as the spec's schema sees it
    message_headers: Callable[[Any], list[dict[str, str]]]  # custom headers, per message
    message_tags: Callable[[Any], list[dict[str, str]]]  # metadata/tags/variables, per message
    ok_response: Callable[[httpx.Request, int], httpx.Response]  # a spec-shaped 2xx for n messages
    response_schema: Callable[[int], dict[str, Any] | None]  # schema of the body for a status
    examples: Callable[[], list[tuple[int, Any, str]]]  # (status, body, expected outcome)
    auth: tuple[str, str]  # (header, value) that must carry the credential

    @property
    def secret(self) -> str:
        return SECRETS[self.name]


# -- Postmark (Swagger 2.0) -------------------------------------------------------------------

POSTMARK_SPEC = "postmark/postmark-server-openapi-original.yml"


@cache  # a pure function of the spec file; callers only read it
def postmark_request_schema() -> dict[str, Any]:
    spec = load_spec(POSTMARK_SPEC)
    message = inline(spec["definitions"]["SendEmailRequest"], spec)
    # The published Swagger predates message streams and metadata. Postmark documents both
    # (MessageStream: https://postmarkapp.com/developer/user-guide/send-email-with-api/batch-emails,
    # Metadata: https://postmarkapp.com/updates/custom-metadata-for-your-emails); exactly these two
    # properties are added, everything else is held to the spec.
    message["properties"]["MessageStream"] = {"type": "string", "minLength": 1}
    message["properties"]["Metadata"] = {"type": "object", "additionalProperties": {"type": "string"}}
    batch = inline(spec["definitions"]["SendEmailBatchRequest"], spec)
    batch["items"] = message
    batch["maxItems"] = 500  # the documented batch limit
    return closed(batch)


def postmark_ok(request: httpx.Request, count: int) -> httpx.Response:
    sent = json.loads(request.read())
    return httpx.Response(200, json=[
        {"To": m["To"], "SubmittedAt": "2024-05-01T09:30:00.0000000-04:00", "MessageID": f"pm-{i}",
         "ErrorCode": 0, "Message": "OK"} for i, m in enumerate(sent)])


def postmark_response_schema(status: int) -> dict[str, Any] | None:
    spec = load_spec(POSTMARK_SPEC)
    responses = spec["paths"]["/email/batch"]["post"]["responses"]
    response = inline(responses.get(status) or {}, spec)
    return response.get("schema")


def postmark_examples() -> list[tuple[int, Any]]:
    # The Swagger carries no examples; these bodies follow its StandardPostmarkResponse and
    # SendEmailBatchResponse schemas (the test checks that) and Postmark's error-code table
    # (https://postmarkapp.com/developer/api/overview#error-codes).
    return [
        (200, [{"To": "a@example.com", "SubmittedAt": "2024-05-01T09:30:00Z", "MessageID": "pm-a",
                "ErrorCode": 0, "Message": "OK"}], "accepted"),
        (200, [{"ErrorCode": 406, "Message": "You tried to send to a recipient that has been marked as inactive."}],
         "permanent"),
        (422, {"ErrorCode": 300, "Message": "Invalid email request"}, "permanent"),
        (422, {"ErrorCode": 10, "Message": "Bad or missing API token"}, "unusable"),
        (422, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, "retryable"),
        (401, {"ErrorCode": 10, "Message": "Bad or missing API token"}, "unusable"),
        (500, None, "retryable"),
    ]


POSTMARK = HttpCase(
    name="postmark", cls=PostmarkProvider,
    make=lambda **options: PostmarkProvider(SECRETS["postmark"], **options),
    path="/email/batch", request_schema=postmark_request_schema, validator=jsonschema.Draft4Validator,
    instance=lambda request: json.loads(request.read()),
    message_headers=lambda body: [{h["Name"]: h["Value"] for h in m["Headers"]} for m in body],
    message_tags=lambda body: [m["Metadata"] | {"tag": m["Tag"]} for m in body],
    ok_response=postmark_ok, response_schema=postmark_response_schema, examples=postmark_examples,
    auth=("X-Postmark-Server-Token", SECRETS["postmark"]),
)

# -- SendGrid (OpenAPI 3.1) -------------------------------------------------------------------

SENDGRID_SPEC = "sendgrid/tsg_mail_v3.yaml"


@cache  # a pure function of the spec file; callers only read it
def sendgrid_request_schema() -> dict[str, Any]:
    spec = load_spec(SENDGRID_SPEC)
    body = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]["schema"]
    return closed(inline(body, spec))


SENDGRID = HttpCase(
    name="sendgrid", cls=SendGridProvider,
    make=lambda **options: SendGridProvider(SECRETS["sendgrid"], **options),
    path="/v3/mail/send", request_schema=sendgrid_request_schema, validator=jsonschema.Draft202012Validator,
    instance=lambda request: json.loads(request.read()),
    message_headers=lambda body: [body["headers"]],
    message_tags=lambda body: [body["personalizations"][0]["custom_args"] | {"tag": body["categories"][0]}],
    ok_response=lambda request, count: httpx.Response(202, headers={"X-Message-Id": "sg-msg-1"}),
    response_schema=lambda status: openapi_response_schema(SENDGRID_SPEC, "/v3/mail/send", status),
    examples=lambda: spec_examples(SENDGRID_SPEC, "/v3/mail/send"),
    auth=("Authorization", f"Bearer {SECRETS['sendgrid']}"),
)

# -- Mailgun (OpenAPI 3.1, multipart form) --------------------------------------------------

MAILGUN_SPEC = "mailgun/openapi.yaml"
MAILGUN_PATH = "/v3/{domain_name}/messages"


@cache  # a pure function of the spec file; callers only read it
def mailgun_form_schema() -> dict[str, Any]:
    spec = load_spec(MAILGUN_SPEC)
    schema = inline(spec["components"]["schemas"]["POST-v3-domain_name-messages-multipart-form-data-RequestBody"],
                    spec)
    # The spec documents custom headers and variables by two sample names ("h:X-My-Header",
    # "v:my-var") and leaves additionalProperties open. Close it: any h:<name> or v:<name> field
    # is a string, every other field must be one the spec lists.
    del schema["properties"]["h:X-My-Header"], schema["properties"]["v:my-var"]
    schema.pop("additionalProperties")
    schema["patternProperties"] = {"^h:[A-Za-z0-9-]+$": {"type": "string"}, "^v:[A-Za-z0-9_-]+$": {"type": "string"}}
    schema["additionalProperties"] = False
    schema["anyOf"] = [{"required": ["text"]}, {"required": ["html"]}]  # "must provide text or html"
    return schema


def mailgun_instance(request: httpx.Request) -> dict[str, Any]:
    """The form as the spec's object: array-typed fields collect repeats, others must be single."""
    properties = mailgun_form_schema()["properties"]
    form: dict[str, Any] = {}
    for name, value in form_fields(request):
        if properties.get(name, {}).get("type") == "array":
            form.setdefault(name, []).append(value)
        else:
            assert name not in form, f"field {name} sent twice"
            form[name] = value
    return form


MAILGUN = HttpCase(
    name="mailgun", cls=MailgunProvider,
    make=lambda **options: MailgunProvider(SECRETS["mailgun"], "mg.shop.example.com", **options),
    path="/v3/mg.shop.example.com/messages", request_schema=mailgun_form_schema,
    validator=jsonschema.Draft202012Validator, instance=mailgun_instance,
    message_headers=lambda form: [{k[2:]: v for k, v in form.items() if k.startswith("h:")}],
    message_tags=lambda form: [{k[2:]: v for k, v in form.items() if k.startswith("v:")} | {"tag": form["o:tag"][0]}],
    ok_response=lambda request, count: httpx.Response(200, json={"id": "<20240501.1@mg.shop.example.com>",
                                                                 "message": "Queued. Thank you."}),
    response_schema=lambda status: openapi_response_schema(MAILGUN_SPEC, MAILGUN_PATH, status),
    examples=lambda: spec_examples(MAILGUN_SPEC, MAILGUN_PATH),
    # HTTP Basic with user "api" and the key as password, as the spec's basicAuth scheme says
    auth=("Authorization", "Basic " + base64.b64encode(f"api:{SECRETS['mailgun']}".encode()).decode()),
)

# -- Resend (OpenAPI 3.1) ---------------------------------------------------------------------

RESEND_SPEC = "resend/resend.yaml"


@cache  # a pure function of the spec file; callers only read it
def resend_request_schema() -> dict[str, Any]:
    spec = load_spec(RESEND_SPEC)
    body = spec["paths"]["/emails/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = closed(inline(body, spec))
    schema["maxItems"] = 100  # "Trigger up to 100 batch emails at once"
    # Tag names and values: "only ASCII letters, numbers, underscores, or dashes", at most 256.
    for key in ("name", "value"):
        schema["items"]["properties"]["tags"]["items"]["properties"][key]["pattern"] = "^[A-Za-z0-9_-]{1,256}$"
    return schema


def resend_ok(request: httpx.Request, count: int) -> httpx.Response:
    return httpx.Response(200, json={"data": [{"id": f"re-{i}"} for i in range(count)]})


def resend_examples() -> list[tuple[int, Any]]:
    # The spec gives no examples for /emails/batch; these follow its CreateBatchEmailsResponse
    # and Resend's documented error bodies (https://resend.com/docs/api-reference/errors).
    def error(status: int, name: str, message: str) -> dict[str, Any]:
        return {"statusCode": status, "name": name, "message": message}

    return [
        (200, {"data": [{"id": "ae2014de-c168-4c61-8267-70d2662a1ce1"}]}, "accepted"),
        (200, {"data": [], "errors": [{"index": 0, "message": "The `to` field is missing."}]}, "permanent"),
        (422, error(422, "validation_error", "Invalid `to` field."), "permanent"),
        (401, error(401, "missing_api_key", "Missing API key in the authorization header."), "unusable"),
        (403, error(403, "invalid_api_key", "API key is invalid."), "unusable"),
        (409, error(409, "concurrent_idempotent_requests",
                    "Same idempotency key used while original request is still in progress."), "retryable"),
        (409, error(409, "invalid_idempotent_request",
                    "Same idempotency key used with a different request payload."), "permanent"),
        (429, error(429, "rate_limit_exceeded", "Too many requests."), "retryable"),
        (500, error(500, "internal_server_error", "Unexpected error."), "retryable"),
    ]


RESEND = HttpCase(
    name="resend", cls=ResendProvider,
    make=lambda **options: ResendProvider(SECRETS["resend"], **options),
    path="/emails/batch", request_schema=resend_request_schema, validator=jsonschema.Draft202012Validator,
    instance=lambda request: json.loads(request.read()),
    message_headers=lambda body: [m["headers"] for m in body],
    # Resend's tags are name/value pairs: the campaign tag is the campaign_id pair.
    message_tags=lambda body: [(tags := {t["name"]: t["value"] for t in m["tags"]}) | {"tag": tags["campaign_id"]}
                               for m in body],
    ok_response=resend_ok, examples=resend_examples,
    response_schema=lambda status: openapi_response_schema(RESEND_SPEC, "/emails/batch", status),
    auth=("Authorization", f"Bearer {SECRETS['resend']}"),
)

HTTP_CASES = (POSTMARK, SENDGRID, MAILGUN, RESEND)

#: Providers proved end to end on real sockets (tests/providers/test_*_e2e.py).
END_TO_END = {"smtp", "postmark"}
