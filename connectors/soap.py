"""Generic SOAP connector: zeep reads the WSDL and builds the envelope; httpx carries it.

Why not let zeep send: we want the raw response XML for the mappings (XPath), the same capped read,
timeouts and status classification as REST, and our own SOAP fault classification, which zeep would
turn into one generic exception. zeep still does what it is good at — WSDL-driven, validated envelopes —
with hardened settings, its own timeouts set and the WSDL cached per process.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import zeep
from lxml import etree
from pydantic import SecretStr
from zeep.cache import InMemoryCache
from zeep.wsdl.bindings.soap import Soap12Binding, SoapBinding

from connectors.base import Connector, Exchange
from connectors.config import Outcome, SoapSystemConfig
from connectors.errors import PermanentUpstreamError, TransientUpstreamError, status_phrase
from connectors.resilience import CallRecorder, ResiliencePolicy
from connectors.rest import (
    _ERROR_CLASSES,
    apply_auth,
    classify_status,
    fill_template,
    make_http_client,
    parse_xml_body,
    send_capped,
)

__all__ = ["SoapConnector", "SoapFault", "find_fault", "load_wsdl_client"]

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
_WSDL_CACHE = InMemoryCache(timeout=3600)  # type: ignore[no-untyped-call]
_CLIENTS: dict[tuple[str, bool, float], zeep.Client] = {}
_CLIENTS_LOCK = threading.Lock()


def load_wsdl_client(location: str, *, strict: bool, wsdl_timeout: float, operation_timeout: float) -> zeep.Client:
    """A zeep client for ``location`` (file path or URL), built once per process and reused."""
    cache_key = (location, strict, wsdl_timeout)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cache_key)
        if client is None:
            settings = zeep.Settings(
                strict=strict,
                raw_response=True,
                forbid_dtd=True,
                forbid_entities=True,
                forbid_external=True,
                xml_huge_tree=False,
            )
            transport = zeep.Transport(  # type: ignore[no-untyped-call]
                cache=_WSDL_CACHE, timeout=wsdl_timeout, operation_timeout=operation_timeout
            )
            client = zeep.Client(location, transport=transport, settings=settings)  # type: ignore[no-untyped-call]
            _CLIENTS[cache_key] = client
        return client


class SoapFault:
    """A SOAP 1.1 or 1.2 fault: code and the faultstring (which is where VIES puts its fault names)."""

    def __init__(self, code: str, string: str) -> None:
        self.code = code
        self.string = string

    @property
    def name(self) -> str:
        """The fault's symbolic name: the faultstring's leading UPPER_CASE token, else the whole string."""
        match = re.match(r"\s*([A-Z][A-Z0-9_]{2,})\b", self.string)
        return match.group(1) if match else self.string.strip()


def find_fault(root: etree._Element) -> SoapFault | None:
    fault = root.find(f".//{{{SOAP11_ENV}}}Fault")
    if fault is not None:
        return SoapFault(fault.findtext("faultcode", "") or "", fault.findtext("faultstring", "") or "")
    fault = root.find(f".//{{{SOAP12_ENV}}}Fault")
    if fault is not None:
        code = fault.findtext(f"{{{SOAP12_ENV}}}Code/{{{SOAP12_ENV}}}Value", "") or ""
        reason = fault.findtext(f"{{{SOAP12_ENV}}}Reason/{{{SOAP12_ENV}}}Text", "") or ""
        return SoapFault(code, reason)
    return None


def _pick_binding(client: zeep.Client, service: str | None, port: str | None) -> SoapBinding:
    services = client.wsdl.services
    svc = services[service] if service else next(iter(services.values()))
    prt = svc.ports[port] if port else next(iter(svc.ports.values()))
    binding = prt.binding
    if not isinstance(binding, SoapBinding):
        raise ValueError(f"port {prt.name} is not a SOAP binding")
    return binding


class SoapConnector(Connector):
    """One system spoken over SOAP, described by its WSDL and a :class:`SoapSystemConfig`."""

    config: SoapSystemConfig

    def __init__(
        self,
        system: str,
        config: SoapSystemConfig,
        policy: ResiliencePolicy,
        recorder: CallRecorder,
        key: SecretStr | None,
        *,
        wsdl_location: str,
    ) -> None:
        super().__init__(system, config, policy, recorder)
        self._key = key
        client = load_wsdl_client(
            wsdl_location,
            strict=config.strict,
            wsdl_timeout=config.timeouts.wsdl_s,
            operation_timeout=config.timeouts.read_s,
        )
        self._binding = _pick_binding(client, config.service, config.port)
        self._operation = self._binding.get(config.operation)  # type: ignore[no-untyped-call]
        if self._operation is None:
            raise ValueError(f"{system}: operation {config.operation!r} not in the WSDL binding")
        self._soap12 = isinstance(self._binding, Soap12Binding)
        self._http = make_http_client(config.timeouts, config.concurrency)

    def close(self) -> None:
        self._http.close()

    def arguments_for(self, identifier: str) -> dict[str, str]:
        """Identifier → operation arguments: named groups of ``identifier_pattern`` fill the templates."""
        match = re.fullmatch(self.config.identifier_pattern, identifier)
        if match is None:
            raise PermanentUpstreamError(self.system, "invalid_identifier", "identifier does not match the pattern")
        values = {"identifier": identifier, **{k: v for k, v in match.groupdict().items() if v is not None}}
        try:
            return {name: fill_template(template, values) for name, template in self.config.arguments.items()}
        except KeyError as exc:
            raise PermanentUpstreamError(self.system, "invalid_identifier", f"no value for {exc}") from exc

    def build_envelope(self, identifier: str) -> tuple[bytes, dict[str, str]]:
        try:
            serialized = self._operation.create(**self.arguments_for(identifier))
        except (TypeError, ValueError) as exc:  # zeep validation of the arguments
            raise PermanentUpstreamError(self.system, "invalid_input", str(exc)) from exc
        body = etree.tostring(serialized.content, xml_declaration=True, encoding="utf-8")
        headers = {str(k): str(v) for k, v in serialized.headers.items()}
        if self._soap12:
            headers["Content-Type"] = f'application/soap+xml; charset=utf-8; action="{self._operation.soapaction}"'
        else:
            headers["Content-Type"] = "text/xml; charset=utf-8"
        return body, headers

    def _exchange(self, identifier: str) -> Exchange:
        body, headers = self.build_envelope(identifier)
        params: dict[str, str] = {}
        headers.update(self.config.headers)
        self._key = self.current_key(self._key)
        auth = apply_auth(self.config.auth, self._key, headers, params)
        request = self._http.build_request("POST", self.config.endpoint, params=params, headers=headers, content=body)
        if auth is not None:
            request = next(auth.auth_flow(request))
        answer = send_capped(self._http, self.system, request, self.config.max_response_bytes)
        root: etree._Element | None = None
        try:
            if answer.body.strip():
                root = parse_xml_body(self.system, answer, self.config.max_response_bytes)
        except TransientUpstreamError:
            if classify_status(answer.status, ()) is None:
                raise
            # A non-XML error page (proxy 502 HTML): the HTTP status below classifies it.
        fault = find_fault(root) if root is not None else None
        if fault is not None:
            outcome = self._fault_outcome(fault, answer.status)
            raise _ERROR_CLASSES[outcome](
                self.system,
                fault.name or "soap_fault",
                fault.string,
                http_status=answer.status,
                retry_after=answer.retry_after,
            )
        status_outcome = classify_status(answer.status, (), self.config.auth_failure_statuses)
        if status_outcome is not None:
            raise _ERROR_CLASSES[status_outcome](
                self.system, f"http_{answer.status}", status_phrase(answer.status),
                http_status=answer.status, retry_after=answer.retry_after
            )
        if root is None:
            raise TransientUpstreamError(self.system, "malformed_response", "empty body", http_status=answer.status)
        return Exchange(body, answer.body, answer.content_type, answer.status)

    def _fault_outcome(self, fault: SoapFault, status: int) -> Outcome:
        codes = self.config.fault_codes
        if fault.name in codes:
            return codes[fault.name]
        if fault.string.strip() in codes:
            return codes[fault.string.strip()]
        if status in self.config.auth_failure_statuses:  # a fault sent with 401/403: the key was refused
            return "misconfigured"
        local_code = fault.code.rsplit(":", 1)[-1]
        if local_code in ("Client", "Sender"):
            return "permanent"
        return self.config.default_fault_outcome


def resolve_wsdl(location: str, base_dir: Path) -> str:
    """A URL stays a URL; a relative path resolves against the config's base folder."""
    if re.match(r"^https?://", location):
        return location
    path = Path(location)
    return str(path if path.is_absolute() else base_dir / path)
