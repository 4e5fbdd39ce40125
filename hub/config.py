"""One configuration for the whole hub, read and validated once at start.

Layers, later wins key by key: every shipped ``config/*.yaml`` (package data ``hub.defaults``,
``default.yaml`` first) < the file named by ``G2BHUB_CONFIG`` < ``G2BHUB_*`` environment variables
(``__`` between nested keys) < explicit arguments. Every section is a typed model owned by its flow, so a
typo or a bad value stops the start with one line naming the file or variable and the key
(:func:`load_settings`) before any migration runs.

Secrets (database passwords inside URLs, API keys of upstream systems) are ``SecretStr`` or are
redacted by :func:`redact_url` before they reach a log line. Every validated ``Settings`` also hands
its secret values (:func:`known_secrets`) to the log filter, so they are hidden in any line that
repeats them, whoever writes it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.abc import Traversable
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from connectors.config import Systems
from hub.notices.pps_config import PpsSettings
from hub.spine.observability.logging import register_secrets
from hub.spine.quota_config import QuotaSettings
from hub.spine.settings import BrokerSettings, DatabaseSettings, LoggingSettings, RelaySettings, Section, redact_url
from hub.subscriptions.config import SyndicationSettings
from hub.suppliers.config import SupplierSettings

__all__ = [
    "ApiSettings",
    "BrokerSettings",
    "ConfigError",
    "DatabaseSettings",
    "LoggingSettings",
    "QuotaSettings",
    "RelaySettings",
    "Settings",
    "deep_merge",
    "get_settings",
    "known_secrets",
    "load_settings",
    "redact_url",
    "shipped_defaults",
    "shipped_files",
    "with_overrides",
]

# The top-level config/ folder, installed as this package (see pyproject.toml).
DEFAULTS_PACKAGE = "hub.defaults"
ENV_PREFIX = "G2BHUB_"


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    # How long an authenticated API key is answered from memory without the database: a revoked key or
    # a disabled organisation is refused at most this long after the change (0: look up every request).
    key_cache_ttl_s: float = Field(5.0, ge=0, le=300)
    # Threads that run requests (routes and the key check) in one API process; more requests queue, in order.
    threads: int = Field(8, ge=1, le=1000)


class ConfigError(ValueError):
    """Invalid configuration: one line per problem, each naming where the value came from and its key."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Override wins key by key; nested mappings merge instead of replacing each other (lists replace)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def shipped_files() -> list[Traversable]:
    """The shipped defaults, ``default.yaml`` first, then the others by name (each holds whole sections)."""
    found = [entry for entry in files(DEFAULTS_PACKAGE).iterdir() if entry.name.endswith(".yaml")]
    return sorted(found, key=lambda entry: (entry.name != "default.yaml", entry.name))


def shipped_defaults() -> dict[str, Any]:
    """The shipped files merged, before any deployment layer: what a value is when nobody set it."""
    data: dict[str, Any] = {}
    for entry in shipped_files():
        data = deep_merge(data, _read_yaml(entry.read_text(encoding="utf-8"), f"config/{entry.name}"))
    return data


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError([f"{origin}: not valid YAML{line}: {getattr(exc, 'problem', None) or exc}"]) from None
    if not isinstance(loaded, dict):
        raise ConfigError([f"{origin}: top level must be a mapping of sections"])
    return loaded


def _file_layers() -> list[tuple[str, dict[str, Any]]]:
    """(origin, data) of every file, lowest precedence first."""
    layers = []
    for entry in shipped_files():
        origin = str(Path(str(entry)).resolve()) if isinstance(entry, Path) else f"config/{entry.name}"
        layers.append((origin, _read_yaml(entry.read_text(encoding="utf-8"), origin)))
    extra = os.environ.get("G2BHUB_CONFIG")
    if extra:
        try:
            text = Path(extra).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"G2BHUB_CONFIG={extra}: cannot read the file ({exc.strerror})"]) from None
        layers.append((extra, _read_yaml(text, extra)))
    return layers


