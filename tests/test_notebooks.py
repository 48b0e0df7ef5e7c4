"""The chapters' shape: what every notebook in book/ must keep (CONTRIBUTING.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))


def code_cells(path: Path) -> list[tuple[int, str, list[str]]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [
        (i, "".join(c["source"]), c.get("metadata", {}).get("tags", []))
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code"
    ]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_code_line_scrolls_sideways(path):
    """Code lines of at most 88 characters fit the HTML book's column without scrolling."""
    long = [
        f"cell {i}: {len(line)} chars: {line[:60]}..."
        for i, source, _ in code_cells(path)
        for line in source.splitlines()
        if len(line) > 88
    ]
    assert not long, "\n".join(long)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_starts_with_the_colab_setup_and_never_installs_torch(path):
    first = code_cells(path)[0][1]
    assert 'importlib.util.find_spec("bertlab")' in first
    assert "pip install" in first and "torch" not in first.replace("# ", "").split("pip")[1:][0]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_a_preset_switch_and_the_closing_sections(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert 'PRESET = "cpu"' in text
    for heading in ("## Summary", "## Exercises", "Run it bigger"):
        assert heading in text, heading
