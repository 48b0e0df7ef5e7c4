"""The chapters' shape: what every notebook in book/ must keep (CONTRIBUTING.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
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


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_shown_source_is_the_code_at_the_line_its_caption_names(path):
    """A ``show_source`` output's caption ("bertlab/x.py, line N") and code match the package.

    nbval compares only the plain-text code, so editing a module above a shown object leaves the
    HTML caption's line number stale until the chapter is executed again: this catches that."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    stale = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            html = "".join(out.get("data", {}).get("text/html", ""))
            found = re.search(r"(bertlab/[\w/]+\.py), line (\d+)</div>", html)
            if not found:
                continue
            file, line = found[1], int(found[2])
            shown = "".join(out["data"]["text/plain"]).rstrip("\n").split("\n")
            lines = (ROOT / file).read_text(encoding="utf-8").split("\n")
            if lines[line - 1 : line - 1 + len(shown)] != shown:
                stale.append(f"cell {i}: {file}, line {line}: {shown[0][:60]}")
    assert not stale, "execute the chapter again (make execute):\n" + "\n".join(stale)
