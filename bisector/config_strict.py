"""How `bisector.yaml` reads YAML's scalars: the base model of every config section.

A number key takes a YAML number and a boolean key a YAML boolean, never text that looks
like one (pydantic's lax mode would read `"9464"` as 9464, `true` as 1 and `"yes"` as
true); a wrong value
is said in YAML's words (`must be a list, not 5`), never as a Python class. Only the
config models (`bisector.config*`) use this; the values' own parsers are in
`bisector.config_values`.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUseDefault


def _short(value: object) -> str:
    """A value in an error as YAML writes it (`null`, `true`, `'text'`, `2.5`, `a list`),
    cut to a line: error messages echo what the user wrote, not megabytes of it."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, Mapping | list):  # not Python's `{'zz': 1}`
        return "a mapping" if isinstance(value, Mapping) else "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


_INT_ERRORS = frozenset({"int_parsing", "int_from_float", "int_type", "int_parsing_size"})


def whole_number_error(err: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """pydantic's word for a value that is not an int ("unable to parse string as an
    integer") as what the key needs (`not_a_number`); None for other errors."""
    if err["type"] not in _INT_ERRORS:
        return None
    return not_a_number(err.get("input"), whole=True)


_YAML_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
_YAML_BOOL_TAG = "tag:yaml.org,2002:bool"


def _unquoted_tag(text: str) -> str:
    """The type YAML gives `text` written without quotes (its tag: int, float, bool, str)."""
    return str(yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False)))  # type: ignore[no-untyped-call]


def not_a_number(
    value: object, *, whole: bool, choices: tuple[str, ...] = ()
) -> tuple[str, str | None]:
    """What a key that takes a (whole) number says of `value`, and how to write it: text
    that YAML would read as a number unquoted (`"9464"`) is to lose its quotes, and text
    it reads as a string however written (`1e9`: an exponent without a dot) is to be
    written in digits."""
    need = "a whole number" if whole else "a number"
    if choices:  # `gpus`: all, none or a whole number
        need = ", ".join((*choices[:-1], f"{choices[-1]} or {need}"))
    message = f"must be {need}, not {_short(value)}"
    if not isinstance(value, str):
        return message, None
    try:
        number = float(value)
    except ValueError:
        return message, None
    if not math.isfinite(number) or (whole and not number.is_integer()):
        return message, None
    written = value.strip()
    # What YAML makes of it unquoted: a number means the quotes made it text.
    if _unquoted_tag(written) in _YAML_NUMBER_TAGS:
        return message, f"in quotes {written} is text: write it without quotes"
    digits = str(int(number)) if number.is_integer() else repr(number)
    if "e" in digits:  # 1e-09: YAML would read this as text too
        return message, None
    return message, f"YAML reads {written} as text: write it in digits ({digits})"


#: pydantic's wrong-type errors, as what the key takes ("Input should be a valid
#: dictionary or instance of Rollback" named a Python class).
_TYPE_ERRORS = {
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
    "string_type": "text",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "float_type": "a number",
    "float_parsing": "a number",
}


def type_error(err: Mapping[str, Any]) -> str | None:
    """The message of a value of the wrong type (`must be a list, not 5`), else None."""
    need = _TYPE_ERRORS.get(err["type"])
    if err["type"] in ("literal_error", "enum"):  # one of the choices: "'report' or 'rollback'"
        need = err.get("ctx", {}).get("expected")
    return None if need is None else f"must be {need}, not {_short(err.get('input'))}"


def _members(annotation: Any) -> tuple[Any, ...]:
    """The types a key takes: those of a union (`int | None`), else the one."""
    union = get_origin(annotation) in (Union, types.UnionType)
    return get_args(annotation) if union else (annotation,)


