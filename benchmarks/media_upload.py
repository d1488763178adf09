"""Benchmark: a 5 MB JPEG from upload to the Markdown inserted in the editor.

    .venv/bin/python benchmarks/media_upload.py [--runs N]

Makes a 4000 × 3000 JPEG photo of about 5 MB (with EXIF and a GPS position, as a phone
writes it), then, interleaved, N times each:

- server side: ``images.clean`` (decode, orient, shrink to 1200 px, encode) and
  ``media_store.add`` (one row in SQLite), called directly;
- HTTP: ``POST /editor/media`` to uvicorn on loopback, as the editor's script sends it,
  until its JSON answer (the Markdown to insert) is read;
- browser: in Debian's Chromium (Playwright), from the click on the dialog's Insert
  button, the file already chosen and the alt text typed, to the Markdown in the textarea.

The row is deleted after each run, so every run stores the image anew. Prints medians.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import io
import json
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import web_preview_reload as reload_benchmark
from PIL import Image, ImageFilter

from newsletter import db, users
from newsletter.settings import Settings
from newsletter.web import create_app, images, media_store
from newsletter.web.server import web_server

EMAIL, PASSWORD = reload_benchmark.EMAIL, reload_benchmark.PASSWORD
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def photo(target: int = 5 * 1024 * 1024) -> bytes:
    """A 4000 × 3000 JPEG with camera noise over soft shapes, about ``target`` bytes."""
    size = (4000, 3000)
    base = Image.linear_gradient("L").resize(size).filter(ImageFilter.GaussianBlur(4))
    noise = [Image.effect_noise(size, 40) for _ in range(3)]
    image = Image.merge("RGB", [Image.blend(base, layer, 0.5) for layer in noise])
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (54.0, 41.0, 12.5), 3: "E", 4: (25.0, 16.0, 48.0)}
    for quality in range(95, 50, -1):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
        if out.tell() <= target:
            break
    return out.getvalue()


def settings_in(folder: Path, port: int) -> Settings:
    """The preview benchmark's settings, with one issue to edit."""
    settings = reload_benchmark.settings_in(folder, port)
    (settings.issues_dir / "matavimas.md").write_text(
        "---\nsubject: Bibliotekos pažangai – matavimas\ndate: 2026-02-01\n---\n# Matavimas\n",
        encoding="utf-8",
    )
    return settings


class Editor:
    """A logged-in HTTP client of the app (urllib, a cookie jar)."""

    def __init__(self, url: str) -> None:
        self.url = url
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        token = self.token("/editor/login")
        body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD, "csrf_token": token})
        self.opener.open(f"{url}/editor/login", body.encode()).read()
        self.csrf = self.token("/editor/media")

    def token(self, path: str) -> str:
        page = self.opener.open(f"{self.url}{path}").read().decode()
        return CSRF.search(page).group(1)

    def upload(self, data: bytes) -> dict[str, object]:
        boundary = "----benchmark7d1a"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{self.csrf}\r\n',
            f'--{boundary}\r\nContent-Disposition: form-data; name="alt"\r\n\r\nSkaitykla\r\n',
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="IMG_0001.jpg"'
            "\r\nContent-Type: image/jpeg\r\n\r\n",
        ]
        body = "".join(parts).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(
            f"{self.url}/editor/media",
            data=body,
            headers={
                "content-type": f"multipart/form-data; boundary={boundary}",
                "accept": "application/json",
                "x-csrf-token": self.csrf,
            },
        )
        return json.loads(self.opener.open(request).read())


def browser_upload(page, data: bytes) -> float:
    """Seconds from the Insert click to the Markdown in the textarea."""
    from playwright.sync_api import expect

    page.reload()
    with page.expect_file_chooser() as chooser:
        page.click("#media-button")
    chooser.value.set_files(
        files=[{"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": data}]
    )
    page.fill("#media-dialog-alt", "Skaitykla")
    started = time.perf_counter()
    page.click("#media-dialog-insert")
    expect(page.locator("textarea[name=text]")).to_have_value(re.compile("/media/"), timeout=60_000)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    from playwright.sync_api import sync_playwright

    data = photo()
    print(f"input: {len(data) / 2**20:.2f} MB JPEG, 4000 x 3000, EXIF with GPS")
    with tempfile.TemporaryDirectory() as folder:
        port = reload_benchmark.free_port()
        settings = settings_in(Path(folder), port)
        db.migrate(settings.database)
        with db.transaction(settings.database) as session:
            users.create_user(session, EMAIL, PASSWORD)
        server = web_server(create_app(settings, watch=False), "127.0.0.1", port)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        clean_s, store_s, http_s, browser_s = [], [], [], []
        try:
            editor = Editor(url)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=reload_benchmark.FLAGS
                )
                page = browser.new_page()
                page.goto(f"{url}/editor/login")
                page.fill("input[name=email]", EMAIL)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{url}/editor/")
                page.goto(f"{url}/editor/issues/matavimas/edit")
                for _ in range(runs):
                    started = time.perf_counter()
                    clean = images.clean(data, "IMG_0001.jpg", "image/jpeg")
                    clean_s.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    media_store.add(settings.database, clean, "IMG_0001.jpg", "Skaitykla", EMAIL)
                    store_s.append(time.perf_counter() - started)
                    media_store.remove(settings.database, clean.sha256)

                    started = time.perf_counter()
                    answer = editor.upload(data)
                    http_s.append(time.perf_counter() - started)
                    media_store.remove(settings.database, str(answer["sha256"]))

                    browser_s.append(browser_upload(page, data))
                    media_store.remove(settings.database, clean.sha256)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
    print(f"output: {len(clean.content) / 1024:.0f} KB JPEG, {clean.width} x {clean.height}")
    for name, values in (
        ("server: images.clean (decode, orient, resize, encode)", clean_s),
        ("server: media_store.add (SQLite row)", store_s),
        ("HTTP POST /editor/media to JSON answer", http_s),
        ("Chromium: Insert click to Markdown in the editor", browser_s),
    ):
        print(f"{name:56} median {statistics.median(values) * 1000:7.0f} ms  (n={len(values)})")


if __name__ == "__main__":
    main()
