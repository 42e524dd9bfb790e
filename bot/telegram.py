"""The Telegram front end: python-telegram-bot handlers that translate between chats and the FAQ
core, long polling, and quiet, token-free logs. No retrieval here: questions go to ``FAQ.ask``.

Buttons carry everything they need in their callback data (no in-memory lookups), so a button
pressed after a restart still works: ``fb:+:<passage id>`` / ``fb:-:<passage id>`` (feedback),
``more:<shown>`` (the next passages; the question is the message the answer replied to),
``more:<shown>:<n>`` and ``ex:<n>`` (example question ``n`` of ``messages.toml``)."""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import os
import re
import secrets
import signal
import sys
from collections import Counter
from typing import Awaitable, Callable, TypeVar

from telegram import (BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message,
                      MessageEntity, ReplyParameters, Update)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
                          ContextTypes, MessageHandler, filters)

from .config import Settings
from .faq import FAQ
from .knowledge import KnowledgeError
from .reply import Answer, render_html, split_message

log = logging.getLogger("faqbot.telegram")

TOKEN_PATTERN = re.compile(r"^\d+:[A-Za-z0-9_-]{30,}$")
CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit for inline button data
SEND_ATTEMPTS = 4  # a send that fails on the network is tried this many times, 0.5 s, 1 s, 2 s apart
RATE_LIMIT_RETRIES = 3  # 429 "retry after N" answers waited out by AIORateLimiter
MAX_SHOWN = 50  # "more results" stops here, whatever a button says
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
T = TypeVar("T")

# The bot's own words in Telegram (the answers' words live in resources/messages.toml).
TEXTS = {
    "greeting": "你好！我是借呗常见问题助手。",
    "knows": "我根据 {sources} 篇资料（共 {passages} 段内容）回答借呗的常见问题，主要是：",
    "how_to_ask": "直接把问题发给我就行；在群里请 @{username} 提问、回复我的消息，或用 /ask 问题。",
    "help": ("<b>怎么提问</b>\n"
             "· 私聊：直接发文字问题，例如：{example}\n"
             "· 群聊：@{username} 问题、回复我的消息，或 /ask 问题\n"
             "· 答案下方：👍 / 👎 告诉我答得好不好，「更多结果」看更多相关段落\n\n"
             "<b>命令</b>\n/start 我能回答什么\n/ask 问题 提问\n/help 本帮助\n/about 资料来源与免责声明"),
    "sources_heading": "资料来源",
    "source_line": "{title}（{file}，{passages} 段）",
    "source_line_untitled": "{file}（{passages} 段）",
    "disclaimer_heading": "免责声明",
    "text_only": "我只能读文字消息，请用文字提问，例如：{example}",
    "unknown_command": "没有这个命令。直接发问题给我，或看 /help。",
    "feedback_thanks": "谢谢反馈！",
    "more_button": "更多结果",
    "no_more": "没有更多相关内容了。",
    "button_expired": "这个按钮对应的问题找不到了，请重新提问。",
    "failed": "抱歉，处理这条消息时出了点问题，请稍后再试。",
}
COMMANDS = [
    BotCommand("start", "我能回答什么"),
    BotCommand("ask", "提问，例如 /ask 借呗升级失败怎么办"),
    BotCommand("help", "怎么提问"),
    BotCommand("about", "资料来源与免责声明"),
]


# --- the command-line entry ------------------------------------------------------------------

def run(settings: Settings) -> int:
    """``faqbot telegram``: check the token, load the knowledge, poll until SIGINT or SIGTERM."""
    token = os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    problem = token_problem(token)
    if problem:
        print(f"faqbot: error: {problem}", file=sys.stderr)
        return 2
    configure_logging(token)
    try:
        faq = FAQ.load(settings.knowledge, skip_bad=settings.skip_bad)
    except KnowledgeError as error:
        print(f"faqbot: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    for skipped in faq.knowledge.skipped:
        print(f"faqbot: skipped {skipped}", file=sys.stderr)
    faq.ask(_example(faq))  # warms the tokeniser's dictionary: the first user should not wait for it
    application = build_application(token, faq, os.environ.get("TELEGRAM_API_BASE") or None, settings.top_k)
    try:
        application.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=3,
                                stop_signals=(signal.SIGINT, signal.SIGTERM))
    except InvalidToken:
        print("faqbot: error: Telegram refused the token in TELEGRAM_BOT_TOKEN (mistyped or revoked? "
              "@BotFather shows the current one)", file=sys.stderr)
        return 2
    except TelegramError as error:
        print(f"faqbot: error: cannot start the bot: {redact(str(error), token)}", file=sys.stderr)
        return 1
    log.info("stopped")
    return 0


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be a bot token (without repeating it), or None when it looks right."""
    if not token:
        return "TELEGRAM_BOT_TOKEN is not set (create a bot with @BotFather and export its token)"
    if not TOKEN_PATTERN.fullmatch(token):
        return "TELEGRAM_BOT_TOKEN does not look like a bot token (expected 123456789:AAH..., from @BotFather)"
    return None


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


def configure_logging(token: str, level: int = logging.INFO) -> None:
    """One handler on stderr at INFO; httpx/httpcore (whose request lines hold the token in the
    URL) at WARNING, so those lines never reach a log."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            (token, token.partition(":")[2])))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # A proxy's HTML error page (502) makes python-telegram-bot log a JSON traceback; the retry
    # warning of ``with_retries`` already says what failed.
    logging.getLogger("telegram.request.BaseRequest").addFilter(
        lambda record: not record.getMessage().startswith("Can not load invalid JSON data"))
    logging.captureWarnings(True)


