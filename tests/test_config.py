"""bisector.yaml parsing: typed values and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bisector.config import Threshold, load_config, parse_config
from bisector.config_values import parse_duration, parse_threshold
from bisector.core.types import Direction
from bisector.errors import ConfigError
from bisector.testing.gitutil import commit, make_repo
from tests.conftest import run_cli, tree_digest

GOOD = """\
benchmark:
  command: ["python", "bench.py"]
  timeout: 5m
  repeats: {min: 3, max: 15}
metrics:
  latency_ms: {direction: lower, threshold: 5%}
  accuracy:   {direction: higher, threshold: 0.01}
environment:
  builder: venv
  python: "3.11"
  requirements: [requirements.txt]
  docker: {base_image: "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04", gpus: all, network: none}
snapshots:
  configs: ["configs/**/*.yaml"]
  store: .bisector
rollback:
  target: /srv/serving/configs
  strategy: atomic
  timeout: 30s
  on_failure: alert_and_pause
  health_check: ["python", "-m", "serving.health"]
daemon:
  schedule: "0 2 * * *"
  branch: main
  alerts: [{webhook: "https://hooks.example.org/x"}]
"""


def test_design_example_parses_into_typed_values() -> None:
    """The example of DESIGN.md loads, with durations in seconds and typed thresholds."""
    cfg = parse_config(GOOD)
    assert cfg.benchmark.timeout == 300.0
    assert cfg.rollback.timeout == 30.0
    assert cfg.metrics["latency_ms"].threshold == Threshold(0.05, relative=True)
    assert cfg.metrics["accuracy"].threshold == Threshold(0.01, relative=False)
    assert cfg.metrics["accuracy"].direction is Direction.HIGHER
    assert cfg.environment.docker.gpus == "all"
    assert cfg.metric(None)[0] == "latency_ms"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        (12, 12.0),
    ],
)
def test_durations(text: object, expected: float) -> None:
    """Durations accept ms, s, m, h and bare seconds."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "-3s", "0s", True, "5 parsecs"])
def test_bad_durations(text: object) -> None:
    """Nonsense durations are refused."""
    with pytest.raises(ValueError):
        parse_duration(text)


