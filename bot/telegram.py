"""The Telegram front end: python-telegram-bot handlers that translate between chats and the FAQ
core, long polling or a webhook, a few commands for administrators, and quiet, token-free logs. No
retrieval here: questions go to ``FAQ.ask``.

Answers. The first message is ``reply.view``'s short answer under its own heading, the source's
title and the short disclaimer; under it 展开全文 (when there is more), up to three related
questions and 👍/👎. A clarification offers its candidates and 都不是; a refusal three example
questions and 这个问题应该能回答.

Buttons carry everything they need in their callback data or in the message they sit under (no
in-memory state), so a button pressed after a restart still works. The data, at most 64 bytes:
``full:<p>`` (the whole passage, edited in), ``rel:<p>`` (a related question, answered in a new
message), ``pick:<p>`` (a clarification's candidate), ``none`` (都不是: the candidates are the
message's ``pick:`` buttons), ``fb:+:<p>`` / ``fb:-:<p>`` (a vote), ``ex:<n>`` (example question
``n`` of ``messages.toml``), ``should`` (这个问题应该能回答). ``<p>`` is a passage id, or ``~`` and
its hash when the id is too long to carry. Anything else (a forged button, one of an older
version, a passage no longer known) gets a quiet "按钮已失效". The question a button concerns is
the user's message the answer replied to.

Votes. One per user and answer: a press is logged with the voter's and the answer's keys (see
``feedback.read_log``, which keeps the latest), and the keyboard is edited to show the vote.

Delivery. An update is handled once: the offset of getUpdates moves past it only after it arrived.
A reply that fails on the way (network error, time-out, HTTP 5xx, 429, an answer that is not JSON)
is sent again, with growing pauses, for up to ``SEND_PATIENCE`` seconds; a refusal (400, 403) is
final. That is at-least-once on purpose: the Bot API has no idempotency key and no way to read back
what was sent, so when Telegram did carry out a sendMessage whose answer then got lost, the retry
shows that reply twice. A repeated answer is visible and harmless; a question silently left
unanswered is not.

Fair service. Each private chat, and each member of a group, has a token bucket
(``FAQBOT_CHAT_LIMIT``, default 5 questions in 10 s; button presses have buckets of their own):
past it, the sender hears one polite "slow down" per burst and the rest is dropped and counted
(/stats), never queued. Answers are computed in worker threads, so polling and sending never wait
on a question; on SIGINT/SIGTERM questions are still computed for ``STOP_GRACE`` seconds, then the
rest is dropped (and counted in the last log line), while every answer computed is still sent: a
stop takes a few seconds whatever is queued.

Privacy. Chats appear in logs and in the question log only as salted hashes (``bot.feedback``);
user names and ids never; the token and the webhook secret are blanked out of every log line.

Environment: ``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_API_BASE``, ``FAQBOT_WEBHOOK_SECRET`` (webhook mode),
``FAQBOT_ADMINS`` (user ids allowed /reload, /stats and /report), ``FAQBOT_SEND_RATE`` (messages a second the
bot allows itself: default 30, Telegram's limit; 0 for no pacing, for a local test server),
``FAQBOT_CHAT_LIMIT`` (questions per seconds from one sender, "5/10"; 0 for none), ``FAQBOT_LOG_DIR``
(the question log and its salt)."""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import os
import re
import signal
import sys
import threading
import time
import tomllib
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Awaitable, Callable, Hashable, TypeVar
from urllib.parse import urlsplit

from telegram import (BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message,
                      MessageEntity, ReplyParameters, Update)
from telegram.constants import ChatType, ParseMode
from telegram.error import (BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter,
                            TelegramError)
from telegram.ext import (AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
                          ContextTypes, MessageHandler, filters)

from .config import Settings
from .decision import Outcome
from .faq import FAQ
from .feedback import QuestionLog, log_dir, log_limits
from .knowledge import KnowledgeError, Passage
from .reply import Answer, compose_chosen, render_html, split_message, view
from .search import Refusal, SearchResult
from .suggest import recent_report
from .text import RESOURCES, has_words, question_text

log = logging.getLogger("faqbot.telegram")

TOKEN_PATTERN = re.compile(r"^\d+:[A-Za-z0-9_-]{30,}$")
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # Telegram's rule for a webhook's secret token
CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit for inline button data
SEND_PATIENCE = 120.0  # seconds a reply is tried again after failures that may pass
MENU_PATIENCE = 10.0  # the same for the command menu at start: the bot does not wait longer to serve
RETRY_DELAY, RETRY_DELAY_MAX = 0.5, 5.0  # the first pause between tries; it doubles up to the second
RATE_LIMIT_RETRIES = 3  # 429 "retry after N" answers waited out by AIORateLimiter
SEND_RATE = 30.0  # messages a second, Telegram's limit for a bot
SEARCHED = 8  # passages searched for a chosen passage's related questions
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # SIGHUP is not one: it reloads the knowledge
WORKERS = 2  # threads that compute answers off the event loop (the encoder runs one at a time anyway)
FORGET_AFTER = 10_000  # chats' buckets kept before the full ones are forgotten
STOP_GRACE = 2.0  # s after SIGINT/SIGTERM during which questions are still computed (then dropped)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
T = TypeVar("T")

# The bot's own words in Telegram (the answers' words live in resources/messages.toml).
TEXTS = tomllib.loads((RESOURCES / "telegram.toml").read_text(encoding="utf-8"))
COMMANDS = [BotCommand(name, description) for name, description in TEXTS["commands"].items()]


# --- the command-line entry ------------------------------------------------------------------

@dataclass(frozen=True)
class Webhook:
    """Where Telegram posts the updates (``url``), where this process listens for them, and the
    secret Telegram sends along with each (header X-Telegram-Bot-Api-Secret-Token)."""

    url: str
    listen: str
    port: int
    secret: str

    @property
    def path(self) -> str:
        """The URL's path, served as it is (a reverse proxy in front forwards it unchanged)."""
        return urlsplit(self.url).path


