"""A local web page for trying the models: drop a blurry photo, pick a model, compare, download the result.

Python's own threaded HTTP server and one static page (``demo_page.html``): nothing to install beyond the core
package, nothing fetched from the network, so it runs offline on a laptop CPU. The browser sends the file's
bytes as the body of one POST (no multipart form to parse); the restoration runs on one worker thread, one
image at a time, and the page polls its progress. Uploads and results live in one temporary folder, removed
when the server stops; nothing is written anywhere else.

Endpoints: ``GET /`` the page; ``GET /api/models``; ``POST /api/restore?model=ID&name=FILE`` (body: the image)
-> ``{"job": ID}``; ``GET /api/jobs/ID`` -> state, progress, sizes or the error; ``GET /api/jobs/ID/input.png``
(the upload as an 8-bit PNG the browser can show) and ``GET /api/jobs/ID/restored`` (full resolution, in the
upload's bit depth and alpha, as a PNG).
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlparse

import torch

from core.errors import RESTORE_ERRORS, DataError
from core.image_io import ImageInfo, read_image_for_inference, write_image_like
from core.images import image_size

PAGE = Path(__file__).with_name("demo_page.html")
ICON = Path(__file__).with_name("favicon.svg")
# Uploads larger than this are refused before they are read (413); images with more pixels after decoding too.
DEFAULT_MAX_UPLOAD_MB = 64
DEFAULT_MAX_MEGAPIXELS = 24.0
DISCARD_FACTOR = 4  # a refused upload is read (and dropped) up to this many times the limit
KEPT_JOBS = 16  # finished jobs whose files stay available; older ones are deleted
SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")


@dataclass
class Model:
    id: str
    label: str
    load: Callable[[], Callable]  # -> a Restorer (loaded on first use, then kept)


@dataclass
class Job:
    id: str
    model: str
    name: str
    folder: Path
    state: str = "queued"  # queued | running | done | error
    done: int = 0
    total: int = 1
    error: str | None = None
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def public(self) -> dict:
        return {"job": self.id, "state": self.state, "done": self.done, "total": self.total, "error": self.error,
                "width": self.width, "height": self.height, "seconds": round(self.seconds, 2), "model": self.model,
                "name": self.name, "notes": self.notes}


class DemoApp:
    """The jobs, the models and the worker thread; the HTTP handler only translates requests into calls here."""

    def __init__(self, models: list[Model], max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
                 max_megapixels: float = DEFAULT_MAX_MEGAPIXELS):
        if not models:
            raise ValueError("the demo needs at least one model")
        self.models = {model.id: model for model in models}
        self.restorers: dict[str, Callable] = {}
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.max_pixels = int(max_megapixels * 1_000_000)
        self.folder = Path(tempfile.mkdtemp(prefix="lightdeblur-demo-"))
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.pending: queue.Queue[Job | None] = queue.Queue()
        self.worker = threading.Thread(target=self._work, name="restore", daemon=True)
        self.worker.start()

    # Requests -----------------------------------------------------------------------------------------------
    def submit(self, model_id: str, name: str, body: bytes) -> Job:
        if model_id not in self.models:
            raise DataError(f"unknown model {model_id!r}; choose one of {', '.join(self.models)}")
        if not body:
            raise DataError("the upload is empty: choose an image file")
        suffix = Path(name).suffix.lower()
        suffix = suffix if SAFE_SUFFIX.match(suffix) else ".img"
        job_id = uuid.uuid4().hex[:12]
        job = Job(job_id, model_id, Path(name).name or "image", self.folder / job_id)
        job.folder.mkdir()
        # The upload keeps its suffix so the readers pick the right decoder (16-bit PNG/TIFF need it).
        upload = job.folder / f"input{suffix}"
        upload.write_bytes(body)
        try:  # the header alone, before any job: an image over the limit is never queued, let alone decoded
            job.width, job.height = _read_upload(upload, job.name, image_size)
            if job.width * job.height > self.max_pixels:
                raise DataError(f"{job.name} is {job.width}x{job.height} = {job.width * job.height / 1e6:.1f} MP, "
                                f"over this demo's limit of {self.max_pixels / 1e6:g} MP (start it with "
                                "--max-megapixels)")
        except DataError:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        with self.lock:
            self.jobs[job.id] = job
            self._forget_old_jobs()
        self.pending.put(job)
        return job

    def job(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def close(self) -> None:
        self.pending.put(None)
        self.worker.join(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)

    # Work ---------------------------------------------------------------------------------------------------
    def _restorer(self, model_id: str) -> Callable:
        if model_id not in self.restorers:
            self.restorers[model_id] = self.models[model_id].load()
        return self.restorers[model_id]

    def _work(self) -> None:
        while (job := self.pending.get()) is not None:
            job.state = "running"
            start = time.monotonic()
            try:
                self._restore(job)
                job.state = "done"
            except (*RESTORE_ERRORS, OSError, ValueError) as error:  # RESTORE_ERRORS holds DataError
                job.error, job.state = _one_line(error), "error"
            except Exception as error:  # the server keeps serving whatever one image does
                job.error, job.state = f"restoration failed: {type(error).__name__}: {_one_line(error)}", "error"
            finally:
                job.seconds = time.monotonic() - start
                for upload in job.folder.glob("input.*"):
                    if upload.name != "input.png" or job.state == "error":
                        upload.unlink(missing_ok=True)

    def _restore(self, job: Job) -> None:
        upload = next(job.folder.glob("input.*"))  # its header passed the pixel limit in submit()
        image, info = _read_upload(upload, job.name, read_image_for_inference)
        job.height, job.width = image.shape[-2:]
        preview = job.folder / "input.png"
        if upload != preview:
            write_image_like(image, ImageInfo(gray=False, bits=8, alpha=None), preview)

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        with torch.inference_mode():
            restored = self._restorer(job.model)(image, progress)
        job.notes = write_image_like(restored, info, job.folder / "restored.png")
        job.done = job.total

    def _forget_old_jobs(self) -> None:
        finished = [job for job in self.jobs.values() if job.state in ("done", "error")]
        for job in finished[: max(0, len(finished) - KEPT_JOBS)]:
            shutil.rmtree(job.folder, ignore_errors=True)
            del self.jobs[job.id]


def _read_upload(path: Path, name: str, reader: Callable):
    try:
        return reader(path)
    except (DataError, OSError, ValueError) as error:
        # The reader names the temporary file; the user knows their file by its own name.
        reason = _one_line(error).replace(f"cannot read image {path}: ", "").replace(str(path), name)
        raise DataError(f"{name} is not an image this demo can read ({reason})") from None


def download_name(name: str) -> str:
    """``<stem>_deblurred.png`` for the client's file name, kept to characters that are safe inside a quoted
    header value: a CR/LF or quote in ``name=`` must never reach the response headers."""
    stem = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(name).stem)[:100].strip() or "image"
    return f"{stem}_deblurred.png"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class DemoHandler(BaseHTTPRequestHandler):
    app: DemoApp  # set on the subclass make_server builds
    server_version = "lightdeblur-demo"

    def log_message(self, format: str, *args) -> None:  # quiet: one line per request is noise in a terminal
        pass

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        if path in ("/", "/index.html"):
            return self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
        if path in ("/favicon.svg", "/favicon.ico"):  # browsers ask for /favicon.ico whatever the page links
            return self._send(HTTPStatus.OK, ICON.read_bytes(), "image/svg+xml")
        if path == "/api/models":
            return self._json(HTTPStatus.OK, [{"id": m.id, "label": m.label} for m in self.app.models.values()])
        match = re.fullmatch(r"/api/jobs/([0-9a-f]{12})(/input\.png|/restored)?", path)
        job = self.app.job(match.group(1)) if match else None
        if job is None:
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page or job: {path}"})
        if match.group(2) is None:
            return self._json(HTTPStatus.OK, job.public())
        file = job.folder / ("input.png" if match.group(2) == "/input.png" else "restored.png")
        if not file.is_file():
            return self._json(HTTPStatus.CONFLICT, {"error": f"job {job.id} has no such image yet ({job.state})"})
        headers = {}
        if file.name == "restored.png":
            headers["Content-Disposition"] = f'attachment; filename="{download_name(job.name)}"'
        self._send(HTTPStatus.OK, file.read_bytes(), "image/png", headers)

    def do_POST(self) -> None:
        url = urlparse(self.path)
        if url.path != "/api/restore":
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {url.path}"})
        query = parse_qs(url.query)
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "the upload needs a Content-Length"})
        if length > self.app.max_upload_bytes:
            self.close_connection = True
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {
                "error": f"the file is {length / 2**20:.1f} MiB, over this demo's limit of "
                         f"{self.app.max_upload_bytes / 2**20:g} MiB (start it with --max-upload-mb)"})
            return self._discard_body(length)
        body = self.rfile.read(length)
        if len(body) < length:  # the client closed mid-upload: a partial file is never restored
            print(f"demo: an upload ended after {len(body)} of {length} bytes; dropped", file=sys.stderr)
            self.close_connection = True
            return
        model = query.get("model", [next(iter(self.app.models))])[0]
        try:
            job = self.app.submit(model, query.get("name", ["image"])[0], body)
        except DataError as error:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        self._json(HTTPStatus.ACCEPTED, {"job": job.id})

    def _discard_body(self, length: int) -> None:
        """Read and drop a refused upload (never kept), so a client that sends the whole body before reading the
        reply gets the 413 instead of a broken pipe; past DISCARD_FACTOR times the limit the connection just
        closes."""
        left = min(length, DISCARD_FACTOR * self.app.max_upload_bytes)
        while left > 0 and (chunk := self.rfile.read(min(left, 2**20))):
            left -= len(chunk)

    def _json(self, status: HTTPStatus, payload) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def make_server(app: DemoApp, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    handler = type("BoundDemoHandler", (DemoHandler,), {"app": app})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
