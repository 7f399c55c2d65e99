"""The HTML report in a real headless Chromium: trees open on click, filter works, nothing runs.

Needs the Debian packages chromium and chromium-driver (and selenium in the venv for the
click-driven test); each test is skipped, saying why, where they are absent.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cdvkit.reporting import build_report
from cdvkit.store import RunStore
from eval_helpers import QUESTIONS, build_run, xss_proposer, xss_target
from scripted_helpers import oracle_responder

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
    ),
]


@pytest.fixture
async def report(tmp_path):
    """A run where 'snow' resists every distraction, so the success filter has work to do."""
    fooled = xss_target(QUESTIONS)
    robust = oracle_responder(QUESTIONS, fooled_at=99)

    def target(req, sample):
        return (robust if "snow" in req.mcq.question else fooled)(req, sample)

    run = await build_run(tmp_path / "run", target=target, proposer=xss_proposer)
    with RunStore(run, lock=False, readonly=True) as store:
        nodes = {q.id: len(store.nodes(q.id)) for q in QUESTIONS}
        good = {q.id: len(store.nodes(q.id, status="good")) for q in QUESTIONS}
    assert good["snow"] == 0 and good["sky"] > 0
    path = build_report(run, tmp_path / "report.html")
    return path, nodes


@pytest.fixture
def driver(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if CHROMEDRIVER is None:
        pytest.skip("chromedriver is not installed (apt-get install chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600"]:
        opts.add_argument(flag)
    # An explicit driver path keeps Selenium Manager from trying to download one.
    d = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def test_clicking_a_question_shows_its_tree(report, driver):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path, nodes = report
    driver.get(path.as_uri())
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )
    # No script from model text ran, and only the page's own two script elements exist.
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    assert len(driver.find_elements(By.TAG_NAME, "script")) == 2

    sky = driver.find_element(By.CSS_SELECTOR, "details.q[data-qid='sky']")
    assert sky.find_elements(By.CSS_SELECTOR, ".node") == []  # built on first opening only
    sky.find_element(By.TAG_NAME, "summary").click()
    WebDriverWait(driver, 10).until(lambda d: sky.find_elements(By.CSS_SELECTOR, ".node"))
    shown = sky.find_elements(By.CSS_SELECTOR, ".node")
    assert len(shown) == nodes["sky"]
    assert all(n.is_displayed() for n in shown)
    good = sky.find_elements(By.CSS_SELECTOR, ".node.good")
    assert good
    # The distraction is highlighted inside the question text, shown as plain text.
    mark = good[0].find_element(By.CSS_SELECTOR, ".qtext mark.hl-new")
    assert "DISTRACT" in mark.text and "<script>alert('distraction')</script>" in mark.text
    replies = sky.find_elements(By.CSS_SELECTOR, "pre.reply")
    assert replies and all(r.find_elements(By.XPATH, "./*") == [] for r in replies)
    good[0].find_element(By.CSS_SELECTOR, "details.answers summary").click()
    reply = good[0].find_element(By.CSS_SELECTOR, "pre.reply")
    assert '<script>alert("reply")</script>' in reply.text

    # The filter hides the question without examples and keeps the others.
    snow = driver.find_element(By.CSS_SELECTOR, "details.q[data-qid='snow']")
    assert snow.is_displayed()
    driver.find_element(By.ID, "only-success").click()
    assert not snow.is_displayed() and sky.is_displayed()
    assert driver.find_element(By.ID, "tree-count").text.startswith("2 of 3")


def test_hash_link_opens_a_tree_in_dump_dom(report, tmp_path):
    """Without WebDriver: Chromium's --dump-dom after the page opened the tree named in #q=."""
    path, nodes = report
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'dump-profile'}", "--dump-dom"]
    out = subprocess.run(
        [*cmd, path.as_uri() + "#q=grass"], capture_output=True, text=True, timeout=90
    ).stdout
    assert 'data-qid="grass"' in out
    # Up to the next question (the tree holds nested <details> of its own).
    section = out.split('data-qid="grass"', 1)[1].split('<details class="q"', 1)[0]
    assert section.count('class="node ') == nodes["grass"]
    assert 'data-rendered="1"' in out.split('data-qid="grass"', 1)[1][:200]
    # The other trees stay unbuilt, and model text is text in the DOM, never elements.
    assert out.count('class="node ') == nodes["grass"]
    assert "<script>alert" not in out


def test_a_free_form_tree_shows_answers_not_choices(tmp_path):
    """A numeric run: nodes show the accepted answer, the number pushed and the answers read."""
    from freeform_helpers import make_free_run

    run = make_free_run(tmp_path / "run")
    with RunStore(run, lock=False, readonly=True) as store:
        n_eggs = len(store.nodes("eggs"))
    path = build_report(run, tmp_path / "report.html")
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'dump-profile'}", "--dump-dom"]
    out = subprocess.run(
        [*cmd, path.as_uri() + "#q=eggs"], capture_output=True, text=True, timeout=90
    ).stdout
    section = out.split('data-qid="eggs"', 1)[1].split('<details class="q"', 1)[0]
    assert section.count('class="node ') == n_eggs  # the script ran through every node
    assert 'class="choices"' not in section
    assert "answer: 13" in section and "pushed: 14" in section
    assert "14 ✗" in section and "13 ✓" in section