def run(settings: Settings, webhook_url: str | None = None, listen: str | None = None,
        port: int | None = None) -> int:
    """``faqbot telegram``: check the token and the settings, load the knowledge, then poll (or serve
    the webhook) until SIGINT or SIGTERM; SIGHUP reloads the knowledge."""
    token = os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    problem = token_problem(token)
    if problem:
        return _fail(problem, 2)
    try:
        webhook = webhook_from(webhook_url, listen, port, os.environ.get("FAQBOT_WEBHOOK_SECRET", ""))
        admins = admin_ids(os.environ.get("FAQBOT_ADMINS", ""))
        rate = send_rate(os.environ.get("FAQBOT_SEND_RATE", ""))
        limit = chat_limit(os.environ.get("FAQBOT_CHAT_LIMIT", ""))
        log_limits()
    except ValueError as error:
        return _fail(str(error), 2)
    configure_logging(token, webhook.secret if webhook else "")
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload asked for during the start must not end it
    try:
        questions = QuestionLog.default()
    except OSError as error:
        return _fail(f"cannot keep the question log in {log_dir()} ({error.strerror or error}); "
                     "point FAQBOT_LOG_DIR at a writable folder", 1)
    try:
        faq = load_faq(settings)
    except KnowledgeError as error:
        return _fail(str(error), 1)
    except KeyboardInterrupt:
        return 130
    for skipped in faq.knowledge.skipped:
        print(f"faqbot: skipped {skipped}", file=sys.stderr)
    application = build_application(token, faq, settings, questions, admins,
                                    os.environ.get("TELEGRAM_API_BASE") or None, rate, limit)
    try:
        serve(application, webhook)
    except InvalidToken:
        return _fail("Telegram refused the token in TELEGRAM_BOT_TOKEN (mistyped or revoked? "
                     "@BotFather shows the current one)", 2)
    except TelegramError as error:
        return _fail(f"cannot start the bot: {redact(str(error), token)}", 1)
    except OSError as error:  # the webhook's port is taken, or its address not this machine's
        return _fail(f"cannot listen for the webhook: {error.strerror or error}", 1)
    counts = application.bot_data["counts"]
    log.info("stopped (%d questions dropped over a chat's limit, %d not yet answered at the stop)",
             counts["dropped"], counts["dropped at stop"])
    return 0


def serve(application: Application, webhook: Webhook | None) -> None:
    """Long polling, or the webhook's HTTP server, until SIGINT or SIGTERM."""
    if webhook is None:
        application.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=3, stop_signals=STOP_SIGNALS)
        return
    log.info("listening for Telegram's webhook calls on %s:%d%s", webhook.listen, webhook.port, webhook.path)
    application.run_webhook(listen=webhook.listen, port=webhook.port, url_path=webhook.path, webhook_url=webhook.url,
                            secret_token=webhook.secret, allowed_updates=Update.ALL_TYPES, bootstrap_retries=3,
                            stop_signals=STOP_SIGNALS)


def _fail(message: str, code: int) -> int:
    print(f"faqbot: error: {message}", file=sys.stderr)
    return code


def load_faq(settings: Settings) -> FAQ:
    """The FAQ core of the knowledge folder, its tokeniser warmed up (the first user should not wait)."""
    faq = FAQ.load(settings.knowledge, skip_bad=settings.skip_bad)
    faq.ask(_example(faq))
    return faq


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be a bot token (without repeating it), or None when it looks right."""
    if not token:
        return "TELEGRAM_BOT_TOKEN is not set (create a bot with @BotFather and export its token)"
    if not TOKEN_PATTERN.fullmatch(token):
        return "TELEGRAM_BOT_TOKEN does not look like a bot token (expected 123456789:AAH..., from @BotFather)"
    return None


def webhook_from(url: str | None, listen: str | None, port: int | None, secret: str) -> Webhook | None:
    """The webhook the flags ask for, or None for long polling; ValueError (one line, never repeating
    the secret) when they do not add up."""
    if url is None:
        if listen is not None or port is not None:
            raise ValueError("--listen and --port only apply with --webhook-url")
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("--webhook-url must be a full URL, e.g. https://bot.example.com/telegram")
    if not secret:
        raise ValueError("webhook mode needs a secret in FAQBOT_WEBHOOK_SECRET (1-256 characters: A-Z a-z 0-9 _ -)")
    if not SECRET_PATTERN.fullmatch(secret):
        raise ValueError("FAQBOT_WEBHOOK_SECRET may only hold 1-256 characters A-Z a-z 0-9 _ - (Telegram's rule)")
    if port is not None and not 0 < port < 65536:
        raise ValueError("--port must be between 1 and 65535")
    return Webhook(url, listen or "127.0.0.1", port or 8443, secret)


def admin_ids(text: str) -> frozenset[int]:
    """FAQBOT_ADMINS: Telegram user ids separated by commas; ValueError when one is not a number."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    for number, item in enumerate(items, start=1):
        if not item.isdigit():  # not repeated: it may be a user name
            raise ValueError(f"FAQBOT_ADMINS must list numeric Telegram user ids separated by commas "
                             f"(item {number} is not a number)")
    return frozenset(int(item) for item in items)


def send_rate(text: str) -> float:
    """FAQBOT_SEND_RATE: messages a second (default Telegram's 30; 0 turns pacing off)."""
    try:
        rate = float(text) if text.strip() else SEND_RATE
    except ValueError:
        rate = -1.0
    if not 0 <= rate < float("inf"):
        raise ValueError("FAQBOT_SEND_RATE must be a number of messages a second (0: no pacing)")
    return rate


def chat_limit(text: str) -> ChatLimit | None:
    """FAQBOT_CHAT_LIMIT: "questions/seconds" one sender may ask (default 5/10); 0 turns it off."""
    text = text.strip()
    if not text:
        return ChatLimit()
    if text in ("0", "off"):
        return None
    questions, slash, seconds = text.partition("/")
    try:
        limit = ChatLimit(int(questions), float(seconds))
        if not slash or limit.questions < 1 or not 0 < limit.seconds < float("inf"):
            raise ValueError
    except ValueError:
        raise ValueError("FAQBOT_CHAT_LIMIT must be questions/seconds, e.g. 5/10 (0: no limit)") from None
    return limit


