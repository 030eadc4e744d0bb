"""The Local UI's published Swagger 2.0 specs: operation lookup and JSON Schema validation of bodies.

The spec is the appliance's contract. The rehearsal lab checks what it serves against it and the tests check what
they receive, so neither can drift towards what is merely convenient for our client.

Two specs ship with the wizard (``data/``): :data:`BASELINE`, the one the wizard was first built from (librarium
@5acee344, trimmed to the paths an installer uses), and :data:`CURRENT`, the newer published one (2026-08, 70 paths:
network configuration, cluster settings, machine pools…; reference §10.3, a third-party mirror). Which appliance
release first served which path is not published, so the client never decides by version what it may call: it asks,
and a 404 means "not on this appliance". The lab serves the spec of the version it plays
(:mod:`wizard.lab.versions`), and the conformance tests check every exchange against that same spec. The
module-level functions use :data:`CURRENT`.

Status lookup for a response is: the exact status, then ``default``. The spec documents few error statuses (no
operation lists 401 although every one but ping and login needs a token), so an error status it does not list is
checked against :data:`UNDOCUMENTED_ERROR_DEFINITION`, the error shape most operations use. An undocumented success
status is a violation.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

#: The spec the wizard was built from: librarium @5acee344, trimmed to an installer's paths.
BASELINE = "librarium-5acee344"
#: The newer published spec (2026-08; C: a third-party mirror of it), a superset of the baseline's paths.
CURRENT = "2026-08"
SPEC_RESOURCES: Mapping[str, str] = {BASELINE: "data/localui-api.json", CURRENT: "data/localui-api-2026-08.json"}
SPEC_RESOURCE = SPEC_RESOURCES[CURRENT]
UNDOCUMENTED_ERROR_DEFINITION = "v1Error"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")

_PARAM_SEGMENT = re.compile(r"^\{([^{}/]+)\}$")


class SpecViolation(Exception):
    """A body, status or request that the spec does not allow; ``errors`` lists every problem with its JSON path."""

    def __init__(self, subject: str, errors: Sequence[str]) -> None:
        self.subject = subject
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{subject}: {len(self.errors)} spec violation(s)\n{lines}")


class UnknownOperation(SpecViolation):
    """The path, or the method on a known path, is not in the spec."""

    def __init__(self, method: str, path: str, allowed: Sequence[str] = ()) -> None:
        self.method = method.upper()
        self.path = path
        self.allowed = tuple(allowed)
        if self.allowed:
            problem = f"method {self.method} is not in the spec for this path (spec has: {', '.join(self.allowed)})"
        else:
            problem = "no path template in the spec matches this path"
        super().__init__(f"{self.method} {path}", [problem])

    @property
    def path_known(self) -> bool:
        return bool(self.allowed)


@dataclass(frozen=True)
class ResponseSpec:
    """One documented response; ``status_key`` is the key it came from ("200", "default" or "undocumented")."""

    status_key: str
    description: str
    schema: Mapping[str, Any] | None
    pointer: str | None  # JSON pointer of ``schema`` inside the spec document


@dataclass(frozen=True)
class Operation:
    """A spec operation matched to a concrete path."""

    method: str
    template: str
    path_params: Mapping[str, str]
    definition: Mapping[str, Any] = field(repr=False)
    _parameters: tuple[tuple[str, Mapping[str, Any]], ...] = field(repr=False)
    #: The spec this operation was found in (its definitions resolve the operation's references).
    spec: LocalUISpec = field(repr=False, compare=False)

    @property
    def operation_id(self) -> str:
        return str(self.definition.get("operationId", ""))

    @property
    def pointer(self) -> str:
        return f"/paths/{_escape(self.template)}/{self.method.lower()}"

    @property
    def consumes(self) -> tuple[str, ...]:
        return tuple(self.definition.get("consumes") or self.spec.document.get("consumes") or ())

    def parameters(self, location: str | None = None) -> list[Mapping[str, Any]]:
        """Path-level and operation-level parameters, optionally only those ``in`` one location."""
        return [p for _, p in self._parameters if location is None or p.get("in") == location]

    def body_parameter(self) -> tuple[str, Mapping[str, Any]] | None:
        """The ``in: body`` parameter with the JSON pointer of its schema, or None."""
        for pointer, param in self._parameters:
            if param.get("in") == "body":
                return f"{pointer}/schema", param
        return None

    def documented_statuses(self) -> list[str]:
        return list(self.definition.get("responses", {}))

    def response(self, status: int) -> ResponseSpec | None:
        """The response spec for ``status``: exact, then ``default``, then (errors only) the common error shape."""
        responses: Mapping[str, Any] = self.definition.get("responses", {})
        for key in (str(status), "default"):
            if key in responses:
                entry = responses[key]
                schema = entry.get("schema")
                pointer = f"{self.pointer}/responses/{key}/schema" if schema is not None else None
                return ResponseSpec(key, str(entry.get("description", "")), schema, pointer)
        if status >= 400:
            name = UNDOCUMENTED_ERROR_DEFINITION
            return ResponseSpec(
                "undocumented", "error status the spec does not list", self.spec.definition(name), _def(name)
            )
        return None


# -- One spec document ---------------------------------------------------------------------------------------------


class LocalUISpec:
    """One shipped spec: its document, operation lookup and validation (validators are built once and cached)."""

    def __init__(self, name: str, resource: str) -> None:
        self.name = name
        self.resource = resource
        self.uri = f"urn:palette-wizard:localui-api:{name}"
        self._validators: dict[str, Draft4Validator] = {}

    def __repr__(self) -> str:
        return f"LocalUISpec({self.name!r})"

    @functools.cached_property
    def document(self) -> Mapping[str, Any]:
        """The spec as shipped in the package (callers must not mutate it)."""
        text = resources.files("wizard.appliance").joinpath(self.resource).read_text(encoding="utf-8")
        doc: dict[str, Any] = json.loads(text)
        return doc

    def definition(self, name: str) -> Mapping[str, Any]:
        defs: Mapping[str, Any] = self.document.get("definitions", {})
        if name not in defs:
            raise KeyError(f"no definition {name!r} in the Local UI spec {self.name}")
        result: Mapping[str, Any] = defs[name]
        return result

    def operations(self) -> Iterator[tuple[str, str]]:
        """Every (METHOD, template) in the spec."""
        for template, item in self.document["paths"].items():
            for method in item:
                if method in HTTP_METHODS:
                    yield method.upper(), template

    def has(self, method: str, path: str) -> bool:
        """Whether the spec has this operation (a concrete path or a template)."""
        try:
            self.operation(method, path)
        except UnknownOperation:
            return False
        return True

    def operation(self, method: str, path: str) -> Operation:
        """The operation for a concrete request path (query string ignored); raises :class:`UnknownOperation`."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        match = self._matcher.match(path)
        if match is None:
            raise UnknownOperation(method, path)
        template, params = match
        item: Mapping[str, Any] = self.document["paths"][template]
        op = item.get(method.lower())
        if method.lower() not in HTTP_METHODS or op is None:
            raise UnknownOperation(method, path, [m.upper() for m in item if m in HTTP_METHODS])
        base = f"/paths/{_escape(template)}"
        indexed = [(f"{base}/parameters/{i}", p) for i, p in enumerate(item.get("parameters", []))]
        indexed += [(f"{base}/{method.lower()}/parameters/{i}", p) for i, p in enumerate(op.get("parameters", []))]
        # An operation-level parameter overrides a path-level one with the same name and location.
        merged: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
        for pointer, param in indexed:
            merged[(str(param.get("name")), str(param.get("in")))] = (pointer, param)
        return Operation(method.upper(), template, params, op, tuple(merged.values()), self)

    # -- Validation --

    def validate_response(self, method: str, path: str, status: int, body: Any) -> ResponseSpec:
        """Check ``body`` (parsed JSON; None for no body; bytes for a file) against the response documented for
        ``status``. Returns the response spec used; raises :class:`SpecViolation` listing every problem."""
        op = self.operation(method, path)
        subject = f"{op.method} {op.template} → {status}"
        resp = op.response(status)
        if resp is None:
            documented = ", ".join(op.documented_statuses())
            raise SpecViolation(subject, [f"status {status} is not documented (spec lists: {documented})"])
        if resp.schema is None or resp.pointer is None:
            if body is not None:
                raise SpecViolation(subject, ["the spec declares no body for this response, but one was sent"])
            return resp
        if self._is_file_schema(resp.schema):
            if body is not None and not isinstance(body, bytes | bytearray):
                raise SpecViolation(subject, ["the spec declares a file (raw bytes) for this response"])
            return resp
        self._check(resp.pointer, body, subject)
        return resp

    def validate_request_body(self, method: str, path: str, body: Any) -> None:
        """Check a JSON request body (None = no body) against the operation's ``in: body`` parameter."""
        op = self.operation(method, path)
        subject = f"{op.method} {op.template} request body"
        found = op.body_parameter()
        if found is None:
            if body is not None:
                raise SpecViolation(subject, ["the operation takes no body"])
            return
        pointer, param = found
        if body is None:
            if param.get("required"):
                raise SpecViolation(subject, [f"body parameter {param.get('name')!r} is required"])
            return
        self._check(pointer, body, subject)

    def validate_definition(self, name: str, instance: Any) -> None:
        """Check ``instance`` against ``#/definitions/<name>``."""
        self.definition(name)
        self._check(_def(name), instance, f"#/definitions/{name}")

    def _check(self, pointer: str, instance: Any, subject: str) -> None:
        errors = sorted(self._validator(pointer).iter_errors(instance), key=lambda e: (e.json_path, e.message))
        if errors:
            raise SpecViolation(subject, [f"{e.json_path}: {e.message}" for e in errors])

    @functools.cached_property
    def _registry(self) -> Registry[Any]:
        # The whole document is the resolution root, so "#/definitions/..." refs resolve wherever a schema sits.
        resource: Resource[Any] = Resource.from_contents(self.document, default_specification=DRAFT4)
        registry: Registry[Any] = Registry().with_resource(self.uri, resource)
        return registry

    def _validator(self, pointer: str) -> Draft4Validator:
        # No format checker: Swagger's formats (int32, float, password, binary) are annotations here, as in the
        # generated Go server; unknown keywords such as x-omitempty are ignored by Draft 4. A race builds one
        # validator twice, which is harmless.
        found = self._validators.get(pointer)
        if found is None:
            found = Draft4Validator({"$ref": f"{self.uri}#{pointer}"}, registry=self._registry)
            self._validators[pointer] = found
        return found

    def _is_file_schema(self, schema: Mapping[str, Any]) -> bool:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            schema = self.definition(ref.removeprefix("#/definitions/"))
        return schema.get("type") == "file"

    @functools.cached_property
    def _matcher(self) -> PathMatcher:
        return PathMatcher(self.document["paths"])


