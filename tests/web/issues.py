"""Issue files written by the web tests (Compose's real format and pipeline)."""

from __future__ import annotations

from pathlib import Path

SLUG = "2026-02-naujienos"


def issue_text(
    heading: str = "Vasario naujienos", paragraph: str = "Bibliotekose vyko mokymai."
) -> str:
    """An issue that compiles and lints without errors."""
    return (
        "---\n"
        "subject: Bibliotekos pažangai – vasario naujienos\n"
        "preheader: Ką nuveikėme per mėnesį\n"
        "date: 2026-02-01\n"
        "---\n"
        f"# {heading}\n\n"
        "Sveiki, NLPH_name_NLPH!\n\n"
        f"{paragraph}\n\n"
        "[Programos svetainė](https://www.bibliotekospazangai.lt/)\n"
    )


def write_issue(folder: Path, text: str | None = None, slug: str = SLUG) -> Path:
    """Write the issue file (as an editor saving it) and return its path."""
    path = folder / f"{slug}.md"
    path.write_text(issue_text() if text is None else text, encoding="utf-8")
    return path