# --- fair service ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatLimit:
    """At most ``questions`` at once from one sender, and one more every ``seconds / questions``."""

    questions: int = 5
    seconds: float = 10.0


class Verdict(Enum):
    ANSWER = "answer"
    SLOW_DOWN = "slow down"  # the first message over the limit in a burst: told once
    DROP = "drop"  # the rest of the burst: dropped without a word


class Buckets:
    """A token bucket per sender (any hashable key: ``admitted`` uses chat, member and kind). A
    burst ends when the bucket has filled up again; a full bucket is forgotten, so memory holds
    only the senders asking right now."""

    def __init__(self, limit: ChatLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.clock = limit, clock
        self._senders: dict[Hashable, tuple[float, float, bool]] = {}  # key → (tokens, when, told)
        self._forget_at = FORGET_AFTER  # the next sweep, when this many senders are held
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> Verdict:
        with self._lock:
            now = self.clock()
            tokens, told = self._tokens(key, now)
            if tokens >= 1:
                self._senders[key] = (tokens - 1, now, told)
                return Verdict.ANSWER
            self._senders[key] = (tokens, now, True)
            return Verdict.DROP if told else Verdict.SLOW_DOWN

    def _tokens(self, key: Hashable, now: float) -> tuple[float, bool]:
        """The sender's tokens now, and whether it was told in the burst still going on."""
        full = float(self.limit.questions)
        tokens, when, told = self._senders.get(key, (full, now, False))
        tokens = min(full, tokens + (now - when) * full / self.limit.seconds)
        if len(self._senders) >= self._forget_at:
            self._forget(now)
        return tokens, told and tokens < full

    def _forget(self, now: float) -> None:
        full, rate = float(self.limit.questions), self.limit.questions / self.limit.seconds
        self._senders = {key: state for key, state in self._senders.items() if state[0] + (now - state[1]) * rate < full}
        self._forget_at = len(self._senders) + FORGET_AFTER  # a sweep per FORGET_AFTER new senders: linear


async def admitted(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Whether the update's sender is within its limit: in a private chat the chat's, in a group
    each member's (one member's flood never silences the others), button presses counted apart
    from questions (reading the buttons never costs the next question). The first message over it
    hears "slow down" (a button press sees it as a note); the rest of the burst is dropped."""
    buckets: Buckets | None = context.bot_data["buckets"]
    chat = update.effective_chat
    if buckets is None or chat is None:
        return True
    user = update.effective_user
    sender = user.id if user is not None and chat.type != ChatType.PRIVATE else 0  # in a group, each member
    verdict = buckets.take((chat.id, sender, update.callback_query is not None))  # presses apart from questions
    if verdict is Verdict.ANSWER:
        return True
    context.bot_data["counts"]["dropped"] += 1
    if verdict is Verdict.SLOW_DOWN:
        log.info("chat %s is over its limit; its messages are dropped until it slows down", pseudonym(context, chat.id))
        if update.callback_query:
            await acknowledge(update.callback_query, TEXTS["slow_down"])
        elif update.message:
            await reply_text(update, context, TEXTS["slow_down"])
    return False


class Stopping:
    """Set by SIGINT/SIGTERM: from ``STOP_GRACE`` seconds later on, work not yet started is dropped."""

    def __init__(self, grace: float = STOP_GRACE) -> None:
        self.grace = grace
        self._since: float | None = None

    def begin(self) -> None:
        self._since = time.monotonic()

    def is_set(self) -> bool:
        return self._since is not None

    def expired(self) -> bool:
        return self._since is not None and time.monotonic() - self._since >= self.grace


async def compute(context: ContextTypes.DEFAULT_TYPE, work: Callable[[], T]) -> T | None:
    """``work()`` (ranking, the encoder) in a worker thread, so that polling and sending go on
    meanwhile; None (counted) when the bot is stopping and its grace was over before it started."""
    data = context.bot_data
    stopping: Stopping = data["stopping"]

    def job() -> T | None:
        return None if stopping.expired() else work()

    result = await asyncio.get_running_loop().run_in_executor(data["workers"], job)
    if result is None and stopping.is_set():
        data["counts"]["dropped at stop"] += 1
    return result


# --- logging ---------------------------------------------------------------------------------

class RedactingFormatter(logging.Formatter):
    """Formats a record as usual, then blanks out the secrets (the token) wherever they appear,
    tracebacks included: defence in depth behind the silenced HTTP client loggers."""

    def __init__(self, fmt: str, secrets_: tuple[str, ...]) -> None:
        super().__init__(fmt)
        self.secrets = tuple(s for s in secrets_ if s)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), *self.secrets)


def redact(text: str, *secrets_: str) -> str:
    for secret in sorted(secrets_, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "[token]")
    return text


def configure_logging(token: str, webhook_secret: str = "", level: int = logging.INFO) -> None:
    """One handler on stderr at INFO; httpx/httpcore (whose request lines hold the token in the
    URL) at WARNING, so those lines never reach a log; the token and the webhook's secret blanked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            (token, token.partition(":")[2], webhook_secret)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # A proxy's HTML error page (502) or a cut-off answer makes python-telegram-bot log a JSON
    # traceback; the retry warning of ``with_retries`` already says what failed.
    logging.getLogger("telegram.request.BaseRequest").addFilter(
        lambda record: not record.getMessage().startswith("Can not load invalid JSON data"))
    logging.captureWarnings(True)


def pseudonym(context: ContextTypes.DEFAULT_TYPE, chat_id: int | None) -> str:
    """A chat as logs show it: a salted hash (the salt kept beside the question log), never the id."""
    return "-" if chat_id is None else context.bot_data["questions"].pseudonymize(chat_id)


# --- wiring ----------------------------------------------------------------------------------

def build_application(token: str, faq: FAQ, settings: Settings, questions: QuestionLog,
                      admins: frozenset[int] = frozenset(), base_url: str | None = None,
                      rate: float = SEND_RATE, limit: ChatLimit | None = ChatLimit()) -> Application:
    """The whole bot: its state, handlers in the order a user meets them (the administrators'
    before the catch-all for unknown commands), the rate limiter, the error handler."""
    builder = (ApplicationBuilder().token(token)
               .rate_limiter(AIORateLimiter(overall_max_rate=rate, max_retries=RATE_LIMIT_RETRIES))
               .concurrent_updates(True).post_init(on_start).post_shutdown(on_shutdown))
    if base_url:
        builder = builder.base_url(base_url)
    application = builder.build()
    application.bot_data.update(faq=faq, passages=button_passages(faq), settings=settings, questions=questions,
                                counts=Counter(), reload_lock=asyncio.Lock(), buckets=limit and Buckets(limit),
                                presses=Recent(), workers=ThreadPoolExecutor(WORKERS, thread_name_prefix="faqbot-answer"),
                                stopping=Stopping())
    new = filters.UpdateType.MESSAGE  # edited messages never get a second answer
    admin = filters.User(user_id=admins)  # no administrators: matches nobody
    application.add_handler(CommandHandler("start", start, filters=new))
    application.add_handler(CommandHandler("help", help_command, filters=new))
    application.add_handler(CommandHandler("about", about, filters=new))
    application.add_handler(CommandHandler("ask", ask_command, filters=new))
    application.add_handler(CommandHandler("reload", reload_command, filters=new & admin))
    application.add_handler(CommandHandler("stats", stats_command, filters=new & admin))
    application.add_handler(CommandHandler("report", report_command, filters=new & admin))
    application.add_handler(MessageHandler(new & filters.COMMAND, unknown_command))
    application.add_handler(MessageHandler(new & filters.ChatType.PRIVATE & filters.TEXT, private_text))
    application.add_handler(MessageHandler(new & filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND,
                                           group_text))
    application.add_handler(MessageHandler(new & ~filters.TEXT & ~filters.StatusUpdate.ALL, not_text))
    application.add_handler(CallbackQueryHandler(button_pressed))  # one door: the data is checked first
    application.add_error_handler(on_error)
    return application


async def on_start(application: Application) -> None:
    """At start: the command menu, SIGHUP as "reload the knowledge", and one log line saying who is
    serving what."""
    try:
        await with_retries(lambda: application.bot.set_my_commands(COMMANDS), patience=MENU_PATIENCE)
    except TelegramError as error:
        log.warning("could not set the command menu: %s", error)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: application.create_task(reload_knowledge(application)))
    for stop_signal in STOP_SIGNALS:
        loop.add_signal_handler(stop_signal, _stop, application.bot_data["stopping"])
    log.info("@%s serving %s", application.bot.username, _size_line(application.bot_data["faq"]))