def spec(name: str = CURRENT) -> LocalUISpec:
    """The shipped spec ``name`` (:data:`BASELINE` or :data:`CURRENT`), loaded once."""
    if name not in SPEC_RESOURCES:
        raise KeyError(f"no Local UI spec {name!r} (shipped: {', '.join(SPEC_RESOURCES)})")
    return _loaded(name)


@functools.cache
def _loaded(name: str) -> LocalUISpec:
    return LocalUISpec(name, SPEC_RESOURCES[name])


# -- The module-level functions: the current spec ----------------------------------------------------------------


def spec_document() -> Mapping[str, Any]:
    """The current spec as shipped in the package (callers must not mutate it)."""
    return spec().document


def definition(name: str) -> Mapping[str, Any]:
    return spec().definition(name)


def operations() -> Iterator[tuple[str, str]]:
    """Every (METHOD, template) in the current spec."""
    return spec().operations()


def operation(method: str, path: str) -> Operation:
    """The operation for a concrete request path (query string ignored); raises :class:`UnknownOperation`."""
    return spec().operation(method, path)


def validate_response(method: str, path: str, status: int, body: Any) -> ResponseSpec:
    """Check ``body`` against the response the current spec documents for ``status`` (see
    :meth:`LocalUISpec.validate_response`)."""
    return spec().validate_response(method, path, status, body)


