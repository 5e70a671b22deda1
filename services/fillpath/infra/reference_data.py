"""Instrument and account reference data from YAML files.

A folder with ``instruments.yaml`` and ``accounts.yaml`` (or the defaults shipped in the package,
fillpath/defaults/). Parsing and checking is the core's; this only reads the files and says which
file a problem is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument, instruments_from_mapping
from fillpath.core.risk import Account, accounts_from_mapping


@dataclass(frozen=True, slots=True)
class ReferenceData:
    instruments: dict[str, Instrument]
    accounts: dict[str, Account]


def read_yaml(folder: Path | None, name: str) -> tuple[str, Any]:
    """(where it came from, the parsed YAML) of `name` in `folder` or the shipped defaults."""
    if folder is None:
        text = (files("fillpath") / "defaults" / name).read_text(encoding="utf-8")
        origin = f"fillpath/defaults/{name}"
    else:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        origin = str(path)
    try:
        return origin, yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise InvalidArgument.single(origin, "", f"not valid YAML: {err}") from err


def _in_file(origin: str, err: InvalidArgument) -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation(f"{origin}: {v.field}", v.value, v.reason) for v in err.violations]
    )


def load_reference_data(folder: Path | None = None) -> ReferenceData:
    """Reads instruments.yaml and accounts.yaml from `folder` (None: the shipped defaults).

    Raises:
        InvalidArgument: every bad entry, named by file and path.
    """
    origin, data = read_yaml(folder, "instruments.yaml")
    try:
        instruments = instruments_from_mapping(data)
    except InvalidArgument as err:
        raise _in_file(origin, err) from err
    origin, data = read_yaml(folder, "accounts.yaml")
    try:
        accounts = accounts_from_mapping(data)
    except InvalidArgument as err:
        raise _in_file(origin, err) from err
    return ReferenceData(instruments=instruments, accounts=accounts)
