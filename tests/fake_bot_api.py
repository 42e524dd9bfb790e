"""A small Telegram Bot API server for tests: real HTTP on 127.0.0.1, an ephemeral port; and the
real ``faqbot telegram`` process that talks to it.

The server queues updates for ``getUpdates`` (long polling, honouring ``offset``, up to 100 at a
time), answers ``sendMessage`` as Telegram does (the message it created, HTML checked with
Telegram's rules), keeps a webhook's settings, records every request with the time it arrived, and
fails on request: the next N calls to a method can answer an HTTP error (400, 429 with
``retry_after``, 500, a bare 502 page from a proxy), or suffer

- ``TIMEOUT``: the server holds the request longer than the client waits, then closes the
  connection without an answer;
- ``MALFORMED``: an answer "200 OK" whose JSON is cut off;
- ``OFFLINE``: the server stops listening (connection refused) for a while, then listens again on
  the same port; the request that set it off gets no answer.

A failed call is never carried out: no update is handed over, no message is created. That is a
request lost on the way to Telegram (or in an overloaded front end), after which a retry is the
right thing; the other case, a request carried out whose answer is lost, is not simulated (see
``bot.telegram`` on why the bot then sends again).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

JSON_PARAMS = {"reply_markup", "reply_parameters", "link_preview_options", "commands", "allowed_updates",
               "entities", "scope"}
INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "timeout", "user_id"}
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
                 "code", "pre", "blockquote", "tg-emoji"}
_HTML_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z-]*)((?:\s[^<>]*)?)>|&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);|[<>&]")
_ENTITY = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
TIMEOUT, MALFORMED, OFFLINE = "timeout", "malformed", "offline"
USER_NAME, GROUP_TITLE = "测试用户", "借呗交流群"  # what users and groups are called: never to be logged
ROOT = Path(__file__).resolve().parent.parent
PATIENCE = 120.0  # s a test waits for what the bot does: ample on a machine ten times slower than ours
START_PATIENCE = 300.0  # s for a bot's start (a first start builds the index)


def telegram_html_text(markup: str) -> str:
    """The text Telegram shows for an HTML-mode message; ``ValueError`` where Telegram answers 400."""
    text: list[str] = []
    open_tags: list[str] = []
    position = 0
    for token in _HTML_TOKEN.finditer(markup):
        text.append(markup[position:token.start()])
        position = token.end()
        closing, tag, _attributes, entity = token.groups()
        if entity:
            text.append(_ENTITY.get(entity) or chr(int(entity[2:], 16) if entity[1] in "xX" else int(entity[1:])))
        elif tag is None:
            raise ValueError(f"can't parse entities: stray {token.group()!r} at byte offset {token.start()}")
        elif tag.lower() not in TELEGRAM_TAGS:
            raise ValueError(f"can't parse entities: unsupported start tag \"{tag}\" at byte offset {token.start()}")
        elif not closing:
            open_tags.append(tag.lower())
        elif not open_tags or open_tags.pop() != tag.lower():
            raise ValueError(f"can't parse entities: unmatched end tag \"{tag}\" at byte offset {token.start()}")
    if open_tags:
        raise ValueError(f"can't parse entities: can't find end tag corresponding to start tag \"{open_tags[-1]}\"")
    text.append(markup[position:])
    return "".join(text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One request as the server saw it."""

    method: str
    params: dict[str, Any]
    time: float
    status: int | str = 200  # an HTTP status, or the fault (TIMEOUT, MALFORMED, OFFLINE)
    result: Any = None