def test_thresholds() -> None:
    """A percentage is relative to the baseline, a number is absolute."""
    assert parse_threshold("5%").min_shift(200.0) == pytest.approx(10.0)
    assert parse_threshold(0.01).min_shift(200.0) == 0.01
    with pytest.raises(ValueError):
        parse_threshold("five")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            GOOD.replace("  timeout: 5m", "  tmeout: 5m"),
            "bisector.yaml:3: benchmark.tmeout: unknown key",
        ),
        (
            GOOD.replace("timeout: 30s", "timeout: soon"),
            "bisector.yaml:19: rollback.timeout: not a duration",
        ),
        (
            GOOD.replace("direction: higher", "direction: up"),
            "bisector.yaml:7: metrics.accuracy.direction",
        ),
        (
            GOOD.replace("builder: venv", "builder: kubernetes"),
            "bisector.yaml:9: environment.builder",
        ),
        ("benchmark: [oops\n", "bisector.yaml:2: malformed YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("metrics: {a: {direction: lower}}\n", "benchmark: required key is missing"),
        # a key given twice: the second would silently win
        (
            GOOD + "benchmark:\n  command: [other]\n",
            "bisector.yaml:26: malformed YAML: found duplicate key 'benchmark'",
        ),
        (
            GOOD.replace("  timeout: 5m", "  timeout: 5m\n  timeout: 1h"),
            "bisector.yaml:4: malformed YAML: found duplicate key 'timeout'",
        ),
        # YAML's true is not a number (pydantic would read it as 1)
        (
            GOOD.replace("{min: 3, max: 15}", "{min: true, max: 15}"),
            "bisector.yaml:4: benchmark.repeats.min: expected a number, not true",
        ),
        # a list item is named as config.md names keys (it said daemon.alerts.0.retries)
        (
            GOOD.replace('x"}]', 'x", retries: many}]'),
            "bisector.yaml:25: daemon.alerts[0].retries: must be a whole number, not 'many'",
        ),
        (
            GOOD.replace('["python", "bench.py"]', '["python", 3.5]'),
            "bisector.yaml:2: benchmark.command[1]: ",
        ),
        # the benchmark's `_` keys are metadata: such a metric could never be measured
        (
            GOOD.replace("accuracy:", "_accuracy:"),
            "bisector.yaml:5: metrics: '_accuracy': a metric name cannot start with '_'",
        ),
    ],
)
def test_errors_name_file_line_and_key(text: str, fragment: str) -> None:
    """Every invalid config is one ConfigError naming where the problem is."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bisector.yaml")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "said", "hint"),
    [
        # YAML 1.1 reads an exponent without a dot as a string
        ("1e9", "must be a whole number, not '1e9'", "YAML reads 1e9 as text: write it in digits"),
        ("-2E1", "must be a whole number, not '-2E1'", "write it in digits (-20)"),
        ("1.5", "must be a whole number, not 1.5", None),
        ("fast", "must be a whole number, not 'fast'", None),
        ("null", "must be a whole number, not null", None),
    ],
)
def test_a_value_that_is_not_a_whole_number_names_the_key(
    value: str, said: str, hint: str | None
) -> None:
    """`repeats: {min: 1e9}` said "Input should be a valid integer, unable to parse string
    as an integer": it names the key, says what it needs and how to write 1e9."""
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD.replace("{min: 3, max: 15}", f"{{min: {value}, max: 15}}"), "b.yaml")
    assert str(info.value) == f"b.yaml:4: benchmark.repeats.min: {said}"
    if hint is None:
        assert info.value.hint is None
    else:
        assert info.value.hint is not None and hint in info.value.hint


def test_a_merge_key_may_still_be_overridden() -> None:
    """`<<: *defaults` then the mapping's own key is YAML's override, not a duplicate."""
    text = GOOD.replace(
        "benchmark:\n  command:", "benchmark:\n  <<: {timeout: 1h, command: [x]}\n  command:"
    )
    cfg = parse_config(text, "bisector.yaml")
    assert cfg.benchmark.command == ["python", "bench.py"] and cfg.benchmark.timeout == 300.0


