"""Warning annotations in Grafana, and uploading the dashboards (grafana-client).

Each warning version becomes one annotation on the overview dashboard, at the warning's
event time (``last_seen``), tagged ``tocsin``, ``region:…``, ``scenario:…``,
``severity:…`` and ``status:…`` so panels can filter them. The text holds only bounded
fields and the first sentence of the explanation, which the correlator writes from
aggregated evidence; event ids, signals and record contents never reach Grafana.

:class:`AnnotationSink` queues annotations in memory (bounded: the oldest is dropped when
full) and posts them from a background task, one by one and in order, with the synchronous
grafana-client in a worker thread. Connection errors, timeouts, 5xx and 429 are retried
with capped exponential backoff (:mod:`streams.publish.retry`); any other 4xx (bad token,
unknown dashboard) cannot be cured by retrying, so that annotation is logged and dropped.
``on_result`` receives ``"sent"`` after each delivered annotation, ``"failed"`` after each
failed attempt and ``"dropped"`` for each annotation given up (queue full, refused by
Grafana, still queued at :meth:`AnnotationSink.stop`). It implements the sink contract
(:class:`streams.publish.sink.Sink`).

:func:`push_dashboards` uploads dashboard JSON files (``tocsin grafana push``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import urljoin, urlsplit, urlunsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from streams.core.errors import EXIT_UNAVAILABLE, InputFileError, TocsinError
from streams.core.schemas import Warning
from streams.publish.retry import Backoff, describe, report

log = logging.getLogger("tocsin.grafana")

#: longest annotation text (characters)
TEXT_MAX: Final = 300
PUSH_MESSAGE: Final = "tocsin grafana push"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_MARKUP = re.compile(r"[<>]")
_SPACE = re.compile(r"\s+")


class GrafanaError(TocsinError):
    """Grafana refused a request or could not be reached; ``status`` is the HTTP status
    (``None`` when there was no response)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# -- annotations ----------------------------------------------------------------------------
