"""The web demo as a user meets it: a real server process on a free loopback port, real HTTP uploads of real image
files, and the page itself driven in headless Chromium."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, smooth_photo, spawns

pytestmark = pytest.mark.subprocess  # every test here starts the project's scripts or servers


class DemoServer:
    def __init__(self, *args: str, cwd: Path, tmpdir: Path):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "TMPDIR": str(tmpdir)}
        self.process = subprocess.Popen([sys.executable, str(ROOT / "demo.py"), "--port", "0", *args], cwd=cwd,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"http://(127\.0\.0\.1):(\d+)", line)
        if match is None:
            self.process.kill()
            raise AssertionError(f"the demo did not start: {line!r} {self.process.stderr.read()}")
        self.url = f"http://127.0.0.1:{match.group(2)}"

    def request(self, path: str, data: bytes | None = None) -> tuple[int, bytes, dict]:
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)

    def upload(self, body: bytes, name: str, model: str | None = None) -> tuple[int, dict]:
        query = f"name={name}" + (f"&model={model}" if model else "")
        status, reply, _ = self.request(f"/api/restore?{query}", body)
        return status, json.loads(reply)

    def finished(self, job: str) -> dict:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = json.loads(self.request(f"/api/jobs/{job}")[1])
            if state["state"] in ("done", "error"):
                return state
            time.sleep(0.1)
        raise AssertionError(f"job {job} did not finish: {state}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _start(folder: Path, checkpoint: Path) -> DemoServer:
    (folder / "tmp").mkdir()
    (folder / "cwd").mkdir()
    return DemoServer("--no-bundled", "--checkpoint", str(checkpoint), "--max-upload-mb", "1",
                      "--max-megapixels", "0.05", cwd=folder / "cwd", tmpdir=folder / "tmp")


@pytest.fixture(scope="module")
@spawns
def server(tmp_path_factory, checkpoint):
    """One server for the tests that only talk to it (a start costs seconds: torch and the model load)."""
    demo = _start(tmp_path_factory.mktemp("demo"), checkpoint)
    yield demo
    if demo.process.poll() is None:
        demo.stop()


def _png(width: int = 80, height: int = 64, mode: str = "RGB") -> bytes:
    image = Image.fromarray(smooth_photo(np.random.default_rng(0), height, width))
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_uploaded_png_comes_back_restored_at_full_size(tmp_path, checkpoint):
    server = _start(tmp_path, checkpoint)
    status, _, _ = server.request("/")
    assert status == 200
    models = json.loads(server.request("/api/models")[1])
    assert [m["id"] for m in models] == ["checkpoint-0"]
    status, reply = server.upload(_png(80, 64), "blurry.png")
    assert status == 202
    state = server.finished(reply["job"])
    assert state["state"] == "done" and (state["width"], state["height"]) == (80, 64)
    assert state["done"] == state["total"] >= 1
    status, body, headers = server.request(f"/api/jobs/{reply['job']}/restored")
    restored = Image.open(io.BytesIO(body))
    assert status == 200 and restored.size == (80, 64) and restored.mode == "RGB"
    assert "blurry_deblurred.png" in headers["Content-Disposition"]
    original = np.asarray(Image.open(io.BytesIO(_png(80, 64))), dtype=np.float32)
    assert np.abs(np.asarray(restored, dtype=np.float32) - original).mean() > 0.01  # the model changed it
    preview = Image.open(io.BytesIO(server.request(f"/api/jobs/{reply['job']}/input.png")[1]))
    assert np.array_equal(np.asarray(preview), original.astype(np.uint8))
    # Grayscale stays grayscale, as infer.py writes it.
    status, reply = server.upload(_png(40, 32, "L"), "gray.png")
    assert server.finished(reply["job"])["state"] == "done"
    assert Image.open(io.BytesIO(server.request(f"/api/jobs/{reply['job']}/restored")[1])).mode == "L"
    # Nothing was written beside the server; its temporary folder goes when it stops.
    assert list((tmp_path / "cwd").iterdir()) == []
    assert len(list((tmp_path / "tmp").iterdir())) == 1
    server.stop()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_bad_uploads_get_one_clear_message_and_the_server_keeps_serving(server):
    # What the header read refuses never becomes a job: 400 with one line naming the client's file.
    status, reply = server.upload(b"this is not an image", "notes.png")
    assert status == 400 and reply["error"].startswith("notes.png is not an image this demo can read")
    assert "/tmp" not in reply["error"] and "\n" not in reply["error"]
    corrupt = _png()[:200]  # a PNG cut short: its header reads, its pixels do not
    state = server.finished(server.upload(corrupt, "cut.png")[1]["job"])
    assert state["state"] == "error" and "cut.png" in state["error"]
    assert server.upload(b"", "empty.png") == (400, {"error": "the upload is empty: choose an image file"})
    status, reply = server.upload(_png(), "x.png", model="nope")
    assert status == 400 and "unknown model 'nope'" in reply["error"]
    status, reply = server.upload(os.urandom(2 * 1024 * 1024), "huge.png")
    assert status == 413 and "over this demo's limit of 1 MiB" in reply["error"]
    status, reply = server.upload(_png(300, 200), "big.png")  # 0.06 MP > 0.05, refused from the header
    assert status == 400 and "over this demo's limit of 0.05 MP" in reply["error"]
    assert server.request("/api/jobs/000000000000")[0] == 404
    # Still serving after all of that.
    state = server.finished(server.upload(_png(), "fine.png")[1]["job"])
    assert state["state"] == "done"


def test_the_page_icon_is_served(server):
    status, body, headers = server.request("/favicon.ico")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and body.startswith(b"<svg")
    assert b'href="/favicon.svg"' in server.request("/")[1]
    assert server.request("/favicon.svg")[1] == body


def test_bad_start_options_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "demo.py"), "--no-bundled", "--checkpoint",
                             str(tmp_path / "missing.pt")], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "missing.pt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("headless browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (in .[dev])")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)


def test_the_page_shows_the_restored_image_in_a_browser(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        photo = tmp_path / "blurry.png"
        photo.write_bytes(_png(120, 90))
        browser.get(server.url)
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#model option"))
        browser.find_element(By.ID, "file").send_keys(str(photo))
        shown = WebDriverWait(browser, 120).until(lambda b: b.execute_script(
            "const img = document.getElementById('after');"
            "return img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;"))
        assert shown == [120, 90]
        assert browser.find_element(By.ID, "download").get_attribute("aria-disabled") == "false"
        assert "restored in" in browser.find_element(By.ID, "state").text
        screenshot = Path(os.environ.get("LIGHTDEBLUR_DEMO_SCREENSHOT", tmp_path / "demo.png"))
        browser.save_screenshot(str(screenshot))
        assert Image.open(screenshot).size[0] > 0
        # A bad file shows its message on the page.
        bad = tmp_path / "notes.png"
        bad.write_bytes(b"not an image")
        browser.find_element(By.ID, "file").send_keys(str(bad))
        message = WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "message").text)
        assert message.startswith("notes.png is not an image")
    finally:
        browser.quit()


def _restored_src(browser, previous: str | None = None):
    """The restored image's address once a job newer than ``previous`` has shown it, else None."""
    return browser.execute_script(
        "const img = document.getElementById('after'), src = img.getAttribute('src');"
        "return src && src !== arguments[0] && img.complete && img.naturalWidth > 0 ? src : null;", previous)