def _stop(stopping: Stopping) -> None:
    """SIGINT/SIGTERM: questions not computed within the grace are dropped, so that the stop waits
    only for answers computed by then to be sent; then python-telegram-bot's own stop."""
    stopping.begin()
    raise SystemExit


async def on_shutdown(application: Application) -> None:
    """The worker threads let go (none is busy by now)."""
    application.bot_data["workers"].shutdown(wait=False, cancel_futures=True)


async def reload_knowledge(application: Application) -> str:
    """Rebuild the FAQ from the knowledge folder in a worker thread and swap it in whole; when that
    fails, the old one goes on serving. Returns the outcome in one line (also logged)."""
    data = application.bot_data
    async with data["reload_lock"]:
        try:
            faq = await asyncio.to_thread(load_faq, data["settings"])
        except (KnowledgeError, OSError) as error:
            log.warning("reload failed, still serving the previous knowledge: %s", error)
            return TEXTS["reload_failed"].format(reason=error)
        data.update(faq=faq, passages=button_passages(faq))
    for skipped in faq.knowledge.skipped:
        log.warning("reload skipped %s", skipped)
    log.info("reloaded: %s", _size_line(faq))
    return TEXTS["reloaded"].format(**_size(faq))


# --- handlers --------------------------------------------------------------------------------

async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: a greeting, what the bot knows, and three example questions as buttons."""
    if not await admitted(update, context):
        return
    faq: FAQ = context.bot_data["faq"]
    e = html.escape
    titles = [title or file for title, file, _count in _sources(faq)]
    lines = [f"<b>{e(TEXTS['greeting'])}</b>", e(TEXTS["knows"].format(**_size(faq))),
             *(f"· {e(title)}" for title in titles), "",
             e(TEXTS["how_to_ask"].format(username=context.bot.username)), "",
             f"<i>⚠️ {e(faq.messages.disclaimer_short)}</i>", "", e(faq.messages.examples_heading)]
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton(example, callback_data=f"ex:{n}")]
                                    for n, example in enumerate(faq.messages.examples)])
    await send_chunks(context, update.effective_chat.id, "\n".join(lines), update.message.message_id, buttons)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: how to ask in a private chat and in a group, and the commands."""
    if not await admitted(update, context):
        return
    faq: FAQ = context.bot_data["faq"]
    text = TEXTS["help"].format(example=html.escape(_example(faq)),
                                username=html.escape(context.bot.username or ""))
    await reply_noting(update, context, text)


