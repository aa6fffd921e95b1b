"""The People view in a real browser (Chromium through Playwright) against a real ``wanwu serve
--library --api-key`` over ../shared/faces portraits that ``wanwu index`` grouped: persons as
face crops fetched with the key, a person's photos, naming them from the page (then search finds
them by the name), both languages, a 390 px phone without sideways scrolling, no console errors
and no request beyond the server."""

from __future__ import annotations

import re
import shutil

import pytest

from wanwu.cli import main

test_browser = pytest.importorskip("test_browser")  # skips when chromium/playwright are missing
pytestmark = pytest.mark.browser

KEY = "people-test-key"
KEY_ASKED = (re.compile(r"status of 401"),)  # the page's first requests, before the key is typed in
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture(scope="module")
def people_server(tmp_path_factory, shared_faces, finder):
    root = tmp_path_factory.mktemp("people-browser") / "Pictures"
    for who in ("obama", "biden"):
        shutil.copytree(shared_faces / who, root / who)
    db = root.parent / "library.db"
    assert main(["index", str(root), "--db", str(db), "--quiet"]) == 0
    server = test_browser._Server(["--library", str(db), "--api-key", KEY])
    try:
        server.wait_ready(test_browser.SERVER_START_TIMEOUT_S)
        yield server.url
    finally:
        server.stop()


browser = test_browser.browser  # the module-scoped Chromium fixture, shared


def _open_people(browser, url, **options):
    ctx, page, watch = test_browser.open_library_view(browser, url, KEY, **options)
    page.locator("#lib-people").click()
    test_browser.expect(page.locator("#lib-grid > li.lib-person")).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#lib-grid img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    return ctx, page, watch


def test_people_view_names_a_person_from_the_page(browser, people_server, tmp_path):
    expect = test_browser.expect
    ctx, page, watch = _open_people(browser, people_server)
    labels = page.locator("#lib-grid .lib-label")
    expect(labels.first).to_have_text(re.compile(r"^#\d+$"))  # not named yet: its number
    expect(page.locator("#lib-grid .lib-name").first).to_have_text("3 faces · 3 photos")
    expect(page.locator("#lib-status")).to_contain_text("2 people")
    page.screenshot(path=str(tmp_path / "people.png"))

    page.locator("#lib-grid .lib-open").first.click()
    expect(page.locator("#lib-grid > li")).to_have_count(3)  # Obama's three portraits
    expect(page.locator("#lib-person-form")).to_be_visible()
    page.locator("#lib-person-name").fill("奶奶")
    page.locator("#lib-person-save").click()
    expect(page.locator("#lib-status")).to_contain_text("Named 奶奶")

    page.locator("#lib-people").click()
    expect(labels.first).to_have_text("奶奶")
    expect(page.locator("#lib-person-form")).to_be_hidden()
    page.locator("#lib-q").fill("奶奶")
    page.locator("#lib-go").click()
    expect(page.locator("#lib-grid > li")).to_have_count(3)

    page.locator("#lang-toggle").click()  # 中文
    expect(page.locator("#lib-people")).to_have_text("人物")
    page.locator("#lib-people").click()
    expect(page.locator("#lib-grid .lib-name").first).to_have_text("3 张人脸 · 3 张照片")
    assert watch.errors(KEY_ASKED) == [] and watch.off_loopback() == []
    ctx.close()


def test_people_view_on_a_phone(browser, people_server, tmp_path):
    ctx, page, watch = _open_people(browser, people_server, **PHONE)
    fits = "() => document.scrollingElement.scrollWidth <= 390 && window.innerWidth === 390"
    assert page.evaluate(fits)
    page.locator("#lib-grid .lib-open").first.tap()
    test_browser.expect(page.locator("#lib-person-form")).to_be_visible()
    page.screenshot(path=str(tmp_path / "person-phone.png"), full_page=True)
    assert page.evaluate(fits)
    assert watch.errors(KEY_ASKED) == [] and watch.off_loopback() == []
    ctx.close()