def test_missing_config_file_has_a_hint(tmp_path: Path) -> None:
    """No bisector.yaml: an error with a hint on how to provide one."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.hint and "--config" in info.value.hint


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_repo_folder_that_is_not_there_is_named_as_such(tmp_path: Path, kind: str) -> None:
    """`--repo /typo` said "no config file at /typo/bisector.yaml" with a hint to create one
    there: it now says the folder does not exist (or is a file), for every command."""
    repo = tmp_path / "nope"
    if kind == "file":
        repo.write_text("not a folder\n")
    before = tree_digest(tmp_path)
    for args in (("runs",), ("config", "check"), ("run", "--good", "a", "--bad", "b")):
        done = run_cli(*args, "--repo", str(repo), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        said = "does not exist" if kind == "missing" else "is not a folder"
        assert done.stderr.splitlines() == [
            f"error: the repository folder {repo} {said}",
            "hint: pass --repo PATH of a git checkout (default: the current folder)",
        ]
    assert tree_digest(tmp_path) == before


def test_a_command_run_from_a_subfolder_of_the_checkout_points_at_its_root(
    tmp_path: Path,
) -> None:
    """`cd configs && bisector rollback ...` said "no config file at bisector.yaml" with a
    hint to create one, and `init` there "not a git repository": both now name the
    checkout's root, and nothing is written."""
    repo = make_repo(tmp_path / "svc")
    commit(repo, {"configs/serving.yaml": "a: 1\n"}, "Configs", tag="v1")
    (repo / "bisector.yaml").write_text(GOOD)
    sub = (repo / "configs").resolve()
    before = tree_digest(tmp_path)
    hint = (
        f"hint: {sub} is a folder inside the git repository {repo.resolve()}: run bisector "
        f"from {repo.resolve()}, or pass --repo {repo.resolve()}"
    )
    done = run_cli("rollback", "--to", "v1", "--dry-run", cwd=sub)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["error: no config file at bisector.yaml", hint]
    done = run_cli("init", cwd=sub)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: not a git repository: {sub} (a folder inside one, not its root)",
        hint,
    ]
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize(
    "webhook, why",
    [
        ("ftp://user:s3cret@hooks.example.org/x", "its scheme is ftp"),
        ("file:///etc/s3cret", "its scheme is file"),
        ("hooks.slack.com/services/T0/B0/s3cret", "it has no scheme (https://)"),
        ("https:///services/s3cret", "it names no host"),
    ],
)
def test_a_webhook_that_is_no_http_url_is_refused_on_load_without_showing_it(
    webhook: str, why: str
) -> None:
    """`config check` passed a webhook the alert could never be sent to: the failure came
    only with the alert, after a failed health check. Refused on load now, and since the
    URL is a secret, the error does not quote it."""
    text = GOOD.replace("https://hooks.example.org/x", webhook)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = info.value.message
    assert message.startswith("bisector.yaml:25: daemon.alerts[0].webhook: not an http(s) URL")
    assert why in message and "s3cret" not in message and "s3cret" not in (info.value.hint or "")
    assert info.value.hint and "https://" in info.value.hint


@pytest.mark.parametrize("webhook", ["https://hooks.example.org/x", "http://127.0.0.1:8/h", ""])
def test_an_http_webhook_or_none_is_accepted(webhook: str) -> None:
    cfg = parse_config(GOOD.replace("https://hooks.example.org/x", webhook))
    assert cfg.daemon.alerts[0].webhook == webhook


#: The two required sections, for a test to add one section below (line 5 on).
MINIMAL = "benchmark:\n  command: [python, bench.py]\nmetrics:\n  m: {direction: lower}\n"


@pytest.mark.parametrize(
    ("section", "said"),
    [
        (
            'daemon: {metrics_port: "9464"}',
            "daemon.metrics_port: must be a whole number, not '9464'",
        ),
        (
            "daemon: {metrics_port: '9464'}",
            "daemon.metrics_port: must be a whole number, not '9464'",
        ),
        (
            'daemon: {alerts: [{retries: "2"}]}',
            "daemon.alerts[0].retries: must be a whole number, not '2'",
        ),
        (
            "environment: {cache_size: '8'}",
            "environment.cache_size: must be a whole number, not '8'",
        ),
        (
            "environment: {docker: {gpus: '2'}}",
            "environment.docker.gpus: must be all, none or a whole number, not '2'",
        ),
        (
            "environment: {docker: {cpus: '2.5'}}",
            "environment.docker.cpus: must be a number, not '2.5'",
        ),
        ("execution: {workers: '2'}", "execution.workers: must be a whole number, not '2'"),
        (
            "execution: {ray: {resources_per_trial: {num_cpus: '2'}}}",
            "execution.ray.resources_per_trial.num_cpus: must be a number, not '2'",
        ),
        (
            "guard: {prometheus: 'http://127.0.0.1:9090', checks: [{name: a, query: q, max: '5'}]}",
            "guard.checks[0].max: must be a number, not '5'",
        ),
    ],
)
def test_a_number_key_refuses_text_even_when_it_is_digits(section: str, said: str) -> None:
    """config.md: a number key refuses text; pydantic's lax mode read `"9464"` as 9464."""
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + section + "\n", "bisector.yaml")
    assert info.value.message == f"bisector.yaml:5: {said}"
    assert info.value.hint is not None and info.value.hint.endswith("write it without quotes")


