"""Open every page of the built book in headless Chromium, network blocked, and check it rendered.

For each page of ``_build/html`` (served on a loopback port, every other request aborted) this
asserts, from the DOM after the page's scripts ran:

- MathJax typeset every formula (one ``mjx-container`` per ``.math`` element, no raw ``\\(``);
- every saved ipywidget view rendered (no "Loading widget..." placeholder left, no error box), and
  moving each dropdown and slider changes what is shown, with no kernel;
- every bertviz attention view drew its SVG;
- the page asked for no URL outside the book, and the console logged no error.

A screenshot of each page goes to ``_build/screenshots/`` so a person can look. Exit status 0 when
every page passes. Usage: ``python tools/check_html.py [_build/html]``.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import sys
import threading
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_PATHS = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def pages(html: Path) -> list[Path]:
    """Every HTML page of the book (not the copies of sources or static files)."""
    skip = {"_static", "_sources", "_images"}
    return sorted(p for p in html.rglob("*.html") if not skip & set(p.relative_to(html).parts))


def redirect_target(path: Path) -> str | None:
    """The target of a page that is only a meta-refresh redirect, else None."""
    head = path.read_text(encoding="utf-8", errors="replace")[:2000]
    m = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', head, re.IGNORECASE)
    return m.group(1).split("#")[0] if m else None


# Runs in the page: wait for MathJax, widgets and bertviz, then report what is on screen.
PROBE = """
async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const mj = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
  const math = [...document.querySelectorAll('.math')];
  if (math.length) {
    for (let i = 0; i < 100 && !mj(); i++) await sleep(100);
    if (mj()) await MathJax.startup.promise;
  }
  const viewType = 'script[type="application/vnd.jupyter.widget-view+json"]';
  const views = [...document.querySelectorAll(viewType)];
  const drawn = v => v.parentElement.querySelector('.widget-subarea .jupyter-widgets');
  const bertviz = [...document.querySelectorAll('[id^="bertviz-"]')];
  const loading = () => [...document.querySelectorAll('*')].filter(
    e => e.childElementCount === 0 && /Loading widget/.test(e.textContent)).length;
  for (let i = 0; i < 150; i++) {
    if (views.every(drawn) && !loading() && bertviz.every(b => b.querySelector('svg'))) break;
    await sleep(100);
  }
  return {
    math: math.length,
    mathUnrendered: math.filter(m => !m.querySelector('mjx-container')).length,
    widgetViews: views.length,
    widgetsUndrawn: views.filter(v => !drawn(v)).length,
    widgetsLoading: loading(),
    widgetErrors: document.querySelectorAll('.widget-error, .jupyter-widgets-error-widget').length,
    bertviz: bertviz.length,
    bertvizWithoutSvg: bertviz.filter(b => !b.querySelector('svg')).length,
  };
}
"""


# Runs in the page after PROBE: move every dropdown of a saved widget to its next option and see
# whether what is shown changes (the widgets switch pre-rendered views in the browser).
VISIBLE = """() => [...document.querySelectorAll(
    '.widget-subarea img, .widget-subarea .widget-html')]
  .filter(e => e.offsetParent !== null).map(e => e.src || e.innerHTML).join('|')"""
INTERACT = """
async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const visible = VISIBLE;
  let tried = 0, changed = 0;
  for (const s of document.querySelectorAll('.widget-subarea select')) {
    if (s.options.length < 2) continue;
    tried++;
    const before = visible();
    s.selectedIndex = (s.selectedIndex + 1) % s.options.length;
    s.dispatchEvent(new Event('change', {bubbles: true}));
    await sleep(300);
    if (visible() !== before) changed++;
  }
  return {tried, changed};
}
""".replace("VISIBLE", VISIBLE)


def move_sliders(page) -> tuple[int, int]:
    """Press the right arrow on every slider handle; count those whose view changed."""
    tried = changed = 0
    for handle in page.query_selector_all(".widget-subarea .noUi-handle"):
        before = page.evaluate(VISIBLE)
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(300)
        tried += 1
        changed += page.evaluate(VISIBLE) != before
    return tried, changed


def check(html: Path, shots: Path, chromium: str) -> list[str]:
    from playwright.sync_api import sync_playwright

    server, base = serve(html)
    problems: list[str] = []
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for path in pages(html):
                rel = path.relative_to(html).as_posix()
                target = redirect_target(path)
                if target is not None:  # Jupyter Book's root index.html only redirects
                    ok = (path.parent / target).is_file()
                    print(f"{'ok ' if ok else 'BAD'} {rel}: redirect to {target}")
                    if not ok:
                        problems.append(f"{rel}: redirects to missing {target}")
                    continue
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                outside: list[str] = []
                errors: list[str] = []

                def route(r, outside=outside):
                    if r.request.url.startswith(base):
                        r.continue_()
                    else:
                        outside.append(r.request.url)
                        r.abort()

                context.route("**/*", route)
                page = context.new_page()
                page.on(
                    "console",
                    lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None,
                )
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on(
                    "response",
                    lambda r, errors=errors: errors.append(f"HTTP {r.status} for {r.url}")
                    if r.status >= 400
                    else None,
                )
                page.goto(f"{base}/{rel}", wait_until="load")
                report = page.evaluate(PROBE)
                page.wait_for_timeout(300)
                shot = shots / (rel.replace("/", "__")[:-5] + ".png")
                page.screenshot(path=str(shot), full_page=True)  # before anything is moved
                moved = page.evaluate(INTERACT)
                sliders = move_sliders(page)
                context.close()

                r, bad = report, []
                if r["mathUnrendered"]:
                    bad.append(f"{r['mathUnrendered']} of {r['math']} formulas not typeset")
                if r["widgetsUndrawn"] or r["widgetsLoading"] or r["widgetErrors"]:
                    bad.append(
                        f"widgets not rendered ({r['widgetsUndrawn']} of {r['widgetViews']} views "
                        f"undrawn, {r['widgetsLoading']} loading, {r['widgetErrors']} errors)"
                    )
                stuck = (moved["tried"] - moved["changed"]) + (sliders[0] - sliders[1])
                if stuck:
                    bad.append(f"{stuck} widget control(s) did not change what is shown")
                if r["bertvizWithoutSvg"]:
                    bad.append(f"{r['bertvizWithoutSvg']} bertviz views without an SVG")
                if outside:
                    bad.append(f"requested {len(outside)} URL(s) outside the book: {outside[:3]}")
                if errors:
                    bad.append(f"console errors: {errors[:3]}")
                detail = "" if not bad else " -- " + "; ".join(bad)
                print(
                    f"{'ok ' if not bad else 'BAD'} {rel}: {r['math']} formulas, "
                    f"{r['widgetViews']} widget views ({moved['tried'] + sliders[0]} controls "
                    f"moved), {r['bertviz']} attention views{detail}"
                )
                problems += [f"{rel}: {b}" for b in bad]
            browser.close()
    finally:
        server.shutdown()
    return problems


def main() -> int:
    html = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")
    if not (html / "index.html").is_file():
        print(f"no built book at {html}: run `make html` first.", file=sys.stderr)
        return 2
    chromium = next((p for p in CHROMIUM_PATHS if Path(p).exists()), shutil.which("chromium"))
    if chromium is None:
        print(
            "SKIPPED the browser check: no Chromium found. Install the Debian package `chromium` "
            "(the Makefile does this when it can: as root with apt-get).",
            file=sys.stderr,
        )
        return 0
    problems = check(html, html.parent / "screenshots", chromium)
    if problems:
        print(f"\nbrowser check FAILED on {len(problems)} problem(s):", *problems, sep="\n  ")
        return 1
    print(f"browser check passed; screenshots in {html.parent / 'screenshots'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