class YamlFilesSource(PydanticBaseSettingsSource):
    """The shipped files, then the file named by ``G2BHUB_CONFIG``, merged key by key."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for _origin, layer in _file_layers():
            data = deep_merge(data, layer)
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    relay: RelaySettings = RelaySettings()
    api: ApiSettings = ApiSettings()
    logging: LoggingSettings = LoggingSettings()
    # Upstream systems by name (config/connectors.yaml ships one entry each).
    connectors: Systems = {}
    # Register once: scheme → systems and fetch timing (config/suppliers.yaml).
    suppliers: SupplierSettings
    # Push delivery, plus open publication under ``syndication.publication``.
    syndication: SyndicationSettings = SyndicationSettings()
    # Token-bucket budgets per key, organisation, client address, supplier refresh and upstream system.
    quotas: QuotaSettings = QuotaSettings()
    # Pulling KONEPS notices from the PPS open API (config/pps.yaml, docs/pps.md).
    pps: PpsSettings = PpsSettings()

    @field_validator("quotas")
    @classmethod
    def _quotas_name_known_systems(cls, value: QuotaSettings, info: ValidationInfo) -> QuotaSettings:
        known = info.data.get("connectors")
        unknown = sorted(set(value.upstream) - set(known)) if known is not None else []
        if unknown:
            raise ValueError(f"upstream names systems without a connectors entry: {unknown}")
        return value

    @field_validator("suppliers")
    @classmethod
    def _suppliers_name_known_systems(cls, value: SupplierSettings, info: ValidationInfo) -> SupplierSettings:
        if "connectors" not in info.data:  # already reported: the connectors section did not validate
            return value
        known = info.data["connectors"]
        for scheme, systems in value.applicable_systems.items():
            unknown = [name for name in systems if name not in known]
            if unknown:
                raise ValueError(f"applicable_systems.{scheme} names systems without a connectors entry: {unknown}")
        return value

    @model_validator(mode="after")
    def _register_secrets(self) -> Settings:
        # From the moment a configuration exists, its secrets are hidden in every log line.
        register_secrets(known_secrets(self))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: explicit kwargs > env > secrets dir > YAML files.
        return (init_settings, env_settings, file_secret_settings, YamlFilesSource(settings_cls))


def load_settings(**arguments: Any) -> Settings:
    """The validated settings every entrypoint starts from; :class:`ConfigError` lists what is wrong."""
    try:
        return Settings(**arguments)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, arguments)) from None
    except SettingsError as exc:  # an environment value that should be JSON and is not
        raise ConfigError([_describe_json_error(exc)]) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def with_overrides(settings: Settings, changes: Mapping[str, Any]) -> Settings:
    """A copy with ``changes`` merged key by key and validated again (``model_copy`` validates nothing)."""
    merged = deep_merge(settings.model_dump(by_alias=True), changes)
    return Settings.model_validate(merged)


def known_secrets(settings: Settings) -> set[str]:
    """Every secret value the settings hold: ``SecretStr`` fields (connector keys, webhook secret keys),
    the resolved key of each connector (``key_env`` / ``key_file``), values under a ``headers`` mapping,
    URL passwords, and query values of the key parameters (``logging.query_params``)."""
    params = {name.lower() for name in settings.logging.query_params}
    found: set[str] = set()
    _collect(settings, "", params, found)
    for system in settings.connectors.values():
        key = system.resolve_key()
        if key is not None:
            found.add(key.get_secret_value())
    pps_key = settings.pps.service_key()
    if pps_key is not None:  # in both of the portal's forms
        found.update({pps_key.get_secret_value(), unquote(pps_key.get_secret_value()),
                      quote(unquote(pps_key.get_secret_value()), safe="")})
    found.discard("")
    return found


# Headers that describe the request rather than authorise it; every other header value counts as secret.
_PLAIN_HEADERS = {"accept", "accept-language", "accept-encoding", "content-type", "user-agent", "cache-control"}


def _collect(value: Any, key: str, params: set[str], found: set[str]) -> None:
    if isinstance(value, SecretStr):
        found.add(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect(getattr(value, name), name, params, found)
    elif isinstance(value, Mapping):
        for name, item in value.items():
            if key == "headers" and isinstance(item, str):
                if str(name).lower() in _PLAIN_HEADERS:  # ``application/json`` is no secret to hunt in logs
                    continue
                found.add(item)
                # ``Bearer abc``: the credentials also appear on their own
                found.add(item.split(" ", 1)[-1])
            elif str(name).lower() in params and isinstance(item, str):  # a connector's ``query``
                found.add(item)
            else:
                _collect(item, str(name), params, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, key, params, found)
    elif isinstance(value, str) and "://" in value:
        found.update(url_secrets(value, params))


def url_secrets(url: str, params: set[str]) -> set[str]:
    """The password and the values of key parameters (``params``, lower case) of one URL."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return set()
    found = {password} if password else set()
    found.update(value for name, value in parse_qsl(parts.query, keep_blank_values=False)
                 if name.lower() in params)
    return found


