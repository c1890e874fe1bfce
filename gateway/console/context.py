"""Who is using the console and how pages are rendered: the session's principal, its CSRF token, its language."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from gateway.config import get_gateway_config
from gateway.console import i18n
from gateway.console import session as sessions
from gateway.deps import admit, client_host
from gateway.keys import ANONYMOUS, Principal
from gateway.services import keys as key_service
from worker.settings import get_settings

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
LANGUAGE_COOKIE = "fleet_console_lang"


class SignInRequired(Exception):
    """The console needs a signed-in key (or an open API) for this page."""


@dataclass
class Console:
    """The signed-in caller of one console request."""

    request: Request
    who: Principal
    session_id: str | None
    session: sessions.Session | None

    @property
    def csrf(self) -> str:
        """The session's CSRF token (empty in open mode, where nothing is signed in)."""
        return self.session.csrf if self.session else ""

    def take_flash(self) -> str | None:
        """The message left by the last action, shown once."""
        if self.session is None or not self.session.flash:
            return None
        message, self.session.flash = self.session.flash, None
        sessions.save(self.session_id or "", self.session)
        return message

    def flash(self, message: str) -> None:
        """Leave a message for the next page."""
        if self.session is not None and self.session_id:
            self.session.flash = message[:500]
            sessions.save(self.session_id, self.session)

    def language(self) -> str:
        """The page's language: the toggle's cookie, the browser's Accept-Language, FLEET_LANGUAGE."""
        return language_of(self.request)


def language_of(request: Request) -> str:
    """The language of a page for this request."""
    toggle = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    return i18n.choose(toggle, request.headers.get("accept-language", ""), get_settings().language)


def current(request: Request, scope: str = "read") -> Console:
    """The console's caller; SignInRequired without a live session (or a revoked key), unless the API is open.

    The caller's rate limit counts as for the API; a missing scope is the page's to refuse.
    """
    found = sessions.load(request)
    who: Principal | None = None
    if found is not None:
        who = sessions.principal_of(found[1])
    elif not key_service.keys_exist():
        who = ANONYMOUS
    if who is None:
        raise SignInRequired()
    request.state.principal = who  # the call is audited like an API call
    if who.allows(scope):
        request.state.rate_headers = admit(who, scope, get_gateway_config(), client_host(request))
    return Console(request, who, found[0] if found else None, found[1] if found else None)


def render(
    console: Console | None, request: Request, template: str, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """A page, with the navigation, the language's words and the CSRF token for its forms."""
    language = language_of(request)
    context = {
        "t": i18n.words(language), "lang": language, "other_lang": "ko" if language == "en" else "en",
        "who": console.who if console else None, "csrf": console.csrf if console else "",
        "flash": console.take_flash() if console else None, "flower_url": get_gateway_config().flower_url,
        "path": request.url.path, "lang_href": _toggle(request, "ko" if language == "en" else "en"), **values,
    }  # fmt: skip
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        sessions.set_cookie(response, request, LANGUAGE_COOKIE, request.query_params["lang"])
    response.headers["Content-Language"] = language
    # The console's pages frame nothing and are framed by nothing; scripts and styles come from this origin only.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def _toggle(request: Request, language: str) -> str:
    """The same page in the other language (its filters kept)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{request.url.path}?{urlencode([*kept, ('lang', language)])}"


def back(path: str) -> RedirectResponse:
    """After a form: the page to show (303, so a reload does not post again)."""
    return RedirectResponse(path, status_code=303)
