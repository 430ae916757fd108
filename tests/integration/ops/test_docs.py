"""The documents stay true: PROTOCOL.md's examples parse, nothing cites a
document outside the repository, OPERATIONS.md's config reference is
print-config's current output."""

from __future__ import annotations

import re
from pathlib import Path

from stunlike_tracker.config import render_config
from stunlike_tracker.ppsp import parse_message_untrusted

ROOT = Path(__file__).resolve().parents[3]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_every_xml_example_in_protocol_md_parses() -> None:
    examples = _blocks((ROOT / "docs" / "PROTOCOL.md").read_text(), "xml")
    assert len(examples) >= 15
    for example in examples:
        if example.lstrip().startswith("<TurnServer"):
            continue  # an element, not a document
        parse_message_untrusted(example.encode())


def test_protocol_md_keeps_the_section_numbers_code_cites() -> None:
    text = (ROOT / "docs" / "PROTOCOL.md").read_text()
    headings = re.findall(r"^## (\d+)\. ", text, flags=re.MULTILINE)
    assert headings[:9] == [str(n) for n in range(1, 10)]


def test_docs_cite_nothing_outside_the_repository() -> None:
    docs = ROOT / "docs"
    for path in [ROOT / "README.md", docs / "PROTOCOL.md", docs / "OPERATIONS.md"]:
        text = path.read_text()
        assert "SPEC" not in text, path
        assert "../shared" not in text and "/shared/" not in text, path


def test_operations_md_config_reference_is_current() -> None:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    (reference,) = _blocks(text, "toml")
    assert reference == render_config(), "regenerate it: python3 -m tests.integration.ops.test_docs"


def test_the_deploy_files_are_valid() -> None:
    from stunlike_tracker.cli import build_parser
    from stunlike_tracker.config import build_settings, read_file

    settings = build_settings(read_file(ROOT / "deploy" / "tracker.toml"))
    assert settings.http.listen == "127.0.0.1:9478"
    unit = (ROOT / "deploy" / "stunlike-tracker.service").read_text()
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    command = exec_start.removeprefix("ExecStart=").split()
    assert command[0].endswith("/stunlike-tracker")
    args = build_parser().parse_args(command[1:])
    assert args.command == "serve" and args.config is not None
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit


def regenerate_config_reference() -> None:
    path = ROOT / "docs" / "OPERATIONS.md"
    text = path.read_text()
    (reference,) = _blocks(text, "toml")
    path.write_text(text.replace(f"```toml\n{reference}```", f"```toml\n{render_config()}```"))


if __name__ == "__main__":
    regenerate_config_reference()


def test_code_cites_protocol_sections_that_exist() -> None:
    # Comments and docstrings cite "PROTOCOL §n" (docs/PROTOCOL.md), never a
    # document outside the repository; every cited section must exist.
    text = (ROOT / "docs" / "PROTOCOL.md").read_text()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.MULTILINE))
    outside = re.compile(r"\bSPEC(?:\.md)? §")
    cited = re.compile(r"PROTOCOL(?:\.md)? §(\d+(?:\.\d+)?)")
    checked = 0
    for folder in ("stunlike_tracker", "tests", "bench", "fuzz"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text()
            assert not outside.search(source), path
            for number in cited.findall(source):
                assert number in sections, f"{path}: PROTOCOL §{number}"
                checked += 1
    assert checked > 100


def test_every_json_example_in_protocol_md_parses() -> None:
    """PROTOCOL §14: each JSON block is a request, an answer or an indication."""
    import json

    from stunlike_tracker.ppsp.json_binding import (
        parse_json_indication_untrusted,
        parse_json_request_untrusted,
        parse_json_response_untrusted,
    )

    examples = _blocks((ROOT / "docs" / "PROTOCOL.md").read_text(), "json")
    assert len(examples) >= 5
    for example in examples:
        data = example.encode()
        document = json.loads(data)
        if "request_type" in document:
            parse_json_request_untrusted(data)
        elif "indication_type" in document:
            parse_json_indication_untrusted(data)
        else:
            parse_json_response_untrusted(data)
