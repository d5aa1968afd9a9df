"""The web console (services/gateway/console, built by `make up` into its dist/): served at / by
the gateway, so that the console, the API and sign-in share one origin and the session cookie
never crosses sites.

- /assets/...: the build's fingerprinted files, cacheable for a year (a new build has new names);
- any other path that is not a file of the build: the console's index.html (the console routes in the
  browser: /desk, /inbox/...), never cached, so a new build is picked up on the next load;
- every answer carries a Content-Security-Policy that allows scripts of this origin only.

Without a build (a checkout where `make up` has not run) the console's paths answer 503
problem+json that says how to build it; the API is served all the same."""
from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from civicgrid_common.problems import UNAVAILABLE, Problem
from civicgrid_common.web.problems import problem_response

# Scripts and connections of this origin only; styles inline too (Leaflet and ECharts set style
# attributes); images also from data: and blob: (a grid worker's photo before it is sent).
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
          "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
          "frame-ancestors 'none'")
HEADERS = {"content-security-policy": POLICY, "x-content-type-options": "nosniff",
           "referrer-policy": "same-origin", "x-frame-options": "DENY"}


class Console(StaticFiles):
    """StaticFiles over the build, with the console's own routes falling back to index.html."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.root = directory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (self.root / "index.html").is_file():
            problem = Problem(UNAVAILABLE, f"The console is not built ({self.root} has no index.html): run `make up`, "
                                           "or `npm ci && npm run build` in services/gateway/console.",
                              headers={"Retry-After": "60"})
            await problem_response(problem)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            # Any other path is a screen's, for the console to route; a missing asset stays 404.
            if exc.status_code != 404 or path.startswith("assets/"):
                raise
            response = await super().get_response("index.html", scope)
        immutable = path.startswith("assets/") and response.status_code in (200, 304)
        response.headers["cache-control"] = "public, max-age=31536000, immutable" if immutable else "no-cache"
        response.headers.update(HEADERS)
        return response
