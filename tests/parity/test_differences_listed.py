"""The README's "What differs from W&B" lists every deliberate difference the parity suite
knows (``differences.DIFFERENCES``), by its label in bold, and every case names a listed one.
No oracle needed: this runs in ``make test-fast`` too."""

from __future__ import annotations

import re
from pathlib import Path

from tests.parity.cases import CASES
from tests.parity.differences import DIFFERENCES

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("What differs from W&B")
    end = text.index("\n## ", start)
    return text[start:end]


def test_readme_lists_every_deliberate_difference() -> None:
    section = _section()
    missing = [label for label in DIFFERENCES if f"**{label}**" not in section]
    assert not missing, f"README's 'What differs from W&B' does not list: {missing}"


def test_every_listed_difference_is_used_or_checked_everywhere() -> None:
    used = {case.deliberate for case in CASES.values() if case.deliberate}
    checked_on_every_case = {"The manifest names its digest algorithm", "Typed errors"}
    assert set(DIFFERENCES) == used | checked_on_every_case


def test_readme_bold_labels_are_known() -> None:
    """A bold label in the parity part of the section that the suite does not know is stale."""
    section = _section()
    part = section[section.index("Checked against the real `wandb`") :]
    labels = set(re.findall(r"^- \*\*(.+?)\*\*", part, flags=re.M))
    assert labels <= set(DIFFERENCES), labels - set(DIFFERENCES)