class _Refusal(Exception):
    """Telegram says no: ``status`` and ``description`` as the Bot API words them."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


@dataclass
class _Failure:
    fault: int | str
    times: int
    retry_after: int = 1
    description: str = "Bad Request: chat not found"
    hold: float = 0.0


@dataclass
class FakeBotAPI:
    token: str
    username: str = "faq_test_bot"
    max_poll: float = 1.0
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bot_user = {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "FAQ Test",
                         "username": self.username, "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.injected: Counter[tuple[str, int | str]] = Counter()  # faults handed out, by (method, fault)
        self.outages: list[tuple[float, float]] = []  # (start, end) of each OFFLINE spell
        self.webhook: dict | None = None
        self._lock = threading.Condition()
        self._updates: list[dict] = []
        self._next_update_id = 1000
        self._next_message_id = 1
        self._messages: dict[tuple[int, int], dict] = {}
        self._chats: dict[int, dict] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._port = 0
        self._offline = self._stopped = False

    # --- running ---------------------------------------------------------------------------
    def start(self) -> "FakeBotAPI":
        self._listen()
        return self

    def __enter__(self) -> "FakeBotAPI":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def offline(self) -> bool:
        """Whether the server is in an OFFLINE spell (not listening)."""
        return self._offline

    @property
    def base_url(self) -> str:
        """What ``TELEGRAM_API_BASE`` gets: the token and method are appended by the client."""
        return f"http://127.0.0.1:{self._port}/bot"

    def _listen(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Telegram's servers
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall between

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                api._handle(self)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="fake-bot-api", daemon=True).start()

    def _outage(self, seconds: float) -> None:
        """Connection refused for ``seconds``: the listening socket closes, then opens on the same port."""
        began = time.monotonic()
        with self._lock:
            self._offline = True
            self._lock.notify_all()  # a waiting long poll ends without an answer
        assert self._server
        self._server.shutdown()
        self._server.server_close()
        time.sleep(seconds)
        with self._lock:
            if self._stopped:
                return
            self._listen()
            self._offline = False
            self.outages.append((began, time.monotonic()))
            self._lock.notify_all()

    # --- scripting -------------------------------------------------------------------------
    def fail_next(self, method: str, fault: int | str, times: int = 1, retry_after: int = 1,
                  description: str = "Bad Request: chat not found", hold: float = 0.0) -> None:
        """The next ``times`` calls to ``method`` fail: an HTTP status (400, 429 with ``retry_after``,
        500, 502), ``TIMEOUT`` (held ``hold`` seconds), ``MALFORMED``, or ``OFFLINE`` (for ``hold`` seconds)."""
        with self._lock:
            self._failures.setdefault(method, []).append(_Failure(fault, times, retry_after, description, hold))

    def push(self, update: dict) -> float:
        """Queue one update (``update_id`` is added); returns the time it became available."""
        with self._lock:
            update = {"update_id": self._next_update_id, **update}
            self._next_update_id += 1
            self._updates.append(update)
            pushed = time.monotonic()
            self._lock.notify_all()
        return pushed

    def user_message(self, text: str | None = None, *, chat_id: int = 501, user_id: int = 501,
                     chat_type: str = "private", reply_to: dict | None = None, **extra: Any) -> dict:
        """A message as a user would send it (entities for commands and mentions filled in), stored
        so that later replies to it carry it."""
        chat = {"id": chat_id, "type": chat_type}
        chat.update({"first_name": USER_NAME} if chat_type == "private" else {"title": GROUP_TITLE})
        with self._lock:
            self._chats[chat_id] = chat
            message = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": chat,
                       "from": {"id": user_id, "is_bot": False, "first_name": USER_NAME, "language_code": "zh-hans"},
                       **extra}
            if text is not None:
                message["text"] = text
                entities = _entities(text)
                if entities:
                    message["entities"] = entities
            if reply_to is not None:
                message["reply_to_message"] = _shallow(reply_to)
            self._messages[(chat_id, message["message_id"])] = message
        return message

    def unconfirmed(self) -> list[dict]:
        """Updates the bot has not confirmed (by asking past them): Telegram would hand them out again."""
        with self._lock:
            return list(self._updates)

    def message(self, chat_id: int, message_id: int) -> dict:
        with self._lock:
            return self._messages[(chat_id, message_id)]

    # --- inspecting ------------------------------------------------------------------------
    def calls_to(self, method: str, where: Callable[[Call], bool] = lambda call: True) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method and where(call)]

    def wait_for(self, method: str, where: Callable[[Call], bool] = lambda call: True,
                 timeout: float = PATIENCE, status: int | str | None = 200) -> Call:
        """The first recorded call to ``method`` matching ``where`` (and ``status``), waiting for it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for call in self.calls:
                    if call.method == method and (status is None or call.status == status) and where(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {method} call matching within {timeout} s; "
                                         f"calls seen: {[c.method for c in self.calls][-20:]}")
                self._lock.wait(min(left, 0.5))

    def wait_until(self, condition: Callable[[], bool], timeout: float, poll: float = 0.2) -> bool:
        """Whether ``condition()`` came true within ``timeout`` seconds (checked every ``poll``
        seconds, not on every call: cheap under load)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(poll)
        return True

    # --- the API ---------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", url.path)
        params = _params(request, url.query)
        if self._offline:  # a request that raced the outage
            return _drop(request)
        if not match:
            return _respond(request, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, method = match.groups()
        if token != self.token:
            return _respond(request, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        call = Call(method, params, time.monotonic())
        with self._lock:
            failure = self._take_failure(method)
        if failure is not None:
            call.status = failure.fault
            self._record(call)
            return self._fail(request, failure)
        handler = getattr(self, f"_api_{method}", None)
        try:
            if handler is None:
                raise _Refusal(404, "Not Found")
            result = handler(params)
        except (_Refusal, ValueError) as error:  # ValueError: what Telegram answers 400 to
            refusal = error if isinstance(error, _Refusal) else _Refusal(400, f"Bad Request: {error}")
            call.status = refusal.status
            self._record(call)
            return _respond(request, refusal.status, {"ok": False, "error_code": refusal.status,
                                                      "description": refusal.description})
        if result is None:  # the server went offline while the request waited
            return _drop(request)
        call.result = result
        self._record(call)
        _respond(request, 200, {"ok": True, "result": result})

    def _fail(self, request: BaseHTTPRequestHandler, failure: _Failure) -> None:
        """Answer (or not) as ``failure`` says, without carrying the request out."""
        if failure.fault == TIMEOUT:
            time.sleep(failure.hold)
            return _drop(request)
        if failure.fault == OFFLINE:
            threading.Thread(target=self._outage, args=(failure.hold,), name="outage", daemon=True).start()
            return _drop(request)
        if failure.fault == MALFORMED:
            return _respond_raw(request, 200, b'{"ok": true, "result": {"message_id": 4', "application/json")
        if failure.fault == 502:
            return _respond_raw(request, 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        if failure.fault == 429:
            return _respond(request, 429, {"ok": False, "error_code": 429,
                                           "description": f"Too Many Requests: retry after {failure.retry_after}",
                                           "parameters": {"retry_after": failure.retry_after}})
        description = "Internal Server Error" if failure.fault == 500 else failure.description
        _respond(request, int(failure.fault), {"ok": False, "error_code": failure.fault, "description": description})

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        self.injected[method, failure.fault] += 1
        return failure

    def _new_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id

    def _api_getUpdates(self, params: dict) -> list[dict] | None:  # noqa: N802 (Bot API method names)
        """Up to ``limit`` updates from ``offset`` on (those before it are confirmed and forgotten);
        None when the server went offline meanwhile, or a webhook is set (Telegram's 409)."""
        offset = params.get("offset", 0) or 0
        limit = min(params.get("limit", 100) or 100, 100)
        deadline = time.monotonic() + min(float(params.get("timeout", 0) or 0), self.max_poll)
        with self._lock:
            if self.webhook:
                raise _Refusal(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline and not self._offline:
                self._lock.wait(deadline - time.monotonic())
            return None if self._offline else list(self._updates[:limit])

    def _api_getMe(self, params: dict) -> dict:  # noqa: N802 (Bot API method names)
        return self.bot_user

    def _api_setWebhook(self, params: dict) -> bool:  # noqa: N802
        if not params.get("url"):
            raise _Refusal(400, "Bad Request: bad webhook: an HTTPS URL must be provided for webhook")
        with self._lock:
            self.webhook = params
        return True

    def _api_deleteWebhook(self, params: dict) -> bool:  # noqa: N802
        with self._lock:
            self.webhook = None
        return True

    def _api_setMyCommands(self, params: dict) -> bool:  # noqa: N802
        self.commands = params.get("commands")
        return True

    def _api_getMyCommands(self, params: dict) -> list:  # noqa: N802
        return getattr(self, "commands", [])

    def _api_answerCallbackQuery(self, params: dict) -> bool:  # noqa: N802
        return True

    def _api_close(self, params: dict) -> bool:
        return True

    def _api_logOut(self, params: dict) -> bool:  # noqa: N802
        return True

    def _api_sendChatAction(self, params: dict) -> bool:  # noqa: N802
        return True

    def _api_sendMessage(self, params: dict) -> dict:  # noqa: N802
        text = str(params.get("text", ""))
        shown = telegram_html_text(text) if str(params.get("parse_mode", "")).upper() == "HTML" else text
        if not shown.strip():
            raise ValueError("message text is empty")
        if utf16_len(shown) > 4096:
            raise ValueError("message is too long")
        chat_id = params["chat_id"]
        with self._lock:
            chat = self._chats.get(chat_id) or {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
            message = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": chat,
                       "from": self.bot_user, "text": shown}
            reply = (params.get("reply_parameters") or {}).get("message_id")
            if reply and (chat_id, reply) in self._messages:
                message["reply_to_message"] = _shallow(self._messages[(chat_id, reply)])
            elif reply and not (params.get("reply_parameters") or {}).get("allow_sending_without_reply"):
                raise ValueError("message to be replied not found")
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            self._messages[(chat_id, message["message_id"])] = message
        return message

    def _api_editMessageText(self, params: dict) -> dict:  # noqa: N802
        """The text (and keyboard) of a message replaced; refused as Telegram does when nothing
        changes, the message is unknown, or the text is empty or too long."""
        text = str(params.get("text", ""))
        shown = telegram_html_text(text) if str(params.get("parse_mode", "")).upper() == "HTML" else text
        if not shown.strip() or utf16_len(shown) > 4096:
            raise ValueError("message text is empty" if not shown.strip() else "message is too long")
        with self._lock:
            message = self._edited(params)
            if message["text"] == shown and message.get("reply_markup") == params.get("reply_markup"):
                raise ValueError("message is not modified: specified new message content and reply markup are "
                                 "exactly the same as a current content and reply markup of the message")
            message["text"] = shown
            self._set_markup(message, params.get("reply_markup"))
            return message

    def _api_editMessageReplyMarkup(self, params: dict) -> dict:  # noqa: N802
        with self._lock:
            message = self._edited(params)
            if message.get("reply_markup") == params.get("reply_markup"):
                raise ValueError("message is not modified: specified new message content and reply markup are "
                                 "exactly the same as a current content and reply markup of the message")
            self._set_markup(message, params.get("reply_markup"))
            return message

    def _edited(self, params: dict) -> dict:
        message = self._messages.get((params.get("chat_id"), params.get("message_id")))
        if message is None or message["from"] != self.bot_user:
            raise ValueError("message to edit not found" if message is None else "message can't be edited")
        return message

    @staticmethod
    def _set_markup(message: dict, markup: dict | None) -> None:
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)


def new_token() -> str:
    """A token of the right shape, new for each test module (so a leak is never a false alarm)."""
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(27)}"


