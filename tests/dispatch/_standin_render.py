"""TEMPORARY stand-in for newsletter.render until the Compose module is committed."""

from __future__ import annotations

import html as html_lib
from collections.abc import Mapping
from dataclasses import asdict, dataclass

PLACEHOLDERS = ("name", "municipality", "email", "unsubscribe_url", "preferences_url", "view_url")


@dataclass(frozen=True)
class CompiledIssue:
    slug: str
    subject: str
    preheader: str
    lang: str
    html: str
    text: str

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]:
        html, text = self.html, self.text
        for name in PLACEHOLDERS:
            html = html.replace("{{" + name + "}}", html_lib.escape(values.get(name, "")))
            text = text.replace("{{" + name + "}}", values.get(name, ""))
        return html, text

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> CompiledIssue:
        return cls(**{k: data[k] for k in ("slug", "subject", "preheader", "lang", "html", "text")})