def test_repeats_in_quotes_is_refused_with_the_line_and_a_hint() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(GOOD.replace("{min: 3, max: 15}", '{min: "3", max: 15}'), "b.yaml")
    assert info.value.message == "b.yaml:4: benchmark.repeats.min: must be a whole number, not '3'"
    assert info.value.hint == "in quotes 3 is text: write it without quotes"


def test_a_whole_float_is_a_whole_number_and_true_is_no_number() -> None:
    """`3.0` is the whole number 3 (as the schema's `integer` means it); `true` is no count."""
    cfg = parse_config(GOOD.replace("{min: 3, max: 15}", "{min: 3.0, max: 15}"))
    assert cfg.benchmark.repeats.min == 3 and isinstance(cfg.benchmark.repeats.min, int)
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + "execution: {ray: {resources_per_trial: {num_gpus: true}}}\n")
    assert info.value.message == (
        "bisector.yaml:5: execution.ray.resources_per_trial.num_gpus: expected a number, not true"
    )


@pytest.mark.parametrize(
    ("text", "error", "hint"),
    [
        (
            GOOD + '  metrics_port: "9464"\n',
            "26: daemon.metrics_port: must be a whole number, not '9464'",
            "hint: in quotes 9464 is text: write it without quotes",
        ),
        (
            MINIMAL + 'environment:\n  no_index: "yes"\n',
            "6: environment.no_index: must be true or false, not 'yes'",
            "hint: in quotes yes is text: write true or false, without quotes",
        ),
    ],
)
def test_config_check_refuses_a_quoted_value_in_one_error(
    tmp_path: Path, text: str, error: str, hint: str
) -> None:
    """A number or a boolean in quotes is text: one error line, one hint, nothing written."""
    repo = make_repo(tmp_path / "svc")
    (repo / "bisector.yaml").write_text(text)
    before = tree_digest(tmp_path)
    done = run_cli("config", "check", "--repo", str(repo))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: {repo / 'bisector.yaml'}:{error}", hint]
    assert tree_digest(tmp_path) == before


_GUARD = "guard: {prometheus: 'http://127.0.0.1:9090', checks: [{name: a, query: q, max: 1}], "


@pytest.mark.parametrize(
    ("section", "said", "hint"),
    [
        (
            "environment: {no_index: 'yes'}",
            "environment.no_index: must be true or false, not 'yes'",
            "in quotes yes is text: write true or false, without quotes",
        ),
        (
            'environment: {no_index: "true"}',
            "environment.no_index: must be true or false, not 'true'",
            "in quotes true is text: write true or false, without quotes",
        ),
        (
            "environment: {no_index: '1'}",
            "environment.no_index: must be true or false, not '1'",
            "write true or false",
        ),
        (
            "environment: {no_index: 1}",
            "environment.no_index: must be true or false, not 1",
            "write true or false",
        ),
        (
            "environment: {no_index: 0}",
            "environment.no_index: must be true or false, not 0",
            "write true or false",
        ),
        (
            _GUARD + "bisect_after_rollback: 'on'}",
            "guard.bisect_after_rollback: must be true or false, not 'on'",
            "in quotes on is text: write true or false, without quotes",
        ),
        (
            _GUARD + "bisect_after_rollback: 1.0}",
            "guard.bisect_after_rollback: must be true or false, not 1.0",
            "write true or false",
        ),
    ],
)
def test_a_boolean_key_refuses_text_and_numbers(section: str, said: str, hint: str) -> None:
    """pydantic's lax mode read `"yes"`, `"1"` and `1` as true; a boolean key now takes only
    YAML's booleans, as a number key takes only numbers."""
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + section + "\n", "bisector.yaml")
    assert info.value.message == f"bisector.yaml:5: {said}"
    assert info.value.hint == hint