def callback_update(message: dict, data: str, user_id: int = 501) -> dict:
    """A press on an inline button of ``message`` (a message the bot sent)."""
    return {"callback_query": {"id": f"cb{time.monotonic_ns()}", "chat_instance": "ci1", "data": data,
                               "from": {"id": user_id, "is_bot": False, "first_name": USER_NAME},
                               "message": message}}


def _shallow(message: dict) -> dict:
    """A message as Telegram nests it in ``reply_to_message``: one level deep."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _entities(text: str) -> list[dict]:
    """The entities Telegram's clients add: a leading bot command and @mentions (UTF-16 offsets)."""
    found = []
    for match in re.finditer(r"(?:^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?)|@[A-Za-z0-9_]{5,}", text):
        kind = "bot_command" if match.group().startswith("/") else "mention"
        found.append({"type": kind, "offset": utf16_len(text[:match.start()]), "length": utf16_len(match.group())})
    return found


def _params(request: BaseHTTPRequestHandler, query: str) -> dict[str, Any]:
    raw: dict[str, Any] = {key: values[-1] for key, values in parse_qs(query).items()}
    length = int(request.headers.get("Content-Length") or 0)
    body = request.rfile.read(length) if length else b""
    content_type = request.headers.get("Content-Type", "")
    if body and "json" in content_type:
        raw.update(json.loads(body))
    elif body:
        raw.update({key: values[-1] for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()})
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in JSON_PARAMS and isinstance(value, str):
            value = json.loads(value)
        elif key in INT_PARAMS and isinstance(value, str):
            value = int(value) if re.fullmatch(r"-?\d+", value) else value
        params[key] = value
    return params