def test_the_page_reruns_a_photo_for_another_model_or_the_same_file_and_clears_a_failed_one(tmp_path, checkpoint):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    other = tmp_path / "other.pt"
    shutil.copyfile(checkpoint, other)
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cwd").mkdir()
    demo = DemoServer("--no-bundled", "--checkpoint", str(checkpoint), "--checkpoint", str(other),
                      cwd=tmp_path / "cwd", tmpdir=tmp_path / "tmp")
    browser = _browser()
    try:
        photo = tmp_path / "blurry.png"
        photo.write_bytes(_png(96, 72))
        browser.get(demo.url)
        wait = WebDriverWait(browser, 120)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
        state = lambda: browser.find_element(By.ID, "state").text  # noqa: E731
        browser.find_element(By.ID, "file").send_keys(str(photo))
        first = wait.until(lambda b: _restored_src(b))
        assert f"with {checkpoint}" in state()
        # Another model re-runs the photo on screen, with no new upload from the user.
        Select(browser.find_element(By.ID, "model")).select_by_value("checkpoint-1")
        second = wait.until(lambda b: _restored_src(b, first))
        assert f"with {other}" in state() and second.split("/")[3] != first.split("/")[3]
        # Choosing the same file again runs it again.
        browser.find_element(By.ID, "file").send_keys(str(photo))
        third = wait.until(lambda b: _restored_src(b, second))
        assert third.split("/")[3] != second.split("/")[3]
        # A failed upload takes the previous result off the screen.
        bad = tmp_path / "notes.png"
        bad.write_bytes(b"not an image")
        browser.find_element(By.ID, "file").send_keys(str(bad))
        message = wait.until(lambda b: b.find_element(By.ID, "message").text)
        assert message.startswith("notes.png is not an image")
        assert browser.find_element(By.ID, "after").get_attribute("src") is None
        assert not browser.find_element(By.ID, "stage").is_displayed()
        assert browser.find_element(By.ID, "download").get_attribute("aria-disabled") == "true"
        # ... and a model change then has nothing to re-run.
        Select(browser.find_element(By.ID, "model")).select_by_value("checkpoint-0")
        time.sleep(1)
        assert browser.find_element(By.ID, "message").text == message
    finally:
        browser.quit()
        demo.stop()
