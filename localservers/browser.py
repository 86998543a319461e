"""A headless Chromium driven by Selenium, for the browser tests and the manual's screenshots.

Debian's ``chromium`` and ``chromium-driver`` (``make system`` installs them); the driver is
named explicitly, so Selenium never looks for one on the network.
"""

from __future__ import annotations

import shutil
from typing import Any

FLAGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking")
PAGE_LOAD_TIMEOUT = 60  # seconds: a page of the local service never takes this long


def chromium(*extra: str, width: int = 1280, height: int = 900) -> Any:
    """A new headless Chromium session (quit() it when done)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        raise RuntimeError("chromium and chromium-driver are not installed: run make system")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--window-size={width},{height}", *extra):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    browser.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    return browser