async def about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/about: the knowledge sources and the full disclaimer (which quotes the articles' own notice)."""
    if not await admitted(update, context):
        return
    faq: FAQ = context.bot_data["faq"]
    e = html.escape
    sources = [TEXTS["source_line" if title else "source_line_untitled"].format(title=title, file=file, passages=count)
               for title, file, count in _sources(faq)]
    text = (f"<b>{e(TEXTS['sources_heading'])}</b>\n" + "\n".join(f"· {e(line)}" for line in sources)
            + f"\n\n<b>{e(TEXTS['disclaimer_heading'])}</b>\n⚠️ {e(faq.messages.disclaimer)}")
    await send_chunks(context, update.effective_chat.id, text, update.message.message_id)


async def ask_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ask 问题: the answer, in private chats and groups alike."""
    await answer_message(update, context)


async def reload_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload (administrators only): the knowledge folder read again; what came of it, in one line."""
    await reply_text(update, context, await reload_knowledge(context.application))


async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats (administrators only): what the bot knows, and the questions answered and refused since start."""
    counts: Counter = context.bot_data["counts"]
    await reply_text(update, context, TEXTS["stats"].format(**_size(context.bot_data["faq"]),
                                                            answered=counts["answered"], refused=counts["refused"],
                                                            dropped=counts["dropped"]))


async def report_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/report (administrators only): the five largest groups of unanswered questions of the last 7 days."""
    data = context.bot_data
    text = await compute(context, lambda: recent_report(data["faq"], data["questions"].path))
    if text is not None:
        await reply_text(update, context, text)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot does not have, or one for administrators only: a pointer to /help, in a
    private chat, or in a group when the command names this bot (``/foo@bot``; a bare ``/foo``
    there may be another bot's)."""
    command = re.match(r"/\w+@(\w+)", update.message.text or "")
    named = command is not None and command.group(1).lower() == (context.bot.username or "").lower()
    if (update.effective_chat.type == ChatType.PRIVATE or named) and await admitted(update, context):
        await reply_text(update, context, TEXTS["unknown_command"])


async def private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text in a private chat is a question: the answer, as a reply to it."""
    await answer_message(update, context)


async def group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In a group, a message that mentions the bot or replies to it gets the answer; others, silence."""
    if addressed_to_bot(update.message, context.bot.id, context.bot.username):
        await answer_message(update, context)


async def not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A sticker, photo, voice note or file: its caption is the question (a screenshot with a line
    under it); without one, please ask in text. In a group, only when addressed."""
    message = update.message
    if message.chat.type != ChatType.PRIVATE and not addressed_to_bot(message, context.bot.id, context.bot.username):
        return
    if has_words(question_of(message, context.bot.username)):
        await answer_message(update, context)
    elif await admitted(update, context):
        text_only = TEXTS["text_only"].format(example=_example(context.bot_data["faq"]))
        await reply_noting(update, context, html.escape(text_only))


async def button_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any button: its data read against the formats the bot writes; anything else (a button of an
    older version, a forged or empty one) gets a quiet "expired" note and is never logged."""
    query = update.callback_query
    data = context.bot_data
    if not await admitted(update, context):
        return
    press = parse_button(query.data, data["passages"], len(data["faq"].messages.examples))
    if press is None or not on_its_keyboard(query):
        await acknowledge(query, TEXTS["button_expired"])
        return
    chat_id = update.effective_chat.id if update.effective_chat else None
    if press.kind != "vote" and data["presses"].seen((chat_id, getattr(query.message, "message_id", None), query.data)):
        await acknowledge(query)  # a double tap: carried out once (a vote may change, so it is never a repeat)
        return
    await PRESSES[press.kind](update, context, press)


def on_its_keyboard(query) -> bool:
    """Whether the pressed data is on the keyboard of the message it came from (a "都不是" under a
    plain answer is forged, a related question already answered is gone); True when Telegram no
    longer sends the message, since then nothing can be checked."""
    markup = query.message.reply_markup if isinstance(query.message, Message) else None
    return markup is None or any(button.callback_data == query.data for row in markup.inline_keyboard for button in row)


class Recent:
    """The last ``size`` keys seen, oldest forgotten first: enough to know a double tap."""

    def __init__(self, size: int = 4096) -> None:
        self.size, self._keys, self._lock = size, OrderedDict(), threading.Lock()

    def seen(self, key: Hashable) -> bool:
        """Whether ``key`` came before; it is remembered from now on."""
        with self._lock:
            if key in self._keys:
                return True
            self._keys[key] = None
            if len(self._keys) > self.size:
                self._keys.popitem(last=False)
            return False


async def vote(update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
    """👍 / 👎: logged for this user and answer (a later press replaces it) with the question the
    answer replied to (or, under a related question's answer, that passage's own), the keyboard
    edited to show the vote, thanked."""
    query = update.callback_query
    chat_id = update.effective_chat.id if update.effective_chat else None
    log.info("feedback %s passage=%s chat=%s", "up" if press.sign == "+" else "down", press.passage.id,
             pseudonym(context, chat_id))
    question = question_behind(query.message, context.bot.id, context.bot.username) or press.passage.question
    answer_key = query.message.message_id if query.message else None
    note_question(context, "upvote" if press.sign == "+" else "downvote", chat_id, question, None, [press.passage.id],
                  voter=query.from_user.id if query.from_user else chat_id, answer=answer_key)
    await acknowledge(query, TEXTS["feedback_thanks"])
    await edit_markup(query, voted(query.message, press.sign))


async def expand(update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
    """展开全文: the whole passage edited into the answer, its button gone; as a new message when it
    does not fit one, or the answer can no longer be edited."""
    query = update.callback_query
    faq: FAQ = context.bot_data["faq"]
    full = render_html(compose_chosen(press.passage, SearchResult(press.passage.question, (), (), None), faq.messages),
                       full=True)
    await acknowledge(query)
    markup = without(query.message, query.data)
    if isinstance(query.message, Message) and len(split_message(full)) == 1:
        try:
            await with_retries(lambda: query.message.edit_text(full, parse_mode=ParseMode.HTML, reply_markup=markup,
                                                               link_preview_options=NO_PREVIEW))
            return
        except BadRequest as error:
            if "not modified" in str(error).lower():
                return
            log.info("could not edit an answer (%s); sending the full text anew", error)
    await send_chunks(context, query.message.chat.id, full, query.message.message_id, markup)


async def chosen(update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
    """A related question or a clarification's candidate: that passage answered in a new message,
    with buttons of its own. A related question then leaves the keyboard (a second tap would only
    repeat it); a candidate's pick is logged as a way users ask for that passage."""
    query = update.callback_query
    faq: FAQ = context.bot_data["faq"]
    passage = press.passage
    answer = await compute(context, lambda: compose_chosen(passage, faq.search(passage.question, k=SEARCHED),
                                                           faq.messages))
    if answer is None:  # the bot is stopping
        return
    if press.kind == "pick":
        asked = question_behind(query.message, context.bot.id, context.bot.username)
        if asked:
            note_question(context, "clarify_pick", query.message.chat.id, asked, None, [passage.id])
    await acknowledge(query)
    await send_answer(context, query.message.chat.id, answer, query.message.message_id)
    if press.kind == "rel":
        await edit_markup(query, without(query.message, query.data))


async def unanswered(update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
    """都不是 / 这个问题应该能回答: the question goes to the maintainer's log (with the candidates
    shown, for 都不是), the button leaves the keyboard, and the user hears it was noted."""
    query = update.callback_query
    asked = question_behind(query.message, context.bot.id, context.bot.username)
    if asked is None:
        await acknowledge(query, TEXTS["button_expired"])
        return
    shown = [p.id for p in candidates(query.message, context.bot_data["passages"])] if press.kind == "none" else []
    note_question(context, "none_of_these" if press.kind == "none" else "should_answer", query.message.chat.id,
                  asked, None, shown)
    await acknowledge(query, TEXTS["noted"])
    await edit_markup(query, without(query.message, query.data))


async def example_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
    """An example question (under /start or a refusal): its answer."""
    query = update.callback_query
    faq: FAQ = context.bot_data["faq"]
    if not isinstance(query.message, Message):
        await acknowledge(query, TEXTS["button_expired"])
        return
    top_k = context.bot_data["settings"].top_k
    answer = await compute(context, lambda: faq.ask(faq.messages.examples[press.example], top_k))
    if answer is None:
        return
    await acknowledge(query)
    await send_answer(context, query.message.chat.id, answer, query.message.message_id)


PRESSES = {"vote": vote, "full": expand, "rel": chosen, "pick": chosen, "none": unanswered, "should": unanswered,
           "example": example_pressed}


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure (no token, no names or ids) and tell the user something went wrong."""
    error = context.error
    if not isinstance(update, Update):
        if isinstance(error, Conflict):
            log.error("another process is polling with this token: %s", error)
        elif isinstance(error, TelegramError) and transient(error):
            log.warning("Bot API unreachable or failing (%s: %s); polling again", type(error).__name__, error)
        else:
            log.error("error outside any update: %s", type(error).__name__, exc_info=error)
        return
    chat_id = update.effective_chat.id if update.effective_chat else None
    if isinstance(error, Forbidden):  # the user blocked the bot, or it was removed from the group
        log.info("chat %s no longer accepts messages from the bot", pseudonym(context, chat_id))
        return
    log.error("update %s (chat %s) failed: %s", update.update_id, pseudonym(context, chat_id), type(error).__name__,
              exc_info=error)
    try:
        if update.callback_query:
            await update.callback_query.answer(TEXTS["failed"])
        elif chat_id is not None and update.message and expects_reply(update.message, context.bot):
            await context.bot.send_message(chat_id, TEXTS["failed"])
    except TelegramError as second:
        log.warning("could not tell the user about the failure: %s", type(second).__name__)


# --- the pieces the handlers share ------------------------------------------------------------

async def answer_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The question in the update's message, answered as a reply to it; a refusal goes to the
    maintainer's log."""
    message = update.message
    faq: FAQ = context.bot_data["faq"]
    if not await admitted(update, context):
        return
    question = asked_in(message, context.bot.id, context.bot.username)
    if not question:
        await reply_noting(update, context, html.escape(faq.messages.empty_question))
        return
    top_k = context.bot_data["settings"].top_k
    answer = await compute(context, lambda: faq.ask(question, top_k))
    if answer is None:  # the bot is stopping
        return
    context.bot_data["counts"]["answered" if answer.answered else "refused"] += 1
    if not answer.answered and Refusal(answer.refusal).asked:
        note_question(context, "refused", message.chat_id, question, answer.best_score, [])
    await send_answer(context, message.chat_id, answer, message.message_id)
    log.info("answered chat=%s answered=%s top=%s", pseudonym(context, message.chat_id), answer.answered,
             answer.hits[0].passage.id if answer.hits else "-")


def note_question(context: ContextTypes.DEFAULT_TYPE, kind: str, chat_id: int | None, question: str,
                  best_score: float | None, shown: list[str], voter: int | None = None,
                  answer: int | None = None) -> None:
    """One line in the maintainer's log; a full disk or a read-only folder never stops an answer."""
    try:
        context.bot_data["questions"].record(kind, chat_id, question, best_score, shown, voter, answer)
    except OSError as error:
        log.warning("could not write the question log: %s", error)


async def reply_text(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Plain text (escaped for HTML) as a reply to the update's message."""
    await send_chunks(context, update.effective_chat.id, html.escape(text), update.message.message_id)


async def reply_noting(update: Update, context: ContextTypes.DEFAULT_TYPE, text_html: str) -> None:
    """A reply that stands in for an answer (/help, ask in text, ask a question), under the
    disclaimer every answer carries, as answers show it."""
    disclaimer = html.escape(context.bot_data["faq"].messages.disclaimer_short)
    await send_chunks(context, update.effective_chat.id, f"{text_html}\n\n<i>⚠️ {disclaimer}</i>",
                      update.message.message_id)


async def send_answer(context: ContextTypes.DEFAULT_TYPE, chat_id: int, answer: Answer, reply_to: int | None) -> None:
    """An answer's first message in HTML (split under Telegram's limit), its buttons under the last part."""
    await send_chunks(context, chat_id, render_html(answer), reply_to, keyboard(answer))


def keyboard(answer: Answer) -> InlineKeyboardMarkup:
    """The buttons under an answer: 展开全文, related questions, 👍/👎; a clarification's candidates
    and 都不是; a refusal's example questions and 这个问题应该能回答. One button a row, but the votes."""
    shown = view(answer)
    if shown.kind is Outcome.REFUSE:
        rows = [[InlineKeyboardButton(example, callback_data=f"ex:{n}")] for n, example in enumerate(shown.examples)]
        return InlineKeyboardMarkup([*rows, [InlineKeyboardButton(TEXTS["should_button"], callback_data="should")]])
    if shown.kind is Outcome.CLARIFY:
        rows = [[InlineKeyboardButton(c.label, callback_data=passage_data("pick", c.id))] for c in shown.choices]
        return InlineKeyboardMarkup([*rows, [InlineKeyboardButton(TEXTS["none_button"], callback_data="none")]])
    rows = [[InlineKeyboardButton(TEXTS["full_button"], callback_data=passage_data("full", shown.passage))]] \
        if shown.more else []
    rows += [[InlineKeyboardButton(c.label, callback_data=passage_data("rel", c.id))] for c in shown.related]
    votes = [InlineKeyboardButton(TEXTS["up_button"], callback_data=passage_data("fb:+", shown.passage)),
             InlineKeyboardButton(TEXTS["down_button"], callback_data=passage_data("fb:-", shown.passage))]
    return InlineKeyboardMarkup([*rows, votes])


def passage_data(action: str, passage_id: str) -> str:
    """``action:<passage id>``, or ``action:~<hash>`` for an id too long for 64 bytes."""
    return f"{action}:{passage_key(passage_id)}"


def passage_key(passage_id: str) -> str:
    """A passage as buttons carry it: its id, or ``~`` and its hash when the id is too long to fit
    the longest action ("fb:+:", "pick:") in Telegram's 64 bytes."""
    if len(passage_id.encode("utf-8")) <= CALLBACK_DATA_LIMIT - len("pick:"):
        return passage_id
    return f"~{hashlib.sha1(passage_id.encode('utf-8')).hexdigest()[:16]}"


def button_passages(faq: FAQ) -> dict[str, Passage]:
    """Every passage by the key its buttons carry."""
    return {passage_key(p.id): p for p in faq.knowledge.passages}


def _rows(message) -> list[list[InlineKeyboardButton]]:
    markup = message.reply_markup if isinstance(message, Message) else None
    return [list(row) for row in markup.inline_keyboard] if markup else []


def without(message, data: str) -> InlineKeyboardMarkup | None:
    """The message's keyboard less the button that carries ``data`` (None when nothing is left)."""
    rows = [[b for b in row if b.callback_data != data] for row in _rows(message)]
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(rows) if rows else None


def voted(message, sign: str) -> InlineKeyboardMarkup | None:
    """The message's keyboard with ``sign``'s vote button marked and the other one plain."""
    marks = {"+": TEXTS["up_button"], "-": TEXTS["down_button"]}

    def marked(button: InlineKeyboardButton) -> InlineKeyboardButton:
        match = _VOTE.fullmatch(button.callback_data or "")
        if not match:
            return button
        text = marks[match.group(1)]
        return InlineKeyboardButton(TEXTS["voted"].format(vote=text) if match.group(1) == sign else text,
                                    callback_data=button.callback_data)

    rows = [[marked(b) for b in row] for row in _rows(message)]
    return InlineKeyboardMarkup(rows) if rows else None


def candidates(message, passages: dict[str, Passage]) -> list[Passage]:
    """The passages a clarification offered: its keyboard's ``pick:`` buttons still known."""
    found = [parse_button(b.callback_data, passages, 0) for row in _rows(message) for b in row]
    return [press.passage for press in found if press is not None and press.kind == "pick"]


async def edit_markup(query, markup: InlineKeyboardMarkup | None) -> None:
    """The pressed message's keyboard replaced; nothing when it is gone, unchanged or too old."""
    if not isinstance(query.message, Message):
        return
    try:
        await with_retries(lambda: query.message.edit_reply_markup(reply_markup=markup))
    except BadRequest as error:  # "message is not modified", or no longer editable: the press is logged anyway
        log.info("keyboard left as it was: %s", error)


@dataclass(frozen=True)
class Press:
    """A button's data once checked: ``kind`` (a key of ``PRESSES``), the ``passage`` it names,
    the vote's ``sign``, the ``example``'s number."""

    kind: str
    passage: Passage | None = None
    sign: str = ""
    example: int | None = None


_VOTE = re.compile(r"fb:([+-]):(.+)", re.DOTALL)
_PASSAGE_ACTION = re.compile(r"(full|rel|pick):(.+)", re.DOTALL)
_EXAMPLE = re.compile(r"ex:([0-9]{1,2})")


def parse_button(data: object, passages: dict[str, Passage], examples: int) -> Press | None:
    """The press a button's data stands for, exactly as the bot writes it (``fullmatch``, ASCII
    digits only), naming one of ``passages`` (``button_passages``) or of the ``examples``; None
    for anything else."""
    if not isinstance(data, str):
        return None
    if data in ("none", "should"):
        return Press(data)
    if match := _VOTE.fullmatch(data):
        passage = passages.get(match.group(2))
        return Press("vote", passage, sign=match.group(1)) if passage else None
    if match := _PASSAGE_ACTION.fullmatch(data):
        passage = passages.get(match.group(2))
        return Press(match.group(1), passage) if passage else None
    if (match := _EXAMPLE.fullmatch(data)) and int(match.group(1)) < examples:
        return Press("example", example=int(match.group(1)))
    return None


async def send_chunks(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str, reply_to: int | None,
                      markup: InlineKeyboardMarkup | None = None) -> None:
    """HTML text in as many messages as Telegram's limit needs, each a reply to ``reply_to``
    (so a button on the last one can find the question again)."""
    chunks = split_message(text)
    for n, chunk in enumerate(chunks):
        await send_html(context.bot, chat_id, chunk, reply_to, markup if n == len(chunks) - 1 else None)


async def send_html(bot, chat_id: int, text: str, reply_to: int | None = None,
                    markup: InlineKeyboardMarkup | None = None) -> Message:
    """One HTML message, tried again after failures that may pass; if Telegram cannot parse the
    HTML after all, the same words as plain text."""
    reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
    try:
        return await with_retries(lambda: bot.send_message(chat_id, text, parse_mode=ParseMode.HTML,
                                                            reply_parameters=reply, reply_markup=markup,
                                                            link_preview_options=NO_PREVIEW))
    except BadRequest as error:
        if "parse entities" not in str(error).lower():
            raise
        log.warning("Telegram could not parse a reply's HTML (%s); sending it as plain text", error)
        plain = html.unescape(re.sub(r"</?[a-z][a-z-]*[^<>]*>", "", text))
        return await with_retries(lambda: bot.send_message(chat_id, plain, reply_parameters=reply,
                                                            reply_markup=markup, link_preview_options=NO_PREVIEW))


async def acknowledge(query, text: str | None = None) -> None:
    """Answer a button press (the spinner stops; ``text`` as a note). Telegram refuses the answer
    to a press it thinks too old (one made while the bot was down, handled from the backlog): the
    press is carried out all the same, only its spinner has long stopped."""
    try:
        await with_retries(lambda: query.answer(text))
    except BadRequest as error:
        log.info("a button press could not be answered (%s); carrying it out all the same", error)


def transient(error: TelegramError) -> bool:
    """Whether trying again may succeed: a network failure or time-out, HTTP 5xx, 429, or an answer
    that is not JSON (for which python-telegram-bot raises a bare TelegramError). A refusal (400,
    401/404, 403, 409, a migrated group) is final."""
    if isinstance(error, BadRequest):
        return False
    return isinstance(error, (NetworkError, RetryAfter)) or type(error) is TelegramError


async def with_retries(call: Callable[[], Awaitable[T]], patience: float = SEND_PATIENCE) -> T:
    """``await call()``, again after a transient failure, pausing 0.5 s, 1 s, 2 s, 4 s, then 5 s
    between tries, for up to ``patience`` seconds. (429 "retry after" answers are waited out by the
    rate limiter first.)"""
    loop = asyncio.get_running_loop()
    give_up, pause = loop.time() + patience, RETRY_DELAY
    while True:
        try:
            return await call()
        except TelegramError as error:
            if not transient(error) or loop.time() + pause > give_up:
                raise
            log.warning("Bot API call failed (%s: %s); trying again in %.1f s", type(error).__name__, error, pause)
            await asyncio.sleep(pause)
            pause = min(2 * pause, RETRY_DELAY_MAX)


def addressed_to_bot(message: Message, bot_id: int, username: str | None) -> bool:
    """A reply to one of the bot's messages, or a mention of its @username (text or caption)."""
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot_id:
        return True
    handle = f"@{username}".lower() if username else None
    return any((entity.user and entity.user.id == bot_id) or (handle and value.lower() == handle)
               for entity, value in mentions(message))


def expects_reply(message: Message, bot) -> bool:
    """Whether the sender waits for the bot: a private chat, a group message addressed to it, or a
    command for it. Only then may a failure be told in the chat; a group that never spoke to
    the bot never hears of its errors."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    command = re.match(r"/\w+(?:@(\w+))?", message.text or "")
    if command and (command.group(1) is None or command.group(1).lower() == (bot.username or "").lower()):
        return True
    try:
        return addressed_to_bot(message, bot.id, bot.username)
    except Exception:  # noqa: BLE001 (an error handler must not fail in turn)
        return False


def mentions(message: Message) -> list[tuple[MessageEntity, str]]:
    """The message's mentions with the text they cover. Read defensively: an entity is the
    client's claim, and one outside the text or splitting a character (UTF-16 offsets) is skipped."""
    found = []
    for text, entities in ((message.text, message.entities), (message.caption, message.caption_entities)):
        for entity in entities or ():
            if entity.type not in (MessageEntity.MENTION, MessageEntity.TEXT_MENTION) or not text:
                continue
            value = _utf16_slice(text, entity.offset, entity.length)
            if value is not None:
                found.append((entity, value))
    return found


def _utf16_slice(text: str, offset: int, length: int) -> str | None:
    """``text[offset:offset + length]`` counted in UTF-16 code units, as Telegram counts; None when
    that range leaves the text or cuts a character in two."""
    encoded = text.encode("utf-16-le", errors="surrogatepass")
    if not (0 <= offset and 0 <= length and 2 * (offset + length) <= len(encoded)):
        return None
    try:
        return encoded[2 * offset:2 * (offset + length)].decode("utf-16-le")
    except UnicodeDecodeError:
        return None


def question_of(message: Message, username: str | None) -> str:
    """The question in a message: its text without a leading /ask and without the bot's @username.
    (The patterns start at a literal "/" or "@", so a long message costs one linear scan.)"""
    text = message.text or message.caption or ""
    text = re.sub(r"^/ask(?:@\w+)?(?=\s|$)", "", text, flags=re.IGNORECASE)
    if username:
        parts = re.split(rf"@{re.escape(username)}\b[\s,，:：]*", text, flags=re.IGNORECASE)
        text = " ".join([*(part.rstrip() for part in parts[:-1]), parts[-1]])
    return text.strip(" \t\r\n,，:：")


def asked_in(message: Message, bot_id: int, username: str | None) -> str:
    """The question a message asks: its own words, or, when it holds none ("@bot" alone, replying
    to someone else's message), the words of the message it replies to."""
    question = question_of(message, username)
    replied = message.reply_to_message
    if not question and replied and replied.from_user and replied.from_user.id != bot_id:
        question = question_of(replied, username)
    return question_text(question)


def question_behind(message, bot_id: int, username: str | None) -> str | None:
    """For a button under an answer: the user's question it answered (None when that message is
    gone, Telegram no longer sends it, or the answer replied to the bot's own message)."""
    asked = message.reply_to_message if isinstance(message, Message) else None
    if asked is None or (asked.from_user and asked.from_user.is_bot):
        return None
    return asked_in(asked, bot_id, username) or None


def _example(faq: FAQ) -> str:
    return faq.messages.examples[0] if faq.messages.examples else "借呗升级失败怎么办？"


def _size(faq: FAQ) -> dict[str, int]:
    """How much the bot knows: ``sources`` (knowledge files) and ``passages``, for TEXTS' placeholders."""
    return {"sources": len(_sources(faq)), "passages": len(faq.knowledge.passages)}


def _size_line(faq: FAQ) -> str:
    return "{passages} passages from {sources} sources".format(**_size(faq))


def _sources(faq: FAQ) -> list[tuple[str, str, int]]:
    """(title, file, passages) per knowledge file; the title is the heading most of its passages
    share ("" for a file of unrelated Q&A)."""
    by_file: dict[str, list] = {}
    for passage in faq.knowledge.passages:
        by_file.setdefault(passage.source, []).append(passage)
    sources = []
    for file, passages in sorted(by_file.items()):
        common = Counter(p.headings[0] for p in passages if p.headings).most_common(1)
        title, count = common[0] if common else ("", 0)
        sources.append((title if count > 1 or len(passages) == 1 else "", file, len(passages)))
    return sources
