"""Every reply carries the disclaimer; refusals help; Telegram HTML is escaped and split safely."""

import html
import math
import re

from bot.reply import render_html, render_text, split_message, to_json


def test_answers_and_refusals_both_carry_the_disclaimer(faq):
    for question in ["借呗升级失败怎么办", "今天天气怎么样"]:
        answer = faq.ask(question)
        assert faq.messages.disclaimer in render_text(answer)
        assert to_json(answer)["disclaimer"] == faq.messages.disclaimer
        assert faq.messages.disclaimer_short in html.unescape(render_html(answer))


def test_a_refusal_suggests_questions_and_the_official_channel(faq):
    text = render_text(faq.ask("今天天气怎么样"))
    assert all(example in text for example in faq.messages.examples)
    assert "95188" in text


def test_a_huabei_only_question_is_told_it_is_out_of_scope(faq):
    answer = faq.ask("花呗的免息期有多长")
    assert not answer.answered and any("花呗" in note for note in answer.notes)


def test_second_and_third_results_only_when_close_to_the_best(faq):
    answer = faq.ask("借呗升级失败怎么办", top_k=3)
    assert 1 <= len(answer.hits) <= 3
    if not answer.clarify:
        assert all(math.exp(hit.score - answer.hits[0].score) >= 0.02 for hit in answer.hits)


def test_an_over_long_question_is_answered_on_its_start(faq):
    answer = faq.ask("借呗升级失败怎么办" + "啊" * 5000)
    assert answer.answered and "1000" in answer.notes[0]


def test_html_escapes_passage_text(faq):
    answer = faq.ask("借呗升级失败怎么办")
    rendered = render_html(answer)
    assert set(re.findall(r"</?(\w+)", rendered)) <= {"b", "i"}


def test_split_keeps_chunks_under_the_limit_and_tags_balanced():
    paragraphs = [f"<b>标题{i}</b>\n" + html.escape("内容 & <x> " * 60) for i in range(40)]
    text = "\n\n".join(paragraphs)
    chunks = split_message(text, limit=500)
    assert all(len(chunk) <= 500 for chunk in chunks)
    assert "\n\n".join(chunks).replace("\n", "") == text.replace("\n", "")
    for chunk in chunks:
        assert chunk.count("<b>") == chunk.count("</b>")
        assert not re.search(r"&[a-z]*$", chunk)


def test_split_cuts_a_single_huge_line_without_breaking_entities():
    text = html.escape("&" * 3000)
    chunks = split_message(text, limit=1000)
    assert all(len(c) <= 1000 for c in chunks) and "".join(chunks) == text
    assert all(html.unescape(c) == "&" * (len(c) // 5) for c in chunks)


def test_a_reader_never_sees_the_same_words_twice(faq):
    for question in ["借呗分期还完了为什么没有额度", "借呗升级失败怎么办", "借呗额度异常账单没生成"]:
        first = faq.ask(question, top_k=3)
        more = faq.more(question, shown=len(first.hits), count=3)
        texts = [hit.passage.answer for hit in first.hits + more.hits]
        for i, text in enumerate(texts):
            assert not any(text in other or other in text for other in texts[:i]), question


def test_split_counts_as_telegram_does_in_utf16_units():
    from bot.reply import telegram_length

    text = "\n\n".join(["😀" * 700 for _ in range(6)] + ["借" * 5000])
    chunks = split_message(text)
    assert all(telegram_length(chunk) <= 4096 for chunk in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")


def test_a_refusal_says_why_with_the_reply_its_topic_deserves(faq):
    foreign, garbage = faq.ask("借呗的利息怎么算"), faq.ask("🤔🤔🤔")
    assert not (foreign.answered or garbage.answered)
    fees = next(topic for topic in faq.knowledge.topics if "利息" in topic.name)
    assert foreign.notes == (fees.reply,)
    assert garbage.notes == (faq.messages.refusal_notes["empty"],)