def pseudonym(context: ContextTypes.DEFAULT_TYPE, chat_id: int | None) -> str:
    """A chat as logs show it: a salted hash, never the id."""
    if chat_id is None:
        return "-"
    return hashlib.sha256(f"{context.bot_data['salt']}:{chat_id}".encode()).hexdigest()[:12]


# --- wiring ----------------------------------------------------------------------------------

def build_application(token: str, faq: FAQ, base_url: str | None = None, top_k: int = 3) -> Application:
    """The whole bot: handlers in the order a user meets them, the rate limiter, the error handler."""
    builder = (ApplicationBuilder().token(token).rate_limiter(AIORateLimiter(max_retries=RATE_LIMIT_RETRIES))
               .concurrent_updates(True).post_init(announce))
    if base_url:
        builder = builder.base_url(base_url)
    application = builder.build()
    application.bot_data.update(faq=faq, top_k=top_k,
                                salt=os.environ.get("FAQBOT_LOG_SALT") or secrets.token_hex(16))
    new = filters.UpdateType.MESSAGE  # edited messages never get a second answer
    application.add_handler(CommandHandler("start", start, filters=new))
    application.add_handler(CommandHandler("help", help_command, filters=new))
    application.add_handler(CommandHandler("about", about, filters=new))
    application.add_handler(CommandHandler("ask", ask_command, filters=new))
    application.add_handler(MessageHandler(new & filters.ChatType.PRIVATE & filters.COMMAND, unknown_command))
    application.add_handler(MessageHandler(new & filters.ChatType.PRIVATE & filters.TEXT, private_text))
    application.add_handler(MessageHandler(new & filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND,
                                           group_text))
    application.add_handler(MessageHandler(new & ~filters.TEXT & ~filters.StatusUpdate.ALL, not_text))
    application.add_handler(CallbackQueryHandler(feedback, pattern=r"^fb:[+-]:"))
    application.add_handler(CallbackQueryHandler(more_results, pattern=r"^more:\d+(:\d+)?$"))
    application.add_handler(CallbackQueryHandler(example_pressed, pattern=r"^ex:\d+$"))
    application.add_handler(CallbackQueryHandler(stale_button))
    application.add_error_handler(on_error)
    return application


async def announce(application: Application) -> None:
    """At start: the command menu, and one log line saying who is serving what."""
    try:
        await with_retries(lambda: application.bot.set_my_commands(COMMANDS))
    except TelegramError as error:
        log.warning("could not set the command menu: %s", error)
    faq: FAQ = application.bot_data["faq"]
    log.info("@%s serving %d passages from %d sources; polling for updates", application.bot.username,
             len(faq.knowledge.passages), len({p.source for p in faq.knowledge.passages}))


# --- handlers --------------------------------------------------------------------------------

async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: a greeting, what the bot knows, and three example questions as buttons."""
    faq: FAQ = context.bot_data["faq"]
    e = html.escape
    titles = [title or file for title, file, _count in _sources(faq)]
    lines = [f"<b>{e(TEXTS['greeting'])}</b>",
             e(TEXTS["knows"].format(sources=len(titles), passages=len(faq.knowledge.passages))),
             *(f"· {e(title)}" for title in titles), "",
             e(TEXTS["how_to_ask"].format(username=context.bot.username)), "",
             f"<i>⚠️ {e(faq.messages.disclaimer_short)}</i>", "", e(faq.messages.examples_heading)]
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton(example, callback_data=f"ex:{n}")]
                                    for n, example in enumerate(faq.messages.examples)])
    await send_chunks(context, update.effective_chat.id, "\n".join(lines), update.message.message_id, buttons)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: how to ask in a private chat and in a group, and the commands."""
    faq: FAQ = context.bot_data["faq"]
    text = TEXTS["help"].format(example=html.escape(_example(faq)),
                                username=html.escape(context.bot.username or ""))
    await send_chunks(context, update.effective_chat.id,
                      f"{text}\n\n<i>⚠️ {html.escape(faq.messages.disclaimer_short)}</i>", update.message.message_id)


