"""`bisector config schema` (what editors validate bisector.yaml with) against the loader
and against docs/config.md: its defaults are valid values, its limits are the loader's,
and every key it has is documented (and the other way round)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from bisector.config import parse_config
from bisector.errors import ConfigError
from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    done = run_cli("config", "schema")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _objects(root: dict[str, Any], node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The object schemas a property may hold: itself, an anyOf branch, a list's items."""
    node = _resolve(root, node)
    if "properties" in node:
        yield node
    for branch in node.get("anyOf", []):
        yield from _objects(root, branch)
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        for inner in _objects(root, node["items"]):
            yield {**inner, "_list": True}
    if isinstance(node.get("additionalProperties"), dict):  # `metrics`: name -> settings
        yield from _objects(root, node["additionalProperties"])


def _keys(
    root: dict[str, Any], node: dict[str, Any], prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(key path, property schema, is a leaf) for every key; list items as `[]`, a map's
    values (`metrics.<name>`) as its own keys (`metrics.direction`), as config.md names them."""
    for obj in _objects(root, node):
        for name, prop in obj["properties"].items():
            path = f"{prefix}{name}"
            inner = list(_objects(root, prop))
            yield path, prop, not inner
            for sub in inner:
                mark = "[]" if sub.get("_list") else ""
                yield from _keys(root, sub, f"{path}{mark}.")


def test_every_default_in_the_schema_is_a_value_the_schema_accepts(schema: dict[str, Any]) -> None:
    # An editor offers the default: `threshold` once showed {"value": 0.05, "relative": true},
    # which neither the schema's own pattern nor bisector.yaml accepts.
    bad = []
    for path, prop, _leaf in _keys(schema, schema):
        if "default" not in prop:
            continue
        check = Draft202012Validator({**prop, "$defs": schema["$defs"]})
        if not check.is_valid(prop["default"]):
            bad.append(f"{path}: {prop['default']!r}")
    assert bad == []
    defaults = {path: prop.get("default") for path, prop, _ in _keys(schema, schema)}
    assert defaults["metrics"] is None  # required, no default
    assert schema["$defs"]["Metric"]["properties"]["threshold"]["default"] == "5%"
    assert defaults["guard.canary.threshold"] == "5%"
    # default_factory defaults are shown too (they were left out)
    assert defaults["snapshots.configs"] == ["configs/**/*.yaml"]
    assert defaults["execution.ray.resources_per_trial"] == {"num_cpus": 1.0}
    assert defaults["benchmark.env"] == {}


def test_repeats_max_minimum_is_the_smallest_value_the_loader_accepts(
    schema: dict[str, Any],
) -> None:
    accepted = []
    for n in range(1, 8):
        text = f"benchmark:\n  command: [python, b.py]\n  repeats: {{min: 1, max: {n}}}\nmetrics:\n  lat: {{direction: lower}}\n"
        try:
            parse_config(text)
        except ConfigError:
            continue
        accepted.append(n)
    prop = schema["$defs"]["Repeats"]["properties"]["max"]
    assert prop["minimum"] == min(accepted) == 5


def test_the_example_configs_validate_against_the_schema(schema: dict[str, Any]) -> None:
    check = Draft202012Validator(schema)
    for path in [ROOT / "configs" / "bisector.example.yaml"]:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in check.iter_errors(data)]
        assert errors == [], path


def _documented_keys(page: Path) -> set[str]:
    """The key column of every table of docs/config.md, with its section's prefix; a row
    that is not inside a table (a table broken by a paragraph) is reported."""
    keys: set[str] = set()
    prefix: str | None = None
    previous = ""
    for line in page.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#{2,3} `([a-z_.]+)`$", line)
        if heading:
            name = heading.group(1)
            prefix = None if name == "benchmark.preload" else name + "."
        elif line.startswith("| `") and prefix is not None:
            assert previous.startswith("|"), f"row outside a table in {page.name}: {line[:40]}"
            first = line.split("|")[1]
            keys.update(prefix + k for k in re.findall(r"`([^`]+)`", first))
        previous = line
    return keys


def test_config_md_documents_every_key_of_the_schema(schema: dict[str, Any]) -> None:
    keys = list(_keys(schema, schema))
    leaves = {path for path, _prop, leaf in keys if leaf}
    every = {path for path, _prop, _leaf in keys}
    documented = _documented_keys(ROOT / "docs" / "config.md")
    assert sorted(leaves - documented) == []
    assert sorted(documented - every) == []


#: A config with every optional section present, so that a key under any of them can be
#: set to a wrong value and reach validation.
_FULL: dict[str, Any] = {
    "benchmark": {"command": ["python", "b.py"]},
    "metrics": {"m": {"direction": "lower"}},
    "daemon": {"alerts": [{}]},
    "guard": {
        "prometheus": "http://127.0.0.1:9090",
        "checks": [{"name": "a", "query": "q", "max": 1}],
        "canary": {"baseline": "b", "canary": "c"},
    },
}


def _document_with(path: str, value: object) -> dict[str, Any]:
    """`_FULL` with `value` at the schema's key path (`daemon.alerts[].retries`,
    `metrics.direction` for a metric's key)."""
    doc = json.loads(json.dumps(_FULL))
    node: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        if part == "metrics":
            node = node["metrics"]["m"] if parts[-1] != "metrics" else node
            continue
        name = part.removesuffix("[]")
        node = node.setdefault(name, {})
        if part.endswith("[]"):
            node = node[0]
    node[parts[-1]] = value
    return doc


def test_no_config_error_names_a_python_class_or_speaks_pydantic(schema: dict[str, Any]) -> None:
    """`rollback: 5` said "Input should be a valid dictionary or instance of Rollback":
    every wrong value at every key is said in the file's words (`null`, not `None`)."""
    classes = set(schema["$defs"])
    said: dict[str, str] = {}
    for path, _prop, _leaf in _keys(schema, schema):
        for value in (5, 2.5, "x", True, [1], {"zz": 1}, None):
            try:
                parse_config(yaml.safe_dump(_document_with(path, value)))
            except ConfigError as exc:
                said[f"{path} = {value!r}"] = exc.message
    assert len(said) > 200  # the walk reached the keys
    bad = {
        where: message
        for where, message in said.items()
        if "Input should" in message
        or "Dictionary" in message
        or re.search(r"\.(literal|function|int|float)\b|\bNone\b|\{'", message)
        or any(re.search(rf"\b{name}\b", message) for name in classes)
    }
    assert bad == {}
