"""JSON form of the domain's dataclasses: event payloads and snapshots as stored in Postgres.

One generic encoding instead of a hand-written mapping per event type, so adding an event is
adding a dataclass. The rules: a dataclass is an object of its fields; `Price` is its integer
nanos; an enum is its member name; a datetime is ISO 8601 UTC with microseconds; tuples and sets
are lists (sets sorted); None is null. Never a float for money. Decoding reads the field types,
so what is stored is plain, readable JSON.

`canonical_json` is the byte form that event hashes are computed over: sorted keys, no spaces.

`EventCodec` adds the event-type registry and upcasting: a payload stored at an older
`schema_version` is brought forward one step at a time by registered upcasters when read. The
stored event is never rewritten (its hash covers the original).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from fillpath.core.errors import IntegrityError
from fillpath.core.price import Price

JSON = Any
T = TypeVar("T")
Upcaster = Callable[[dict[str, JSON]], dict[str, JSON]]


def encode(value: object) -> JSON:
    """The JSON-compatible form of a domain value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encoder(type(value))(value)
    return _encode_any(value)


def decode(cls: type[T], data: JSON) -> T:
    """Rebuilds a dataclass of type `cls` from its `encode` form."""
    return typing.cast(T, _decoder(typing.cast(type, cls))(data))


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: fillpath times are UTC-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def canonical_json(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Converters are built once per type from its type hints (the hot path of every append and
# load), rather than inspecting each value as it goes.

Converter = typing.Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _encode_any(value: object) -> JSON:
    if isinstance(value, Enum):
        return value.name
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, Price):
        return value.nanos
    if isinstance(value, datetime):
        return format_time(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encoder(type(value))(value)
    if isinstance(value, set | frozenset):
        return sorted(_encode_any(v) for v in value)
    if isinstance(value, tuple | list):
        return [_encode_any(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode_any(v) for k, v in value.items()}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _optional(inner: Converter) -> Converter:
    return lambda value: None if value is None else inner(value)


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner, True
    return tp, False


def _encoder_for(tp: Any) -> Converter:
    tp, optional = _unwrap_optional(tp)
    convert: Converter
    origin = typing.get_origin(tp)
    if tp in (str, int, bool, float):
        convert = _identity
    elif tp is Price:
        convert = _price_nanos
    elif tp is datetime:
        convert = format_time
    elif isinstance(tp, type) and issubclass(tp, Enum):
        convert = _enum_name
    elif dataclasses.is_dataclass(tp):
        convert = _encoder(typing.cast(type, tp))
    elif origin in (set, frozenset):
        convert = _sorted_list
    elif origin is tuple:
        convert = _tuple_encoder(typing.get_args(tp))
    else:
        convert = _encode_any  # mappings: rare and small
    return _optional(convert) if optional else convert


def _tuple_encoder(args: tuple[Any, ...]) -> Converter:
    """A list of the items' encodings (a tuple of plain values: just the list)."""
    if len(args) == 2 and args[1] is Ellipsis:
        item = _encoder_for(args[0])
        return list if item is _identity else lambda value: [item(v) for v in value]
    items = [_encoder_for(a) for a in args]
    if all(f is _identity for f in items):
        return list
    return lambda value: [f(v) for f, v in zip(items, value, strict=True)]


def _price_nanos(value: Price) -> int:
    return value.nanos


def _enum_name(value: Enum) -> str:
    return value.name


def _sorted_list(value: Any) -> list[Any]:
    return sorted(_encode_any(v) for v in value)


@functools.cache
def _encoder(cls: type) -> Converter:
    fields = [(name, _encoder_for(tp)) for name, tp in _field_types(cls).items()]

    def encode_instance(value: Any) -> dict[str, JSON]:
        return {name: convert(getattr(value, name)) for name, convert in fields}

    return encode_instance


def _decoder_for(tp: Any) -> Converter:
    tp, optional = _unwrap_optional(tp)
    convert: Converter
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder_for(args[0])
            convert = lambda data: tuple(item(d) for d in data)  # noqa: E731
        else:
            items = [_decoder_for(a) for a in args]
            convert = lambda data: tuple(f(d) for f, d in zip(items, data, strict=True))  # noqa: E731
    elif origin in (set, frozenset):
        (inner,) = typing.get_args(tp)
        item, build = _decoder_for(inner), origin
        convert = lambda data: build(item(d) for d in data)  # noqa: E731
    elif origin is dict:
        _, inner = typing.get_args(tp)
        item = _decoder_for(inner)
        convert = lambda data: {k: item(v) for k, v in data.items()}  # noqa: E731
    elif tp is Price:
        convert = Price
    elif tp is datetime:
        convert = parse_time
    elif isinstance(tp, type) and issubclass(tp, Enum):
        convert = tp.__getitem__
    elif dataclasses.is_dataclass(tp):
        convert = _decoder(typing.cast(type, tp))
    elif tp is float:
        convert = float
    else:
        convert = _identity
    return _optional(convert) if optional else convert


@functools.cache
def _decoder(cls: type) -> Converter:
    fields = {name: _decoder_for(tp) for name, tp in _field_types(cls).items()}
    build: Any = cls

    def decode_instance(data: dict[str, JSON]) -> Any:
        return build(**{name: fields[name](value) for name, value in data.items()})

    return decode_instance


class EventCodec:
    """Event types by name, their payloads, and the upcasters between schema versions."""

    def __init__(
        self,
        event_types: Iterable[type],
        upcasters: Mapping[tuple[str, int], Upcaster] | None = None,
    ) -> None:
        self._types = {cls.__name__: cls for cls in event_types}
        self._upcasters = dict(upcasters or {})

    def type_name(self, event: object) -> str:
        name = type(event).__name__
        if name not in self._types:
            raise TypeError(f"{name} is not a registered event type")
        return name

    def schema_version(self, event: object) -> int:
        return int(getattr(type(event), "schema_version", 1))

    def to_payload(self, event: object) -> dict[str, JSON]:
        payload = encode(event)
        assert isinstance(payload, dict)
        return payload

    def from_payload(self, type_name: str, schema_version: int, payload: dict[str, JSON]) -> object:
        """Decodes a stored payload, upcasting it to the event type's current schema version."""
        cls = self._types.get(type_name)
        if cls is None:
            raise IntegrityError(f"unknown event type {type_name!r} in the store")
        current = int(getattr(cls, "schema_version", 1))
        version = schema_version
        while version < current:
            step = self._upcasters.get((type_name, version))
            if step is None:
                raise IntegrityError(
                    f"no upcaster for {type_name} from schema version {version} to {version + 1}"
                )
            payload = step(dict(payload))
            version += 1
        if version > current:
            raise IntegrityError(
                f"{type_name} schema version {schema_version} is newer than this code ({current})"
            )
        return decode(cls, payload)