async def about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/about: the knowledge sources and the full disclaimer (which quotes the articles' own notice)."""
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


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot does not have (private chat): a pointer to /help."""
    await send_chunks(context, update.effective_chat.id, html.escape(TEXTS["unknown_command"]),
                      update.message.message_id)


async def private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text in a private chat is a question: the answer, as a reply to it."""
    await answer_message(update, context)


async def group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In a group, a message that mentions the bot or replies to it gets the answer; others, silence."""
    if addressed_to_bot(update.message, context.bot.id, context.bot.username):
        await answer_message(update, context)


async def not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A sticker, photo, voice note or file: please ask in text (in a group, only when addressed)."""
    message = update.message
    if message.chat.type != ChatType.PRIVATE and not addressed_to_bot(message, context.bot.id, context.bot.username):
        return
    faq: FAQ = context.bot_data["faq"]
    await send_chunks(context, message.chat_id, html.escape(TEXTS["text_only"].format(example=_example(faq))),
                      message.message_id)


async def feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """👍 / 👎: logged against the passage (the chat only as a salted hash), and thanked."""
    query = update.callback_query
    _, sign, passage = query.data.split(":", 2)
    log.info("feedback %s passage=%s chat=%s", "up" if sign == "+" else "down", passage or "-",
             pseudonym(context, update.effective_chat.id if update.effective_chat else None))
    await with_retries(lambda: query.answer(TEXTS["feedback_thanks"]))


async def more_results(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """更多结果: the next passages, as a new message; a polite note when the question is gone."""
    query = update.callback_query
    faq: FAQ = context.bot_data["faq"]
    parts = query.data.split(":")
    shown, example = int(parts[1]), (int(parts[2]) if len(parts) > 2 else None)
    question, reply_to = _question_behind(query.message, example, faq, context.bot.username)
    if not question:
        await with_retries(lambda: query.answer(TEXTS["button_expired"]))
        return
    extra = faq.more(question, shown, count=context.bot_data["top_k"]) if shown < MAX_SHOWN else None
    if extra is None or not extra.answered:
        await with_retries(lambda: query.answer(TEXTS["no_more"]))
        return
    await with_retries(lambda: query.answer())
    await send_answer(context, query.message.chat.id, extra, reply_to, shown_before=shown, example=example)


async def example_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An example question under /start: its answer."""
    query = update.callback_query
    faq: FAQ = context.bot_data["faq"]
    n = int(query.data.split(":")[1])
    if n >= len(faq.messages.examples) or not isinstance(query.message, Message):
        await with_retries(lambda: query.answer(TEXTS["button_expired"]))
        return
    await with_retries(lambda: query.answer())
    answer = faq.ask(faq.messages.examples[n], context.bot_data["top_k"])
    await send_answer(context, query.message.chat.id, answer, query.message.message_id, example=n)


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button this version does not know (from an older one): a polite note, no crash."""
    await with_retries(lambda: update.callback_query.answer(TEXTS["button_expired"]))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure (no token, no names or ids) and tell the user something went wrong."""
    error = context.error
    if not isinstance(update, Update):
        if isinstance(error, Conflict):
            log.error("another process is polling with this token: %s", error)
        elif isinstance(error, NetworkError) and not isinstance(error, BadRequest):
            log.warning("Bot API unreachable, polling again: %s", error)
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
        elif chat_id is not None and update.effective_message:
            await context.bot.send_message(chat_id, TEXTS["failed"])
    except TelegramError as second:
        log.warning("could not tell the user about the failure: %s", type(second).__name__)


# --- the pieces the handlers share ------------------------------------------------------------

async def answer_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The question in the update's message, answered as a reply to it."""
    message = update.message
    faq: FAQ = context.bot_data["faq"]
    question = question_of(message, context.bot.username)
    replied = message.reply_to_message
    if not question and replied and replied.from_user and replied.from_user.id != context.bot.id:
        question = question_of(replied, context.bot.username)  # "@bot" under someone else's question
    if not question:
        await send_chunks(context, message.chat_id, html.escape(faq.messages.empty_question), message.message_id)
        return
    answer = faq.ask(question, context.bot_data["top_k"])
    await send_answer(context, message.chat_id, answer, message.message_id)
    log.info("answered chat=%s answered=%s top=%s", pseudonym(context, message.chat_id), answer.answered,
             answer.hits[0].passage.id if answer.hits else "-")


async def send_answer(context: ContextTypes.DEFAULT_TYPE, chat_id: int, answer: Answer, reply_to: int | None,
                      shown_before: int = 0, example: int | None = None) -> None:
    """An answer in HTML, split under Telegram's limit; its buttons under the last part."""
    faq: FAQ = context.bot_data["faq"]
    markup = None
    if answer.answered:
        shown = shown_before + len(answer.hits)
        has_more = shown < MAX_SHOWN and faq.more(answer.question, shown, count=1).answered
        markup = answer_keyboard(answer.hits[0].passage.id, shown if has_more else None, example)
    await send_chunks(context, chat_id, render_html(answer), reply_to, markup)


def answer_keyboard(passage_id: str, more_from: int | None, example: int | None = None) -> InlineKeyboardMarkup:
    """👍 / 👎 for the top passage, and 更多结果 when there is more to show."""
    row = [InlineKeyboardButton("👍", callback_data=_feedback_data("+", passage_id)),
           InlineKeyboardButton("👎", callback_data=_feedback_data("-", passage_id))]
    if more_from is not None:
        data = f"more:{more_from}" if example is None else f"more:{more_from}:{example}"
        row.append(InlineKeyboardButton(TEXTS["more_button"], callback_data=data))
    return InlineKeyboardMarkup([row])


def _feedback_data(sign: str, passage_id: str) -> str:
    data = f"fb:{sign}:{passage_id}"
    if len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT:
        return data
    return f"fb:{sign}:~{hashlib.sha1(passage_id.encode('utf-8')).hexdigest()[:16]}"  # an id too long to carry


async def send_chunks(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str, reply_to: int | None,
                      markup: InlineKeyboardMarkup | None = None) -> None:
    """HTML text in as many messages as Telegram's limit needs, each a reply to ``reply_to``
    (so a button on the last one can find the question again)."""
    chunks = split_message(text)
    for n, chunk in enumerate(chunks):
        await send_html(context.bot, chat_id, chunk, reply_to, markup if n == len(chunks) - 1 else None)


async def send_html(bot, chat_id: int, text: str, reply_to: int | None = None,
                    markup: InlineKeyboardMarkup | None = None) -> Message:
    """One HTML message, network failures retried; if Telegram cannot parse the HTML after all,
    the same words as plain text."""
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


async def with_retries(call: Callable[[], Awaitable[T]], attempts: int = SEND_ATTEMPTS, delay: float = 0.5) -> T:
    """``await call()``, again after a network failure or time-out (0.5 s, 1 s, 2 s later); a
    refusal (400, 403) is not retried, and "retry after" answers are the rate limiter's."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except BadRequest:
            raise
        except NetworkError as error:  # includes TimedOut and HTTP 5xx from a proxy
            if attempt == attempts:
                raise
            log.warning("Bot API call failed (%s: %s); attempt %d of %d in %.1f s", type(error).__name__, error,
                        attempt + 1, attempts, delay)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def addressed_to_bot(message: Message, bot_id: int, username: str | None) -> bool:
    """A reply to one of the bot's messages, or a mention of its @username (text or caption)."""
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot_id:
        return True
    kinds = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    handle = f"@{username}".lower() if username else None
    return any((entity.user and entity.user.id == bot_id) or (handle and value.lower() == handle)
               for entity, value in found.items())


def question_of(message: Message, username: str | None) -> str:
    """The question in a message: its text without a leading /ask and without the bot's @username."""
    text = message.text or message.caption or ""
    text = re.sub(r"^/ask(?:@\w+)?(?=\s|$)", "", text, flags=re.IGNORECASE)
    if username:
        text = re.sub(rf"\s*@{re.escape(username)}\b[\s,，:：]*", " ", text, flags=re.IGNORECASE)
    return text.strip(" \t\r\n,，:：")


def _question_behind(message, example: int | None, faq: FAQ, username: str | None) -> tuple[str | None, int | None]:
    """For a button under an answer: the question it answered, and the message to reply to."""
    if not isinstance(message, Message):  # too old: Telegram no longer sends its content
        return None, None
    if example is not None:
        examples = faq.messages.examples
        return (examples[example], message.message_id) if example < len(examples) else (None, None)
    asked = message.reply_to_message
    if asked is None:
        return None, None
    return question_of(asked, username) or None, asked.message_id


def _example(faq: FAQ) -> str:
    return faq.messages.examples[0] if faq.messages.examples else "借呗升级失败怎么办？"


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
