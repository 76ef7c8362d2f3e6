"""The page in a real browser: Debian's chromium, headless, driven by selenium.

Three daemons in one cluster, one of them serving --http. The page shows the members on
the ring and the services with their instances; a registration made after it loaded
appears within a second, without a reload (the page follows /v1/events). The screenshot
goes to the build directory, and to REGFS_SCREENSHOT when that names a file (the README's
docs/http-page.png is made so).
"""
import json
import os
import shutil
import time

import pytest

from conftest import BUILD, closed_port, gossip_address, read, wait_until, write

selenium = pytest.importorskip("selenium", reason="python3-selenium (packaging/install-deps.sh)")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    assert CHROMIUM and DRIVER, "chromium and chromium-driver are needed (packaging/install-deps.sh)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Root has no sandbox; /dev/shm may be small in containers.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def test_page_shows_the_registry_and_follows_changes(make_daemon, servers, browser):
    port = closed_port()
    a = make_daemon("--check-interval", "500ms", "--http", str(port))
    b = make_daemon("--node-name", "n2", "--join", gossip_address(a))
    c = make_daemon("--node-name", "n3", "--join", gossip_address(a))
    up = [servers() for _ in range(3)]
    write(a.path("config-server"), f"{up[0].endpoint} check=tcp\n")
    write(b.path("gateway"), f"{up[1].endpoint} check=tcp\n{up[2].endpoint} check=tcp\n")
    write(c.path("user-service"), f"{up[2].endpoint} check=tcp\n127.0.0.1:{closed_port()} check=tcp\n")
    assert wait_until(lambda: len(json.loads(read(a.path(".status.json")))["services"]) == 3
                      and len(json.loads(read(a.path(".status.json")))["members"]) == 3, 10)
    for service in ("gateway", "user-service"):
        read(a.path(".all", service))  # checks every instance: one of user-service's fails

    browser.get(f"http://127.0.0.1:{port}/")
    # Asked in one script each: the page re-renders, so element handles go stale.
    texts = lambda css: browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css)
    count = lambda css: len(texts(css))
    services = lambda: browser.execute_script(
        "return [...document.querySelectorAll('#services [data-service]')].map(e => e.dataset.service)")
    assert wait_until(lambda: len(services()) == 3, 10)
    assert services() == ["config-server", "gateway", "user-service"]
    assert wait_until(lambda: count("#ring [data-member]") == 3, 5)
    # When this node last heard from each peer; never from itself.
    heard = lambda: dict(zip(browser.execute_script(
        "return [...document.querySelectorAll('#members tr[data-member]')].map(e => e.dataset.member)"),
        texts("#members td.heard")))
    assert wait_until(lambda: heard().get("n1") == "—" and
                      all(heard().get(n, "—")[0].isdigit() for n in ("n2", "n3")), 5), heard()
    assert wait_until(lambda: texts("#conn") == ["live"], 5)

    # A registration on another node, after the page loaded.
    browser.execute_script("window.regfsTestMark = 1")
    started = time.monotonic()
    write(b.path("orders"), f"{up[1].endpoint} check=tcp\n")
    assert wait_until(lambda: count('#services [data-service="orders"]') == 1, 1.0, 0.02), \
        "the new registration did not appear within a second"
    elapsed = time.monotonic() - started
    assert count(f'#services [data-service="orders"] tr[data-endpoint="{up[1].endpoint}"]') == 1
    assert wait_until(lambda: any("orders" in t for t in texts("#log li")), 1)
    assert browser.execute_script("return window.regfsTestMark") == 1, "the page was reloaded"
    assert wait_until(lambda: count("#services tr .unhealthy") >= 1, 5)
    read(a.path(".all", "orders"))
    assert wait_until(lambda: count('#services [data-service="orders"] .healthy') == 1, 5)

    png = browser.get_screenshot_as_png()
    with open(os.path.join(BUILD, "http-page.png"), "wb") as f:
        f.write(png)
    if os.environ.get("REGFS_SCREENSHOT"):
        with open(os.environ["REGFS_SCREENSHOT"], "wb") as f:
            f.write(png)
    print(f"the new registration showed after {elapsed * 1000:.0f} ms")
