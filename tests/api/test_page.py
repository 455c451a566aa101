"""The live page (pipeline/api/page.py): `jpeg_frames`' rules, and the page in a real
headless Chromium (Debian's chromium and chromium-driver, `make system-deps`).

The control API's server lives elsewhere (pipeline/api/); these tests serve the page
with a test-only WSGI app over `FakeControl`, whose taps carry real Messages of synthetic
frames. The app has the server's routes and token rules: the bearer token on JSON routes,
`?token=` accepted on the two image routes only, GET / open. With
DETSTREAM_SCREENSHOT=path the page's screenshot (1280x800) is saved there
(docs/images/live-page.png is made so).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import PIL.Image
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from api_support import FakeControl, blob_message, scene_messages, wait_for
from pipeline.api import page
from pipeline.api.page import index_html, jpeg_frames
from pipeline.core.errors import UnknownSource
from pipeline.core.messages import Overlay
from support import blob_scene, render_blobs

TOKEN = "page-test-token"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HOSTILE = "<img src=x onerror=window.pwned=1> & co"  # a source name that would run as HTML


# --- jpeg_frames -----------------------------------------------------------------------------

@pytest.fixture
def blobs() -> Iterator[FakeControl]:
    """A fake with one source, 'cam', offering blob frames at 30 a second."""
    control, stop = FakeControl(), threading.Event()
    control.put("cam", [blob_message("cam", i) for i in range(30)])
    player = threading.Thread(target=control.play, args=(30, stop), daemon=True)
    player.start()
    yield control
    stop.set()
    player.join()


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image


def test_frames_are_jpegs_of_the_annotated_frame(blobs):
    frames = jpeg_frames(blobs, "cam", 10, threading.Event())
    data = next(frames)
    frames.close()
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    image = decode(data)  # BGR
    assert image.shape == (180, 320, 3)
    # the red blob (RGB 230, 20, 20) decodes red: the RGB frame was converted for OpenCV
    red = next(b for b in blob_scene(0, 320, 180) if b.class_id == 1)
    x1, y1, x2, y2 = red.box
    assert image[y1:y2, x1:x2, 2].mean() > 120 and image[y1:y2, x1:x2, 0].mean() < 90
    # boxes and labels are drawn: it differs from the plain frame far more than JPEG noise does
    plain = decode(cv2.imencode(".jpg", cv2.cvtColor(render_blobs(0, 320, 180), cv2.COLOR_RGB2BGR))[1].tobytes())
    assert np.abs(image.astype(int) - plain.astype(int)).max() > 100


def test_rate_is_at_most_fps(blobs):
    frames = jpeg_frames(blobs, "cam", 5, threading.Event())
    times = []
    start = time.monotonic()
    for _ in frames:
        times.append(time.monotonic() - start)
        if times[-1] >= 1.0:
            break
    frames.close()
    within = [t for t in times if t < 1.0]
    assert 3 <= len(within) <= 6, f"{len(within)} frames in 1 s at fps=5 from a 30 fps source: {times}"
    assert min(np.diff(times)) >= 0.19


def test_nothing_is_encoded_until_someone_iterates(blobs, monkeypatch):
    encoded = []
    monkeypatch.setattr(page, "annotate", lambda message, trails=None: encoded.append(1) or message.detections.frame.image)
    frames = jpeg_frames(blobs, "cam", 30, threading.Event())
    time.sleep(0.3)  # about 9 messages offered
    assert blobs.tap.watching("cam") == 0 and encoded == []
    next(frames)
    assert blobs.tap.watching("cam") == 1 and len(encoded) == 1
    frames.close()  # the server closes the iterator when the viewer leaves
    assert blobs.tap.watching("cam") == 0
    time.sleep(0.2)
    assert len(encoded) == 1


def test_unknown_source_raises_at_the_first_frame(blobs):
    frames = jpeg_frames(blobs, "nope", 5, threading.Event())  # nothing checked yet
    with pytest.raises(UnknownSource):
        next(frames)


def test_ends_when_stopped(blobs):
    stop = threading.Event()
    frames = jpeg_frames(blobs, "cam", 5, stop)
    next(frames)
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    rest = list(frames)
    assert len(rest) <= 3 and time.monotonic() - start < 1.5
    assert blobs.tap.watching("cam") == 0


def test_ends_when_the_source_is_removed(blobs):
    frames = jpeg_frames(blobs, "cam", 5, threading.Event())
    next(frames)
    blobs.drop("cam")
    start = time.monotonic()
    list(frames)
    assert time.monotonic() - start < page.POLL_S * 2 + 0.5
    assert blobs.tap.watching("cam") == 0


def test_ends_after_a_quiet_while(blobs, monkeypatch):
    monkeypatch.setattr(page, "IDLE_S", 0.6)
    frames = jpeg_frames(blobs, "cam", 5, threading.Event())
    next(frames)
    blobs.update("cam", {"enabled": False})  # paused: no more messages
    start = time.monotonic()
    list(frames)
    assert 0.4 < time.monotonic() - start < 0.6 + page.POLL_S + 0.5


def test_wide_frames_are_scaled_down():
    data = page.encode_jpeg(blob_message("wide", 0, 1920, 1080))
    assert decode(data).shape == (720, 1280, 3)
    assert decode(page.encode_jpeg(blob_message("small", 0, 640, 360))).shape == (360, 640, 3)


# --- the page --------------------------------------------------------------------------------

def test_page_is_one_self_contained_file():
    html = index_html()
    assert "<title>detstream</title>" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page loads something from elsewhere"
    assert "@import" not in html and "@font-face" not in html
    script = html.split("<script>", 1)[1]
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in script, f"the script writes HTML ({sink}): API strings go in as text only"


def app_for(control: FakeControl, stop: threading.Event, fps: float, refuse: set[str]) -> Callable:
    """The server's routes, as the page uses them, in a test-only WSGI app. The next stream
    request of each source named in `refuse` gets a 503 (and its name leaves the set)."""

    def json_response(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status, mimetype="application/json")

    def mjpeg(frames: Iterator[bytes]) -> Iterator[bytes]:
        try:
            for jpeg in frames:
                yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg)
        finally:
            frames.close()  # the tap closes when the viewer leaves

    def respond(request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        image_route = len(parts) == 3 and parts[0] == "sources" and parts[2] in ("stream.mjpg", "frame.jpg")
        if request.path != "/":
            given = request.headers.get("Authorization", "")
            if given != f"Bearer {TOKEN}" and not (image_route and request.args.get("token") == TOKEN):
                return json_response({"error": "unauthorized"}, 401)
        try:
            if request.path == "/":
                return Response(index_html(), mimetype="text/html")
            if request.path == "/health/ready":
                return json_response(control.ready())
            if request.path == "/sources":
                return json_response(control.sources())
            if image_route and parts[2] == "stream.mjpg":
                control.source(parts[1])
                if parts[1] in refuse:
                    refuse.discard(parts[1])
                    return json_response({"error": "try again"}, 503)
                frames = jpeg_frames(control, parts[1], fps, stop)
                return Response(mjpeg(frames), mimetype="multipart/x-mixed-replace; boundary=frame",
                                direct_passthrough=True)
            if len(parts) == 2 and parts[0] == "sources" and request.method == "PATCH":
                return json_response(control.update(parts[1], request.get_json()))
            if len(parts) == 2 and parts[0] == "sources":
                return json_response(control.source(parts[1]))
        except UnknownSource as error:
            return json_response({"error": str(error)}, 404)
        return json_response({"error": "not found"}, 404)

    def app(environ: dict, start_response: Callable) -> Iterator[bytes]:
        return respond(Request(environ))(environ, start_response)

    return app


ZONES = {"doorway": np.array([[330, 200], [630, 200], [630, 350], [330, 350]], np.float32)}
LINES = {"gate": np.array([[40, 300], [300, 250]], np.float32)}
COUNTS = {"doorway": {"inside": {"person": 2}}, "gate": {"in": {"car": 14, "person": 3}, "out": {"car": 9}}}


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[FakeControl, str, set[str]]]:
    """The test app on a free port, with three cameras; yields the control, the base URL
    and the app's `refuse` set."""
    control, stop, refuse = FakeControl(), threading.Event(), set()
    control.put("entrance", scene_messages("entrance", 11, Overlay(ZONES, LINES, COUNTS)))
    control.put("parking-lot", scene_messages("parking-lot", 12))
    control.put("loading-dock", [], state="reconnecting")
    control.received["loading-dock"] = 18_342  # frames of its first session
    player = threading.Thread(target=control.play, args=(10, stop), daemon=True)
    player.start()
    server = make_server("127.0.0.1", 0, app_for(control, stop, 5, refuse), threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    yield control, f"http://127.0.0.1:{server.server_port}", refuse
    stop.set()  # ends the open streams, so the server's threads can finish
    server.shutdown()
    serving.join()
    player.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: `make system-deps` installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,800", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    # the page's viewport (a window's size includes the browser's own bars)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def opened(site, browser) -> tuple[FakeControl, Any]:
    control, url, _ = site
    browser.get(f"{url}/#token={TOKEN}")
    return control, browser


def rows(driver: Any) -> dict[str, list[str]]:
    """The sources table: name -> texts of the other cells."""
    found = driver.execute_script(
        "return [...document.querySelectorAll('#sources tr[data-source]')]"
        ".map(r => [...r.cells].map(c => c.textContent))")
    return {cells[0]: cells[1:] for cells in found}


def image_of(driver: Any, name: str) -> Any:
    from selenium.webdriver.common.by import By

    for card in driver.find_elements(By.CSS_SELECTOR, "#cameras figure"):
        if card.get_attribute("data-source") == name:
            return card.find_element(By.CSS_SELECTOR, "img")
    raise AssertionError(f"no camera card for {name!r}")


def test_table_lists_the_sources_with_their_states(opened):
    _, driver = opened
    assert driver.title == "detstream"
    table = wait_for(lambda: (r := rows(driver)) and r["entrance"][2] != "0" and r, what="the table")
    assert list(table) == ["entrance", "parking-lot", "loading-dock"]
    assert table["entrance"][0] == "streaming" and table["loading-dock"][0] == "reconnecting"
    assert table["entrance"][1] == "10.0" and table["loading-dock"][6] == "1"
    assert table["entrance"][7] == "Pause"
    assert driver.find_element("id", "ready").text == "ready"


def test_table_follows_state_changes(opened):
    control, driver = opened
    wait_for(lambda: rows(driver).get("parking-lot", [""])[0] == "streaming", what="parking-lot streaming")
    control.set_state("parking-lot", "stalled")
    wait_for(lambda: rows(driver)["parking-lot"][0] == "stalled", 5, "the table to show the new state")
    control.set_state("parking-lot", "streaming")
    wait_for(lambda: rows(driver)["parking-lot"][0] == "streaming", 5, "the state back")


def test_camera_frames_update(opened):
    control, driver = opened
    image = wait_for(lambda: image_of(driver, "entrance"), what="the entrance image")
    wait_for(lambda: driver.execute_script("return arguments[0].naturalWidth", image) == 640, what="a first frame")
    assert control.tap.watching("entrance") == 1
    shots = []
    for _ in range(2):
        shot = cv2.imdecode(np.frombuffer(image.screenshot_as_png, np.uint8), cv2.IMREAD_COLOR)
        shots.append(shot.astype(np.int16))
        time.sleep(1.0)
    changed = (np.abs(shots[0] - shots[1]).max(axis=2) > 40).mean()
    assert changed > 0.002, f"the image did not change in 1 s ({changed:.4f} of its pixels)"


def test_names_are_text_never_markup(opened):
    control, driver = opened
    control.put(HOSTILE, [])
    try:
        wait_for(lambda: HOSTILE in rows(driver), what="the hostile name in the table")
        assert driver.execute_script("return window.pwned === undefined")
        assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    finally:
        control.drop(HOSTILE)
    wait_for(lambda: HOSTILE not in rows(driver), what="the row to go")


def test_a_refused_stream_is_tried_again(site, opened):
    control, driver = opened
    refuse = site[2]
    refuse.add("side-gate")
    control.put("side-gate", [blob_message("side-gate", i) for i in range(30)])
    try:
        wait_for(lambda: "side-gate" not in refuse, 5, "the page to ask for the stream")
        assert control.tap.watching("side-gate") == 0
        wait_for(lambda: control.tap.watching("side-gate") == 1, 10, "the page to ask again")
        wait_for(lambda: driver.execute_script("return arguments[0].naturalWidth", image_of(driver, "side-gate")) == 320,
                 what="its frames")
    finally:
        control.drop("side-gate")
    wait_for(lambda: "side-gate" not in rows(driver), what="the row to go")


def test_pause_and_resume_send_patch(opened):
    from selenium.webdriver.common.by import By

    control, driver = opened

    def button() -> Any:
        return driver.find_element(By.CSS_SELECTOR, "#sources tr[data-source='parking-lot'] button")

    wait_for(lambda: button().text == "Pause", what="a Pause button")
    button().click()
    wait_for(lambda: rows(driver)["parking-lot"][0] == "paused", 5, "paused")
    assert button().text == "Resume" and control.patches[-1] == ("parking-lot", {"enabled": False})
    button().click()
    wait_for(lambda: rows(driver)["parking-lot"][0] == "streaming", 5, "streaming again")
    assert control.patches[-1] == ("parking-lot", {"enabled": True})
    image = image_of(driver, "parking-lot")  # the stream is opened again
    wait_for(lambda: control.tap.watching("parking-lot") == 1, what="the stream to be watched")
    wait_for(lambda: driver.execute_script("return arguments[0].naturalWidth", image) == 640, what="its frames")


def test_stop_watching_ends_the_encoding(opened):
    from selenium.webdriver.common.by import By

    control, driver = opened
    wait_for(lambda: control.tap.watching("entrance") == 1, what="entrance watched")
    card = driver.find_element(By.CSS_SELECTOR, "#cameras figure[data-source='entrance']")
    card.find_element(By.XPATH, ".//button[text()='Stop watching']").click()
    wait_for(lambda: control.tap.watching("entrance") == 0, 5, "the server to close the tap")
    card.find_element(By.XPATH, ".//button[text()='Watch']").click()
    wait_for(lambda: control.tap.watching("entrance") == 1, 5, "watched again")


def test_without_the_token_the_page_says_so(site, browser):
    _, url, _ = site
    browser.get(f"{url}/")
    status = wait_for(lambda: "401" in (t := browser.find_element("id", "status").text) and t, what="a 401 message")
    assert "#token=" in status
    browser.get(f"{url}/#token={TOKEN}")  # back to a working page for the tests after this one
    browser.refresh()  # a new fragment alone does not load the page again


def test_a_fresh_load_shows_the_cameras(opened):
    """Saves the page's screenshot when DETSTREAM_SCREENSHOT=path is set: that is how
    docs/images/live-page.png is made (CI never rewrites it)."""
    from selenium.webdriver.common.by import By

    _, driver = opened
    driver.refresh()
    for name in ("entrance", "parking-lot"):
        wait_for(lambda: driver.execute_script("return arguments[0].naturalWidth", image_of(driver, name)) == 640,
                 what=f"{name}'s frames")
    hint = driver.find_element(By.CSS_SELECTOR, "#cameras figure[data-source='loading-dock'] .hint")
    assert hint.text.splitlines()[0] == "no frames: reconnecting"
    path = os.environ.get("DETSTREAM_SCREENSHOT")
    if path:
        time.sleep(1.5)  # counters and ages settle
        # 256 colours keep the docs' PNG small (a third of the full-colour size) and look the same
        shot = PIL.Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
        assert shot.size == (1280, 800)
        shot.quantize(256).save(path, optimize=True)
