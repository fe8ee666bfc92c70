"""Where README, the guides and `--help` state the same fact, they state the same value."""

from __future__ import annotations

import re
from pathlib import Path

from distill.cli import COMMANDS, build_parser
from distill.config import LoggingConfig
from distill.study.quickstart import BUDGETS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _help(*command: str) -> str:
    parser = build_parser()
    for name in command:  # walk down to the subcommand's parser
        parser = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
                      and name in a.choices).choices[name]
    return " ".join(parser.format_help().split())


def test_quickstart_time_and_budgets_agree():
    readme = re.search(r"distill quickstart \[--out DIR\] \[--budget ([\w|]+)\]\s+the study above, ([\d-]+ min)",
                       README)
    assert readme, "README's command list lost its quickstart line"
    assert readme[1].split("|") == list(BUDGETS)
    text = _help("quickstart")
    assert f"small: {readme[2]}" in text and "{" + ",".join(BUDGETS) + "}" in text


def test_the_default_logger_is_the_one_the_guide_names():
    guide = (ROOT / "docs" / "own_dataset.md").read_text()
    assert f"`logging.logger` is `{LoggingConfig.logger}` (offline) by default" in guide


def test_every_command_is_in_readme_and_the_docs_index_and_has_help_with_defaults():
    index = (ROOT / "docs" / "README.md").read_text()
    for name in COMMANDS:
        assert f"\ndistill {name}" in README, name
        assert f"`{name}`" in index or "`data synth`" in index, name
    assert "(default: 0.0)" in _help("predict") and "(default: 18)" in _help("export")