def number_input(value: object, annotation: Any) -> object:
    """`value` if it may stand for the number `annotation` takes (an int or float, maybe in
    a union with None or a Literal), else a `ValueError` saying what the key takes.

    pydantic's lax mode would read YAML's `true` as 1, the text "9464" as 9464 and 2.5 as
    the choice it fails last; docs/config.md promises a number key refuses them. A whole
    float (`3.0`) is a whole number and passes (pydantic makes it 3).
    """
    members = _members(annotation)
    if int not in members and float not in members:
        return value
    whole = int in members
    choices = tuple(c for m in members if get_origin(m) is Literal for c in get_args(m))
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {str(value).lower()}")
    number = isinstance(value, int) or (
        isinstance(value, float) and (not whole or value.is_integer())
    )
    # Anything else is said here, once: pydantic would list what each member of a union
    # (`gpus`: a choice or an int) refuses, under keys such as `gpus.literal['all','none']`.
    if not (number or value in choices or (value is None and type(None) in members)):
        raise HintedValueError(*not_a_number(value, whole=whole, choices=choices))
    return value


def boolean_input(value: object, annotation: Any) -> object:
    """`value` if the boolean key `annotation` takes it, else a `HintedValueError`.

    A boolean is what YAML reads as one: `true`, `false` (and YAML 1.1's unquoted `yes`,
    `no`, `on`, `off`, which PyYAML reads as booleans). pydantic's lax mode would also take
    the text "yes", "1" and "off" and the numbers 1 and 0; a number key refuses `true`, so a
    boolean key refuses numbers and text alike.
    """
    members = _members(annotation)
    if bool not in members or isinstance(value, bool):
        return value
    if value is None and type(None) in members:
        return value
    hint = "write true or false"
    if isinstance(value, str) and _unquoted_tag(value.strip()) == _YAML_BOOL_TAG:
        hint = f"in quotes {value.strip()} is text: write true or false, without quotes"
    raise HintedValueError(f"must be true or false, not {_short(value)}", hint)


#: A number inside a container (`resources_per_trial`'s values), checked as `Strict` checks
#: a number field.
Number = Annotated[float, BeforeValidator(lambda value: number_input(value, float))]


class HintedValueError(ValueError):
    """A refused value with a `hint:` for the person fixing it (`parse_config` shows it)."""

    def __init__(self, message: str, hint: str | None) -> None:
        super().__init__(message)
        self.hint = hint


class RefuseEmpty:
    """Marks a list key (`Annotated[list[str], RefuseEmpty(...)]`) that nothing written
    after it leaves ambiguous: it is refused instead of taking its default, and `why` says
    what to write (`snapshots.configs: is empty: list the config files ...`)."""

    def __init__(self, why: str) -> None:
        self.why = why


def empty_list_input(value: object, field: FieldInfo) -> object:
    """A list key with nothing after it (`preload:`, which YAML reads as null) is the key
    left out: its default, as an empty section is the section left out; a key without
    one is then named as missing. A key marked `RefuseEmpty` is refused instead, and so
    is `[]` at one that is required (`benchmark.command`: pydantic would say "List should
    have at least 1 item after validation")."""
    if get_origin(field.annotation) is not list or not (value is None or value == []):
        return value
    refused = next((m for m in field.metadata if isinstance(m, RefuseEmpty)), None)
    if refused is not None and (value is None or field.is_required()):
        raise ValueError(f"is empty: {refused.why}")
    if value is None:
        raise PydanticUseDefault
    return value


class Strict(BaseModel):
    """The base of every config model: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_defaults(cls, value: Any) -> Any:
        """A section with nothing under it (`rollback:`, which YAML reads as null) is the
        section with every default, as if absent; a key it requires is then named as
        missing (`benchmark.command`)."""
        return {} if value is None else value

    @field_validator("*", mode="before")
    @classmethod
    def _scalars_as_yaml_reads_them(cls, value: Any, info: ValidationInfo) -> Any:
        """A number key refuses YAML's `true` (pydantic would read it as 1: `repeats: {min:
        true}` would run with one trial a side) and text (`"9464"`), and a boolean key
        refuses numbers and text (`"yes"`, `1`), as config.md says; an empty list key is
        its default (or refused: `empty_list_input`)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        value = empty_list_input(value, field)
        if any(isinstance(m, BeforeValidator) for m in field.metadata):
            return value  # a value with its own parser (a duration: `30s` is text)
        return boolean_input(number_input(value, field.annotation), field.annotation)