def _drop(request: BaseHTTPRequestHandler) -> None:
    """Close the connection without an answer."""
    request.close_connection = True


def _respond(request: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    _respond_raw(request, status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json")


def _respond_raw(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    try:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (e.g. it is shutting down)


# --- the bot under test ----------------------------------------------------------------------

class BotProcess:
    """``python -m bot telegram`` in a child process, its output in files (a pipe could fill up),
    its question log and salt in ``tmp/logs``."""

    def __init__(self, tmp: Path, token: str, base_url: str, *args: str, **env: str) -> None:
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("TELEGRAM_", "FAQBOT_")) or k == "FAQBOT_CACHE"}
        self.log_dir = tmp / "logs"
        environment.update(TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE=base_url, PYTHONIOENCODING="utf-8",
                           FAQBOT_LOG_DIR=str(self.log_dir), **env)
        self.out, self.err = tmp / "stdout.txt", tmp / "stderr.txt"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "bot", "telegram", *args], cwd=ROOT,
                                            env=environment, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def wait_until_serving(self, api: FakeBotAPI, listening_with: str = "getUpdates") -> "BotProcess":
        """Started: the command menu set, and polling (or the webhook set). A bot that exits on
        the way is reported at once, not after the start's whole patience."""
        deadline = time.monotonic() + START_PATIENCE
        for method in ("setMyCommands", listening_with):
            while not api.calls_to(method) and self.process.poll() is None and time.monotonic() < deadline:
                api.wait_until(lambda: bool(api.calls_to(method)) or self.process.poll() is not None,
                               timeout=1.0, poll=0.05)
            if not api.calls_to(method):
                self.stop()
                raise AssertionError("the bot did not start:\n" + self.output())
        return self

    def output(self) -> str:
        return "".join(path.read_text(encoding="utf-8", errors="replace") for path in (self.out, self.err))

    def stop(self, timeout: float = PATIENCE) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the bot did not stop within {timeout:.0f} s of SIGTERM") from None
        return self.process.returncode


def assert_private(text: str, token: str, *ids: int) -> None:
    """Nothing in ``text`` that must never be printed or logged: the token or its secret half, an
    HTTP request line (which holds the token), a chat's or user's id in clear, a user's or group's name."""
    forbidden = {"the token": token, "the token's secret half": token.split(":")[1],
                 "an HTTP request line": "HTTP Request", "a user's name": USER_NAME, "a group's name": GROUP_TITLE,
                 **{f"id #{n}": str(id_) for n, id_ in enumerate(ids, start=1)}}
    leaked = [what for what, value in forbidden.items() if value in text]
    assert not leaked, f"printed: {', '.join(leaked)}"
