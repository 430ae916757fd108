"""The config file: print-config's output is a valid file, generated from the
dataclasses; bad keys and values stop ``serve`` with one line (issue 13)."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stunlike_tracker.config import (
    SECTIONS,
    ConfigError,
    Settings,
    build_settings,
    render_config,
    tracker_config,
)

CLI = [sys.executable, "-m", "stunlike_tracker.cli"]


def test_print_config_lists_every_field_with_a_comment_and_loads_back_as_the_defaults() -> None:
    text = render_config()
    document = tomllib.loads(text)
    assert build_settings(document) == Settings()
    lines = text.splitlines()
    for section in SECTIONS:
        assert f"[{section.name}]" in lines
        start = lines.index(f"[{section.name}]")  # keys repeat across sections
        for f in dataclasses.fields(section.cls):
            if f.name in section.derived:
                continue
            assert f.metadata.get("doc"), f"{section.cls.__name__}.{f.name} needs a doc"
            index = next(
                i
                for i, line in enumerate(lines)
                if i > start and line.startswith((f"{f.name} = ", f"# {f.name} = "))
            )
            assert lines[index - 1] == "# " + f.metadata["doc"]


def test_print_config_command_prints_the_same(tmp_path: Path) -> None:
    out = subprocess.run(
        [*CLI, "print-config"], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout == render_config()


def test_a_field_added_by_another_module_appears_without_touching_the_generator() -> None:
    @dataclasses.dataclass(frozen=True)
    class Budgets:
        per_source: int = dataclasses.field(default=7, metadata={"doc": "a new knob"})

    import stunlike_tracker.config as config

    extra = config.Section("budgets-test", Budgets, "a section added later")
    saved = config.SECTIONS
    config.SECTIONS = (*saved, extra)
    try:
        text = render_config()
    finally:
        config.SECTIONS = saved
    assert "[budgets-test]\n# a new knob\nper_source = 7\n" in text


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"server": {"prot": 1}}, "[server] prot: unknown key"),
        ({"severs": {}}, "[severs]: unknown section"),
        ({"server": {"port": "x"}}, "[server] port: must be an integer"),
        ({"server": {"port": 70000}}, "[server] port: must be at most 65535"),
        ({"tracker": {"track_timeout": -1}}, "[tracker] track_timeout: must be at least 0"),
        ({"logging": {"format": "xml"}}, "[logging] format: must be one of auto, text, json"),
        ({"turn": {"uris": ["turn:x"]}}, "[turn] secrets: needed when uris is set"),
        ({"http": {"listen": "nowhere"}}, "[http] listen: expected HOST:PORT"),
        ({"server": {"cookie_secret": 5}}, "[server] cookie_secret: must be a string"),
    ],
)
def test_bad_keys_and_values_name_the_key(document: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_settings(document)
    assert str(info.value).startswith(expected), info.value
    assert "\n" not in str(info.value)


def test_a_secret_in_a_bad_value_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        build_settings({"turn": {"secrets": "s3cr3t-value"}})
    assert "s3cr3t-value" not in str(info.value)


def test_flags_override_the_file() -> None:
    document = {"server": {"port": 4000, "mutual": False}, "tracker": {"keep_alive": 7}}
    settings = build_settings(
        document,
        {"server": {"port": 0, "mutual": True}, "turn": {"uris": ("turn:r",), "secrets": ("k",)}},
    )
    assert settings.server.port == 0 and settings.server.mutual
    config = tracker_config(settings)
    assert config.keep_alive == 7 and config.identity_mode == "mutual"
    assert config.turn is not None and config.turn.secrets == (b"k",)


def _serve(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "serve", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def test_serve_accepts_print_config_output_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text(render_config())
    proc = _serve(
        tmp_path, "--config", str(config), "--host", "127.0.0.1", "--port", "0", "--certs", "c"
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()  # blocks until bound
        assert first.startswith("listening udp 127.0.0.1:"), first
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[tracker]\nkeep_alive = 25\nbogus = 1\n", "[tracker] bogus: unknown key"),
        ("[server]\nport = -5\n", "[server] port: must be at least 0"),
        ("[tracker]\nlan_mode = 1\n", "[tracker] lan_mode: must be true or false"),
        ("[tracker\n", "bad config"),
    ],
)
def test_serve_with_a_bad_config_exits_2_with_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text(text)
    proc = _serve(tmp_path, "--config", str(config), "--port", "0", "--certs", "c")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"stunlike-tracker: {expected}"), err
