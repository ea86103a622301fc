"""The HTML report renders in a real headless browser (Debian's Chromium; scripts/test.sh installs
it): the screenshot is not blank, the SVG curves and the embedded PNGs are drawn, and the page
asks for nothing from the network."""

import re
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("torchmetrics")
pytest.importorskip("av")

import synthetic_videos as sv  # noqa: E402
from lvsa.cli import main  # noqa: E402

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
CURVE_BLUE = np.array([0x1F, 0x77, 0xB4])  # html._COLOURS[0], the first line of every chart
SHEET_BACKGROUND = np.array([24, 24, 24])  # images._BACKGROUND, around every contact-sheet frame


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("html")
    video = sv.write(sv.looping(8, 24), folder / "loop.mp4")
    dense = sv.write(sv.pan(24), folder / "dense.mp4")
    assert main(["eval", str(video), "--reference", str(dense), "--out", str(folder / "eval")]) == 0
    return folder / "eval" / "loop" / "report.html"


def test_the_page_needs_no_network(page):
    text = page.read_text()
    assert "<script" not in text and "<link" not in text
    # The only URL is the SVG namespace, which browsers never fetch.
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    assert text.count("data:image/png;base64,") == 3  # contact sheet, self-similarity, reference strip
    assert text.count("<svg") >= 6


@pytest.mark.skipif(BROWSER is None, reason="no chromium binary on PATH (scripts/test.sh installs Debian's chromium)")
def test_the_page_renders_in_headless_chromium(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--hide-scrollbars", "--window-size=1000,5000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    assert pixels.shape == (5000, 1000, 3)
    assert pixels.std() > 20, "the screenshot is blank"
    near = lambda colour: (np.abs(pixels - colour).max(axis=2) <= 12).sum()  # noqa: E731
    assert near(CURVE_BLUE) > 500, "no chart line was drawn"
    assert near(SHEET_BACKGROUND) > 2000, "the embedded contact sheet was not drawn"