@pytest.mark.parametrize(
    ("written", "value"), [("true", True), ("false", False), ("yes", True), ("off", False)]
)
def test_a_boolean_key_takes_what_yaml_reads_as_a_boolean(written: str, value: bool) -> None:
    """YAML 1.1's unquoted `yes`/`no`/`on`/`off` are booleans to PyYAML: they stay accepted."""
    cfg = parse_config(
        MINIMAL
        + f"environment: {{no_index: {written}}}\n"
        + _GUARD
        + f"bisect_after_rollback: {written}}}\n"
    )
    assert cfg.environment.no_index is value
    assert cfg.guard is not None and cfg.guard.bisect_after_rollback is value


@pytest.mark.parametrize(
    "section",
    ["rollback", "environment", "snapshots", "daemon", "execution", "guard"],
)
@pytest.mark.parametrize("empty", ["", " null", " {}"])
def test_an_empty_section_is_every_default(section: str, empty: str) -> None:
    """`rollback:` with nothing under it said "Input should be a valid dictionary or instance
    of Rollback" (a Python class); an empty section is now the section left out."""
    if section == "guard" and empty == " {}":
        return  # a guard needs its Prometheus: below
    cfg = parse_config(f"{MINIMAL}{section}:{empty}\n")
    assert cfg == parse_config(MINIMAL)


@pytest.mark.parametrize(
    "key",
    [
        "benchmark.preload",
        "environment.requirements",
        "environment.extras",
        "environment.find_links",
        "environment.extra_index_urls",
        "daemon.alerts",
        "execution.ray.node_types",
    ],
)
def test_an_empty_list_key_is_its_default(key: str) -> None:
    """`requirements:` with nothing after it said "must be a list, not null"; like an empty
    section, it is now the key left out."""
    *sections, name = key.split(".")
    lines = [f"{'  ' * depth}{section}:" for depth, section in enumerate(sections)]
    text = "\n".join([*lines, f"{'  ' * len(sections)}{name}:"]) + "\n"
    if sections == ["benchmark"]:  # below the required command
        text = MINIMAL.replace("metrics:", f"  {name}:\nmetrics:")
    else:
        text = MINIMAL + text
    assert parse_config(text) == parse_config(MINIMAL)


def test_a_guard_without_checks_or_canary_names_the_key_once() -> None:
    guard = "guard:\n  prometheus: http://127.0.0.1:9090\n  checks:\n"
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + guard)
    assert info.value.message.endswith("guard: needs at least one check or a canary")
    assert "guard: guard" not in info.value.message