def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (up to the first ``.``/``!``/``?`` followed by white
    space; decimals such as ``58.2`` do not end a sentence)."""
    text = text.strip()
    return _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


def _plain(text: str) -> str:
    return _SPACE.sub(" ", _MARKUP.sub("", text)).strip()


def annotation_for(w: Warning, dashboard_uid: str) -> dict[str, Any]:
    """The Grafana annotation of one warning version (body of ``POST /api/annotations``)."""
    text = _plain(f"{w.status} {w.scenario} in {w.region} ({w.severity}), v{w.version}: "
                  f"{first_sentence(w.explanation)}")
    if len(text) > TEXT_MAX:
        text = text[:TEXT_MAX - 1] + "…"
    return {
        "dashboardUID": dashboard_uid,
        "time": int(w.last_seen.timestamp() * 1000),
        "tags": ["tocsin", f"region:{w.region}", f"scenario:{w.scenario}",
                 f"severity:{w.severity.lower()}", f"status:{w.status}"],
        "text": text,
    }


def _api(url: str, token: str | None, timeout_s: float) -> GrafanaApi:
    # grafana-client appends "api" to the URL's path as is: a sub-path needs its slash
    parts = urlsplit(url)
    if parts.path not in ("", "/") and not parts.path.endswith("/"):
        url = urlunsplit(parts._replace(path=parts.path + "/"))
    return cast(GrafanaApi, GrafanaApi.from_url(url, credential=token, timeout=timeout_s))


def _grafana_message(e: GrafanaException) -> str:
    resp = e.response
    if isinstance(resp, dict) and resp.get("message"):
        return str(resp["message"])
    if isinstance(resp, str) and resp.strip():
        return resp.strip()[:500]
    return str(e.message or type(e).__name__)


def _status(e: BaseException) -> int | None:
    status = getattr(e, "status_code", None)
    return status if isinstance(status, int) and status > 0 else None


def _refused(e: BaseException) -> bool:
    """True when retrying cannot help: a 4xx other than 429 (Too Many Requests)."""
    status = _status(e)
    return isinstance(e, GrafanaClientError) and status is not None and status != 429


def _describe(e: BaseException) -> str:
    if isinstance(e, GrafanaException):
        status = _status(e)
        return f"HTTP {status}: {_grafana_message(e)}" if status else _grafana_message(e)
    return describe(e)


class GrafanaUnavailable(GrafanaError):
    """No answer from Grafana (refused, unknown host, TLS): exit 69."""

    exit_code = EXIT_UNAVAILABLE


#: the OS's reason inside a client library's message: "[Errno 111] Connection refused"
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class AnnotationSink:
    """Posts one Grafana annotation per warning version, from a background task.

    ``submit`` only queues (never blocks, never raises); :meth:`start` starts the task that
    does the network I/O, :meth:`stop` flushes briefly and stops it.
    """

    def __init__(self, url: str, token: str | None, dashboard_uid: str, *,
                 max_queue: int = 10000, max_backoff_s: float = 60.0, timeout_s: float = 5.0,
                 on_result: Callable[[str], None] | None = None) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.url = url
        self.dashboard_uid = dashboard_uid
        self.max_queue = max_queue
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.on_result = on_result
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._api = _api(url, token, timeout_s)
        self._queue: deque[dict[str, Any]] = deque()
        # (warning id, version) already queued: a re-delivered version is not annotated twice
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def pending(self) -> int:
        """Annotations queued, not yet delivered."""
        return len(self._queue)

    # -- the stream side ---------------------------------------------------------------------
    def submit(self, warnings: list[Warning]) -> None:
        """Queue the annotations of new warning versions (no I/O; never raises)."""
        queued = False
        for w in warnings:
            try:
                key = (w.warning_id, w.version)
                if key in self._seen:
                    continue
                annotation = annotation_for(w, self.dashboard_uid)
                self._seen[key] = None
                if len(self._seen) > 2 * self.max_queue:
                    self._seen.popitem(last=False)
                if len(self._queue) >= self.max_queue:
                    self._queue.popleft()
                    self._drop(1, f"the annotation queue is full ({self.max_queue}); the "
                               "oldest annotation was dropped")
                self._queue.append(annotation)
                queued = True
            except Exception:  # a malformed warning must not stop the stream
                log.exception("warning %s not turned into a Grafana annotation",
                              getattr(w, "warning_id", "?"))
        if queued:
            self._wake.set()

    # -- the network side --------------------------------------------------------------------
    async def start(self) -> None:
        """Start the background poster (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        # events bound to this loop (the sink may have been used under another one)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        if self._queue:
            self._wake.set()
        self._task = asyncio.create_task(self._run(), name="tocsin-grafana-annotations")

    async def flush(self) -> None:
        """Nothing to wait for: the poster delivers the queue from its own task (the
        stream is never held up by Grafana)."""

    async def stop(self, flush_s: float = 2.0) -> None:
        """Give the poster up to ``flush_s`` to deliver what is queued (a backoff wait is cut
        short for one last attempt), then stop it; what is left is reported as dropped."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            self._wake.set()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + flush_s
            while self._queue and not task.done() and loop.time() < deadline:
                await asyncio.sleep(0.02)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._queue:
            self._drop(len(self._queue), f"stopping with {len(self._queue)} annotation(s) "
                       "not delivered to Grafana")
            self._queue.clear()
        with contextlib.suppress(Exception):
            self._api.client.s.close()

    async def _run(self) -> None:
        backoff = Backoff(0.5, self.max_backoff_s)
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            annotation = self._queue[0]
            outcome = await self._post(annotation)
            if outcome == "retry":
                if self._stopping.is_set():
                    return  # one last attempt when stopping, no more
                backoff.failed()
                # new annotations do not shorten a backoff; stopping does
                await backoff.wait(self._stopping)
                continue
            backoff.reset()
            if self._queue and self._queue[0] is annotation:  # not dropped meanwhile
                self._queue.popleft()
                if outcome == "refused":
                    self._drop(1, None)

    async def _post(self, annotation: dict[str, Any]) -> str:
        """One attempt: ``"sent"``, ``"retry"`` or ``"refused"``. Never raises, except
        cancellation."""
        try:
            await asyncio.to_thread(
                self._api.annotations.add_annotation,
                dashboard_uid=annotation["dashboardUID"], time_from=annotation["time"],
                tags=annotation["tags"], text=annotation["text"])
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.failed += 1
            report(self.on_result, "failed", log)
            if _refused(e):
                log.error(
                    "Grafana at %s refused an annotation (%s); it is dropped. Check that "
                    "TOCSIN_GRAFANA_TOKEN is a service-account token allowed to write "
                    "annotations and that dashboard uid %r (TOCSIN_GRAFANA_DASHBOARD_UID) "
                    "exists.", self.url, _describe(e), self.dashboard_uid)
                return "refused"
            if not self._failing:
                log.warning("could not post annotations to Grafana at %s (%s); retrying "
                            "with backoff (up to %.0f s); %d queued", self.url, _describe(e),
                            self.max_backoff_s, len(self._queue))
            self._failing = True
            return "retry"
        if self._failing:
            log.info("Grafana at %s reachable again; %d annotation(s) queued", self.url,
                     len(self._queue))
        self._failing = False
        self.sent += 1
        report(self.on_result, "sent", log)
        return "sent"

    def _drop(self, n: int, why: str | None) -> None:
        before, self.dropped = self.dropped, self.dropped + n
        # logged the first time and then once per 1000 dropped, not once per annotation
        if why is not None and (before == 0 or before // 1000 != self.dropped // 1000):
            log.warning("%s (%d dropped so far)", why, self.dropped)
        for _ in range(n):
            report(self.on_result, "dropped", log)


# -- dashboards -----------------------------------------------------------------------------
def dashboard_files(directory: Path) -> list[Path]:
    """The ``*.json`` files of ``directory``, sorted; :class:`InputFileError` when there are
    none."""
    if not directory.is_dir():
        raise InputFileError(f"dashboard directory {directory} does not exist; generate the "
                             "dashboards first or pass --dir")
    files = sorted(p for p in directory.glob("*.json") if p.is_file())
    if not files:
        raise InputFileError(f"no dashboard JSON files (*.json) in {directory}; generate the "
                             "dashboards first or pass --dir")
    return files


def _read_dashboard(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputFileError(f"cannot read {path}: {e.strerror or e}; check the path") from e
    except ValueError as e:
        raise InputFileError(f"{path} is not valid JSON: {e}") from e
    if isinstance(doc, dict) and isinstance(doc.get("dashboard"), dict):
        doc = doc["dashboard"]  # an export with "meta": the dashboard model itself
    if not isinstance(doc, dict) or not doc.get("title"):
        raise InputFileError(f"{path} is not a Grafana dashboard (a JSON object with a title)")
    dashboard = dict(doc)
    dashboard.pop("id", None)  # Grafana's numeric id is per instance; the uid identifies it
    return dashboard


def push_dashboards(url: str, token: str | None, paths: list[Path],
                    folder_uid: str | None = None) -> list[str]:
    """Create or overwrite each dashboard in ``paths`` (``POST /api/dashboards/db``); returns
    the URL of each, in order. :class:`GrafanaError` names the file, the HTTP status and
    Grafana's message when Grafana refuses one (those before it are already uploaded)."""
    dashboards = [(p, _read_dashboard(p)) for p in paths]
    api = _api(url, token, 30.0)
    dashboard_api: Any = api.dashboard  # grafana-client is not annotated
    base = url if url.endswith("/") else url + "/"
    out = []
    try:
        for path, dashboard in dashboards:
            body = {"dashboard": dashboard, "overwrite": True, "folderUid": folder_uid,
                    "message": PUSH_MESSAGE}
            try:
                resp = dashboard_api.update_dashboard(body)
            except GrafanaException as e:
                raise _push_error(url, path, e) from e
            except Exception as e:  # connection refused, DNS, TLS ...
                why = _ERRNO.search(str(e))
                raise GrafanaUnavailable(
                    f"cannot reach Grafana at {url} ({why[1] if why else type(e).__name__}); "
                    "check --url or TOCSIN_GRAFANA_URL and that Grafana is up") from e
            if isinstance(resp, dict) and resp.get("url"):
                out.append(urljoin(base, str(resp["url"])))
            elif isinstance(resp, dict) and resp.get("uid"):
                out.append(str(resp["uid"]))
            else:
                out.append(str(dashboard.get("uid", path.stem)))
    finally:
        with contextlib.suppress(Exception):
            api.client.s.close()
    return out


def _push_error(url: str, path: Path, e: GrafanaException) -> GrafanaError:
    status = _status(e)
    hint = {
        401: "check TOCSIN_GRAFANA_TOKEN / --token (a service-account token)",
        403: "the token's service account needs the Editor role (dashboards:write) on the "
             "folder",
        404: "check --folder-uid: the folder must exist",
        412: "the dashboard changed in Grafana meanwhile or its uid/title clashes",
    }.get(status or 0, "")
    what = f"HTTP {status}" if status else "no response"
    return GrafanaError(f"Grafana at {url} refused {path.name} ({what}): "
                        f"{_grafana_message(e)}" + (f"; {hint}" if hint else ""), status)


__all__ = ["AnnotationSink", "GrafanaError", "annotation_for", "dashboard_files",
           "first_sentence", "push_dashboards"]