def _describe(exc: ValidationError, arguments: Mapping[str, Any]) -> list[str]:
    """``<file or variable>: <dotted.key>: <message>``, one line per validation error."""
    layers = _file_layers()
    environment = EnvSettingsSource(Settings)()
    inputs = [data for _origin, data in layers] + [environment, arguments]
    lines = []
    for error in exc.errors():
        key = _key_path(inputs, error["loc"])
        dotted = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in key).lstrip(".")
        message = error["msg"].removeprefix("Value error, ")
        origin = _origin(key, layers, environment, arguments) if key else "configuration"
        if error["type"] == "extra_forbidden":
            message = _unknown_key(error["loc"])
            chooser = _variant_chooser(inputs, error["loc"])
            if chooser is not None:  # a key of one variant (``kind: rest``) under another (``kind: soap``)
                chosen_by = _origin(chooser[0], layers, environment, arguments)
                if _rank(chosen_by, layers) > _rank(origin, layers):  # the later layer switched the kind
                    dotted_chooser = ".".join(map(str, chooser[0]))
                    lines.append(f"{chosen_by}: {dotted_chooser}: {chooser[1]} takes no key {key[-1]} "
                                 f"(set in {origin})")
                    continue
        lines.append(f"{origin}: {dotted}: {message}" if key else f"{origin}: {message}")
    return lines


def _rank(origin: str, layers: list[tuple[str, dict[str, Any]]]) -> int:
    """Precedence of an origin ``_origin`` names: files in order, then the environment, then arguments."""
    files = [name for name, _data in layers]
    if origin in files:
        return files.index(origin)
    return len(files) + (1 if origin == "arguments" else 0)


def _unknown_key(loc: Sequence[Any]) -> str:
    """``unknown key (did you mean 'time_scale'?)``: the nearest known key of the same section, if any."""
    known = _known_keys(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), sorted(known), n=1, cutoff=0.6)
    return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"


def _variant_chooser(datas: list[Mapping[str, Any]], loc: Sequence[Any]) -> tuple[list[Any], str] | None:
    """For an error inside one variant of a tagged union (``connectors.nts.soap.batch``): the key that
    chose the variant (``connectors.nts.kind``) and the tag, so a variable that switched ``kind`` is
    named instead of the file that sets the other variant's keys."""
    key: list[Any] = []
    for index, part in enumerate(loc[:-1]):
        candidate = [*key, part]
        if any(_lookup(data, candidate) for data in datas):
            key = candidate
            continue
        if index != len(loc) - 2:
            continue
        variants = _members_at(loc[:index])
        if not any(loc[-1] in variant.model_fields for variant in variants):
            return None  # no variant takes the key: a typo, not a switched kind
        for variant in variants:
            for name, field in variant.model_fields.items():
                if get_origin(field.annotation) is Literal and part in get_args(field.annotation):
                    return [*key, field.alias or name], str(part)
    return None


