"""Every Acumatica sandbox answer checked against Acumatica's own OpenAPI definition.

The definition is `tests/contracts/acumatica/` (a subset of `Default/24.200.001`, see the
README there). `AcumaticaContract` finds the operation a request hit and validates the
answer's status, content type and body; `OpenAPICheck` is an ASGI wrapper the test
fixtures put around the sandbox server, so no test can talk to the Acumatica sandbox
without its answers being checked; `REPORT` counts what was validated, what the subset
does not describe, and every violation.

Why `jsonschema` and not `openapi-core`: the definition's schemas are open (no
`additionalProperties: false`), so a validator that follows it to the letter passes any
field the contract does not have, which is what was wrong with the sandbox. The schemas
are therefore closed here: each `allOf` (every entity is `Entity` + its fields) is
merged into one object and every object without `additionalProperties` or a
`discriminator` refuses unknown members. And Acumatica's key path parameter `{ids}` is
"slash-delimited" (the spec's own description: `/SalesOrder/SO/000001`), which OpenAPI
path templates cannot match; the operation is found here by the path's shape instead.

What counts as "not covered" (answered, counted, never passed as valid):
- paths the subset has no operation for: `/entity/auth/login|logout`,
  `/identity/connect/token`, `GET /entity/`, and polling an action's `Location`
  (`/{Entity}/{Action}/status/{id}`, which the 202's `Location` header points at but
  the definition does not list);
- statuses an operation does not list (404, 405, 429, 503, and 422 on the GETs).
An answer the definition describes without content (202, 204) must have no body.

One member outside the definition is allowed: `_links` (`self`, `files:put`) on a
top-level record. Acumatica's help shows it in its answers ("Retrieve the List of
Attachments of a Stock Item", Integration Development Guide, as published in
github.com/Acumatica/Acumatica-AI-Resources
Documentation/IntegrationDevelopmentGuide); the OpenAPI subset just does not model it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

SPEC_PATH = Path(__file__).parent / "acumatica" / "acumatica-default-24.200.001.openapi.json"
API_PREFIX = "/entity/Default/24.200.001"
MOUNT = "/acumatica"
CONTROL = "/_sandbox"
LINK_NAMES = frozenset({"self", "files:put"})
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_PROBLEMS = 20


def _int_range(bits: int) -> Callable[[object], bool]:
    def within(value: object) -> bool:
        return not isinstance(value, int) or -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)

    return within


def _format_checker() -> FormatChecker:
    """Every format jsonschema knows (`date-time` through rfc3339-validator, `uuid`),
    plus the OpenAPI numeric formats the definition uses (`double`: any JSON number,
    the type check does the work)."""
    checker = FormatChecker()
    formats: dict[str, Callable[[object], bool]] = {
        "int16": _int_range(16),
        "int32": _int_range(32),
        "int64": _int_range(64),
        "double": lambda value: True,
    }
    for name, check in formats.items():
        checker.checks(name)(check)
    return checker


@dataclass(frozen=True)
class Outcome:
    """What checking one answer found: `validated` (with `problems`, empty when valid)
    or `not_covered` with the reason."""

    operation: str
    covered: bool
    problems: tuple[str, ...] = ()
    reason: str = ""


class AcumaticaContract:
    """The OpenAPI definition, with its schemas closed, answering `check`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.paths: dict[str, dict[str, Any]] = spec["paths"]
        components = spec["components"]
        self._raw_schemas: dict[str, Any] = components["schemas"]
        self._responses: dict[str, Any] = components.get("responses", {})
        self.definitions = {
            name: self._close(self._flatten(schema)) for name, schema in self._raw_schemas.items()
        }
        self._validators: dict[str, Draft4Validator] = {}
        self._checker = _format_checker()

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> AcumaticaContract:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    # ---- the schemas, closed ---------------------------------------------------------

    def _component(self, ref: str) -> Any:
        return self._raw_schemas[ref.rsplit("/", 1)[-1]]

    def _flatten(self, schema: Any) -> Any:
        """`allOf` merged into one object (properties and `required` of every part)."""
        if not isinstance(schema, dict):
            return schema
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}}
            required: list[str] = []
            for part in schema["allOf"]:
                resolved = self._component(part["$ref"]) if "$ref" in part else part
                resolved = self._flatten(resolved)
                merged["properties"].update(resolved.get("properties", {}))
                required += resolved.get("required", [])
                if "additionalProperties" in resolved:
                    merged["additionalProperties"] = resolved["additionalProperties"]
            if required:
                merged["required"] = sorted(set(required))
            return merged
        return schema

    def _close(self, schema: Any) -> Any:
        """Refs pointed at `definitions`, objects closed, OpenAPI `nullable` as a type."""
        if isinstance(schema, list):
            return [self._close(item) for item in schema]
        if not isinstance(schema, dict):
            return schema
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "$ref":
                out[key] = "#/definitions/" + value.rsplit("/", 1)[-1]
            elif key in ("properties",):
                out[key] = {name: self._close(sub) for name, sub in value.items()}
            elif key in ("items", "additionalProperties", "allOf", "anyOf", "oneOf"):
                out[key] = self._close(value)
            elif key in ("nullable", "discriminator"):
                continue
            else:
                out[key] = copy.deepcopy(value)
        if schema.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        if (
            "properties" in out
            and "additionalProperties" not in out
            and "discriminator" not in schema
        ):
            out["additionalProperties"] = False
        return out

    def validator_for(self, schema: dict[str, Any]) -> Draft4Validator:
        """A validator for a response's schema: a `$ref` or an array of one."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            closed = {**self._close(schema), "definitions": self.definitions}
            self._validators[key] = Draft4Validator(closed, format_checker=self._checker)
        return self._validators[key]

    # ---- finding the operation -----------------------------------------------------

    def template(self, method: str, path: str) -> tuple[str | None, str]:
        """(the definition's path template, or None; a label for the report)."""
        if not path.startswith(API_PREFIX + "/"):
            return None, f"{method} {path}"
        parts = [part for part in path[len(API_PREFIX) :].split("/") if part]
        if not parts:
            return None, f"{method} {API_PREFIX}/"
        entity = parts[0]
        base = f"/{entity}"
        if base not in self.paths:
            return None, f"{method} {API_PREFIX}/{entity}..."
        if len(parts) == 1:
            return base, f"{method} {API_PREFIX}{base}"
        if len(parts) == 4 and parts[2] == "status":
            return None, f"{method} {API_PREFIX}{base}/{parts[1]}/status/{{id}}"
        if len(parts) == 2 and parts[1] == "$adHocSchema":
            template = f"{base}/$adHocSchema"
        elif len(parts) >= 3 and parts[-2] == "files":
            template = f"{base}/{{ids}}/files/{{filename}}"
        elif method == "POST" and len(parts) == 2:
            named = f"{base}/{parts[1]}"
            template = named if named in self.paths else f"{base}/{{actionName}}"
        elif len(parts) == 2 and UUID.match(parts[1]):
            template = f"{base}/{{id}}"
        else:
            template = f"{base}/{{ids}}"
        return template, f"{method} {API_PREFIX}{template}"

    def _response(self, operation: dict[str, Any], status: int) -> dict[str, Any] | None:
        responses: dict[str, Any] = operation.get("responses", {})
        found = responses.get(str(status)) or responses.get("default")
        if found is not None and "$ref" in found:
            found = self._responses[found["$ref"].rsplit("/", 1)[-1]]
        return found

    # ---- checking one answer -------------------------------------------------------

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> Outcome:
        template, label = self.template(method, path)
        if template is None:
            return Outcome(label, False, reason="no operation in the definition")
        operation = self.paths[template].get(method.lower())
        if operation is None:
            return Outcome(label, False, reason=f"{method} not defined for {template}")
        response = self._response(operation, status)
        if response is None:
            return Outcome(label, False, reason=f"status {status} not described")
        content: dict[str, Any] | None = response.get("content")
        if not content:
            extra = () if not body.strip() else (f"a body where none is defined: {body[:200]!r}",)
            return Outcome(label, True, extra)
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in content:
            return Outcome(
                label, True, (f"content type {content_type!r}, not one of {sorted(content)}",)
            )
        try:
            document = json.loads(body)
        except ValueError as exc:
            return Outcome(label, True, (f"the body is not JSON: {exc}",))
        schema: dict[str, Any] = content[media]["schema"]
        problems = list(self._links(document))
        validator = self.validator_for(schema)
        errors = validator.iter_errors(document)
        for error in sorted(errors, key=lambda e: [str(step) for step in e.absolute_path]):
            where = "/".join(str(step) for step in error.absolute_path) or "(root)"
            problems.append(f"{where}: {error.message}")
            if len(problems) >= MAX_PROBLEMS:
                problems.append("... (more)")
                break
        return Outcome(label, True, tuple(problems))

    @staticmethod
    def _links(document: Any) -> list[str]:
        """Check and remove `_links` from each top-level record (see the module doc)."""
        problems: list[str] = []
        records = document if isinstance(document, list) else [document]
        for index, record in enumerate(records):
            if not isinstance(record, dict) or "_links" not in record:
                continue
            links = record.pop("_links")
            where = f"{index}/_links" if isinstance(document, list) else "_links"
            if not isinstance(links, dict) or not all(
                name in LINK_NAMES and isinstance(value, str) for name, value in links.items()
            ):
                problems.append(f"{where}: not an object of {sorted(LINK_NAMES)} links: {links!r}")
        return problems


@dataclass(frozen=True)
class Violation:
    method: str
    path: str
    status: int
    operation: str
    problems: tuple[str, ...]

    def __str__(self) -> str:
        lines = "\n    ".join(self.problems)
        return f"{self.method} {self.path} -> {self.status} (as {self.operation}):\n    {lines}"


@dataclass
class Report:
    """What the wrapped sandbox answered, as the definition judged it. Thread-safe: the
    server runs in its own thread."""

    validated: Counter[str] = field(default_factory=Counter)
    not_covered: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    claimed: int = 0
    merged_violations: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, path: str, status: int, outcome: Outcome) -> None:
        with self._lock:
            if not outcome.covered:
                self.not_covered[f"{outcome.operation} -> {status} ({outcome.reason})"] += 1
                return
            self.validated[f"{outcome.operation} -> {status}"] += 1
            if outcome.problems:
                self.violations.append(
                    Violation(method, path, status, outcome.operation, outcome.problems)
                )

    def unclaimed(self) -> list[Violation]:
        """Violations no test has been failed for yet; they are claimed now."""
        with self._lock:
            found = self.violations[self.claimed :]
            self.claimed = len(self.violations)
            return found

    def dump(self) -> str:
        """The counts as JSON, for a pytest-xdist worker to hand to the controller."""
        with self._lock:
            return json.dumps(
                {
                    "validated": dict(self.validated),
                    "not_covered": dict(self.not_covered),
                    "violations": [str(violation) for violation in self.violations],
                }
            )

    def add(self, dumped: str) -> None:
        """Another process's `dump` counted in with this one."""
        other = json.loads(dumped)
        with self._lock:
            self.validated.update(other["validated"])
            self.not_covered.update(other["not_covered"])
            self.merged_violations += len(other["violations"])

    def summary(self, *, verbose: bool = False) -> list[str]:
        """The counts; `verbose` lists the validated operations too (pytest `-v`)."""
        with self._lock:
            lines = [
                f"Acumatica OpenAPI (Default/24.200.001 subset): {sum(self.validated.values())} "
                f"sandbox answers validated over {len(self.validated)} operation/status pairs, "
                f"{len(self.violations) + self.merged_violations} violating"
            ]
            if verbose:
                lines += [f"  {count:6d}  {what}" for what, count in sorted(self.validated.items())]
            lines.append(
                f"{sum(self.not_covered.values())} Acumatica sandbox answers not covered by it:"
            )
            lines += [f"  {count:6d}  {what}" for what, count in sorted(self.not_covered.items())]
            return lines


REPORT = Report()

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class OpenAPICheck:
    """ASGI wrapper: every answer under `mount` (the control plane aside) is checked
    with `contract` and recorded in `report`; the answer itself goes out unchanged."""

    def __init__(
        self,
        app: ASGIApp,
        contract: AcumaticaContract,
        report: Report,
        mount: str = MOUNT,
    ) -> None:
        self.app = app
        self.contract = contract
        self.report = report
        self.mount = mount

    @cached_property
    def _control(self) -> str:
        return self.mount + CONTROL

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith(self.mount + "/")
            or path.startswith(self._control)
        ):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        relative = path[len(self.mount) :]
        status = 0
        content_type = ""
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._record(method, relative, status, content_type, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, capture)

    def _record(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        try:
            outcome = self.contract.check(method, path, status, content_type, body)
        except Exception as exc:  # a checker bug must show, not take the server down
            outcome = Outcome(f"{method} {path}", True, (f"checker error: {exc!r}",))
        self.report.record(method, path, status, outcome)