def validate_request_body(method: str, path: str, body: Any) -> None:
    """Check a JSON request body (None = no body) against the operation's ``in: body`` parameter."""
    spec().validate_request_body(method, path, body)


def validate_definition(name: str, instance: Any) -> None:
    """Check ``instance`` against ``#/definitions/<name>`` of the current spec."""
    spec().validate_definition(name, instance)


def _def(name: str) -> str:
    return f"/definitions/{_escape(name)}"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


# -- Path templates ------------------------------------------------------------------------------------------------


class PathMatcher:
    """Matches concrete paths to Swagger path templates; a ``{name}`` segment matches one non-empty segment."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._literal: set[str] = set()
        compiled: list[tuple[tuple[str, ...], dict[int, str], str]] = []
        for template in templates:
            segments = tuple(template.strip("/").split("/"))
            params = {i: m.group(1) for i, s in enumerate(segments) if (m := _PARAM_SEGMENT.match(s))}
            if params:
                compiled.append((segments, params, template))
            else:
                self._literal.add(template)
        # Literal segments beat parameters, leftmost first: /a/details must not match /a/{name}.
        compiled.sort(key=lambda c: (len(c[1]), -min(c[1]), c[2]))
        self._templated = compiled

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path in self._literal:
            return path, {}
        if not path.startswith("/"):
            return None
        segments = path.strip("/").split("/")
        for tpl_segments, names, template in self._templated:
            if len(tpl_segments) != len(segments):
                continue
            params: dict[str, str] = {}
            for i, (want, got) in enumerate(zip(tpl_segments, segments, strict=True)):
                if i in names:
                    if not got:
                        break
                    params[names[i]] = unquote(got)
                elif want != got:
                    break
            else:
                return template, params
        return None