def _members_at(loc: Sequence[Any]) -> list[type[BaseModel]]:
    """The settings models that can stand at ``loc`` (several for a union)."""
    kinds: list[Any] = [Settings]
    for part in loc:
        inner = _step(kinds, part)
        kinds = inner or kinds
    return [m for kind in kinds for m in _members(kind) if isinstance(m, type) and issubclass(m, BaseModel)]


def _step(kinds: list[Any], part: Any) -> list[Any]:
    """The types one level down from ``kinds`` along ``part``; a union tag narrows to its variant."""
    members = [member for kind in kinds for member in _members(kind)]
    tagged = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel) and any(
        get_origin(f.annotation) is Literal and part in get_args(f.annotation) for f in m.model_fields.values())]
    if tagged and not any(isinstance(m, type) and issubclass(m, BaseModel) and part in m.model_fields
                          for m in members):
        return tagged
    inner: list[Any] = []
    for kind in members:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part)) or next(
                (f for f in kind.model_fields.values() if f.alias == part), None)
            if field is not None:
                inner.append(field.annotation)
        elif get_origin(kind) in (dict, Mapping) and get_args(kind):
            inner.append(get_args(kind)[-1])
        elif get_origin(kind) in (list, tuple, Sequence) and isinstance(part, int) and get_args(kind):
            inner.append(get_args(kind)[0])
    return inner


def _known_keys(loc: Sequence[Any]) -> set[str]:
    """The field names (and aliases) of the section(s) the settings models expect at ``loc``."""
    names: set[str] = set()
    for model in _members_at(loc):
        names.update(model.model_fields)
        names.update(f.alias for f in model.model_fields.values() if f.alias)
    return names


def _members(kind: Any) -> list[Any]:
    """``Annotated[X | Y, ...]`` → [X, Y]; anything else → [itself]."""
    if get_origin(kind) is Annotated:
        return _members(get_args(kind)[0])
    if get_origin(kind) in (Union, types.UnionType):
        return [member for arg in get_args(kind) for member in _members(arg)]
    return [kind]


def _describe_json_error(error: SettingsError) -> str:
    field = re.search(r'field "(\w+)"', str(error))
    prefix = f"{ENV_PREFIX}{field.group(1) if field else ''}".upper()
    for name, value in sorted(os.environ.items()):
        if name.upper().startswith(prefix) and value.startswith(("[", "{")):
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                return f"{name}: not valid JSON ({exc.msg} at character {exc.pos})"
    return f"{prefix}*: {error}"


def _lookup(data: Any, key: Sequence[Any]) -> bool:
    """Whether ``data`` holds a value at ``key`` (mapping keys and list indexes)."""
    for part in key:
        holds = part in data if isinstance(data, Mapping) else (
            isinstance(data, list) and isinstance(part, int) and part < len(data))
        if not holds:
            return False
        data = data[part]
    return True


def _key_path(datas: list[Mapping[str, Any]], loc: Sequence[Any]) -> list[Any]:
    """The error's location as keys of the input: union tags (``rest``, ``soap``, ``str``…) are dropped."""
    key: list[Any] = []
    for part in loc:
        candidate = [*key, part]
        if any(_lookup(data, candidate) for data in datas) or part == loc[-1]:
            key = candidate
    return key


def _origin(key: list[Any], layers: list[tuple[str, dict[str, Any]]], environment: Mapping[str, Any],
            arguments: Mapping[str, Any]) -> str:
    """The highest layer that sets the key, else the highest that sets its longest set prefix."""
    for length in range(len(key), 0, -1):
        prefix = key[:length]
        if _lookup(arguments, prefix):
            return "arguments"
        if _lookup(environment, prefix):
            return _environment_name(prefix)
        setters = [origin for origin, data in layers if _lookup(data, prefix)]
        if setters:
            return setters[-1]
    return "configuration"


def _environment_name(key: list[Any]) -> str:
    present = {name.upper() for name in os.environ}
    names = [part for part in key if isinstance(part, str)]
    for length in range(len(names), 0, -1):
        name = ENV_PREFIX + "__".join(names[:length]).upper()
        if name in present:
            return name
    return ENV_PREFIX + "__".join(names).upper()
