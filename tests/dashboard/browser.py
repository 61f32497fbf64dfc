"""Debian's headless Chromium through chromium-driver (Selenium), for the dashboard tests."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@contextmanager
def chromium(width: int = 1400, height: int = 1700) -> Iterator[Any]:
    """A headless Chromium; a clear failure (never a skip) when it is not installed."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, DRIVER):
        if not shutil.which(path):
            raise AssertionError(f"{path} missing: run `bash hack/install-deps.sh` (chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars", "--mute-audio",
                "--disable-extensions", "--no-first-run"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, script: str, timeout: float = 30.0, what: str = "") -> Any:
    """Polls a JavaScript expression until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or script} (last: {value!r}); "
                         f"console: {console(driver)}")


def console(driver: Any) -> list[Any]:
    try:
        return list(driver.get_log("browser"))[-10:]
    except Exception:  # not every driver keeps logs
        return []


# Counts pixels of a chart's canvas close to an (r, g, b) colour: a drawn series, not the axes.
PIXELS_JS = """
const [id, r, g, b] = arguments;
const u = window.__dash.charts[id];
if (!u) return -1;
const c = u.ctx.canvas, d = u.ctx.getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4)
  if (d[i + 3] > 0 && Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 60) n++;
return n;
"""


def colour_pixels(driver: Any, chart: str, rgb: tuple[int, int, int]) -> int:
    return int(driver.execute_script(PIXELS_JS, chart, *rgb))


def poll(fn: Callable[[], Any], timeout: float, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()
