"""The console speaks English and Korean: every word in both, the language picked as documented."""

from __future__ import annotations

import pytest

from gateway.console.i18n import MESSAGES, choose


def test_every_word_of_the_console_exists_in_both_languages() -> None:
    assert MESSAGES["en"].keys() == MESSAGES["ko"].keys()
    assert all(MESSAGES["ko"][key] for key in MESSAGES["ko"])


@pytest.mark.parametrize(
    ("toggle", "accept", "default", "chosen"),
    [
        ("ko", "en-US,en;q=0.9", "en", "ko"),
        (None, "ko-KR,ko;q=0.9,en;q=0.8", "en", "ko"),
        (None, "fr-FR,en;q=0.5", "ko", "en"),
        (None, "fr-FR", "ko", "ko"),
        ("xx", "", "en", "en"),
    ],
)
def test_the_language_is_the_toggle_then_the_browser_then_the_fleet(
    toggle: str | None, accept: str, default: str, chosen: str
) -> None:
    assert choose(toggle, accept, default) == chosen