def test_an_empty_guard_checks_is_no_checks() -> None:
    guard = "guard:\n  prometheus: http://127.0.0.1:9090\n  canary: {baseline: b, canary: c}\n"
    cfg = parse_config(MINIMAL + guard + "  checks:\n")
    assert cfg.guard is not None and cfg.guard.checks == [] and cfg.guard.canary is not None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            MINIMAL + "snapshots:\n  configs:\n",
            "bisector.yaml:6: snapshots.configs: is empty: list the config files to snapshot, "
            "or remove the key",
        ),
        (
            MINIMAL + "snapshots: {configs: null}\n",
            "bisector.yaml:5: snapshots.configs: is empty: list the config files to snapshot, "
            "or remove the key",
        ),
        (
            MINIMAL.replace("[python, bench.py]", ""),
            "bisector.yaml:2: benchmark.command: is empty: write the benchmark as a list of "
            "words, e.g. [python, bench.py]",
        ),
        (
            MINIMAL.replace("[python, bench.py]", "[]"),
            "bisector.yaml:2: benchmark.command: is empty: write the benchmark as a list of "
            "words, e.g. [python, bench.py]",
        ),
    ],
)
def test_an_empty_list_key_that_has_no_safe_default_is_refused_in_words(
    text: str, said: str
) -> None:
    """`snapshots.configs:` alone could mean the default folder or no configs at all, which
    decides what every rollback writes; `benchmark.command` has no default."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bisector.yaml")
    assert info.value.message == said
    # `configs: []` written out is a choice: snapshots hold no config file
    assert parse_config(MINIMAL + "snapshots: {configs: []}\n").snapshots.configs == []


def test_config_check_refuses_an_empty_snapshots_configs_in_one_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "svc")
    (repo / "bisector.yaml").write_text(MINIMAL + "snapshots:\n  configs:\n  store: .b\n")
    before = tree_digest(tmp_path)
    done = run_cli("config", "check", "--repo", str(repo))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {repo / 'bisector.yaml'}:6: snapshots.configs: is empty: list the config files "
        "to snapshot, or remove the key"
    ]
    assert tree_digest(tmp_path) == before


def test_an_empty_inner_section_is_every_default_too() -> None:
    text = MINIMAL.replace("lower}\n", "lower}\n    \n").replace(
        "  command:", "  repeats:\n  command:"
    )
    text += "environment:\n  docker:\nexecution:\n  ray:\ndaemon:\n  alerts:\n    -\n"
    cfg = parse_config(text)
    assert cfg.benchmark == parse_config(MINIMAL).benchmark
    assert cfg.environment.docker.gpus == "none" and cfg.execution.ray.address == "local"
    assert cfg.daemon.alerts[0].webhook is None and cfg.daemon.alerts[0].retries == 2


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # a section that requires a key names it
        (
            "benchmark:\nmetrics:\n  m: {direction: lower}\n",
            "bisector.yaml:1: benchmark.command: required key is missing",
        ),
        (MINIMAL + "metrics2:\n", "bisector.yaml:5: metrics2: unknown key"),
        (
            MINIMAL.replace("  m: {direction: lower}", "  m:"),
            "bisector.yaml:4: metrics.m.direction: required key is missing",
        ),
        (
            MINIMAL.replace("  m: {direction: lower}\n", ""),
            "bisector.yaml:3: metrics: at least one metric is required (NAME: {direction: lower})",
        ),
        (
            MINIMAL.replace("  m: {direction: lower}\n", "  {}\n"),
            "bisector.yaml:3: metrics: at least one metric is required (NAME: {direction: lower})",
        ),
        (
            MINIMAL + "guard:\n  prometheus: http://127.0.0.1:9090\n  checks:\n    -\n",
            "bisector.yaml:7: guard.checks[0].name: required key is missing (and 1 more)",
        ),
        (MINIMAL + "guard: {}\n", "bisector.yaml:5: guard.prometheus: required key is missing"),
        # a section of the wrong shape: what it takes, in YAML's words
        (
            MINIMAL + "rollback: 5\n",
            "bisector.yaml:5: rollback: must be a mapping (key: value), not 5",
        ),
        (
            MINIMAL + "daemon:\n  alerts: [hook]\n",
            "bisector.yaml:6: daemon.alerts[0]: must be a mapping (key: value), not 'hook'",
        ),
        (
            MINIMAL + "environment: [venv]\n",
            "bisector.yaml:5: environment: must be a mapping (key: value), not a list",
        ),
        (
            MINIMAL + "daemon: {branch: [a]}\n",
            "bisector.yaml:5: daemon.branch: must be text, not a list",
        ),
        (
            MINIMAL + "daemon: {policy: fix}\n",
            "bisector.yaml:5: daemon.policy: must be 'report' or 'rollback', not 'fix'",
        ),
        (
            MINIMAL + "environment: {no_index: maybe}\n",
            "bisector.yaml:5: environment.no_index: must be true or false, not 'maybe'",
        ),
        (
            MINIMAL + "environment: {docker: {gpus: [0]}}\n",
            "bisector.yaml:5: environment.docker.gpus: must be all, none or a whole number, "
            "not a list",
        ),
    ],
)
def test_a_section_error_names_the_key_not_a_python_class(text: str, said: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bisector.yaml")
    assert info.value.message == said
