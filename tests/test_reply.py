"""Every reply carries the disclaimer; refusals help; Telegram HTML is escaped and split safely."""

import html
import re

import pytest

from bot.console import options_of, render
from bot.decision import Outcome
from bot.reply import render_html, split_message, to_json, view

from conftest import CONTRACT_KEYS


def console_text(faq, answer) -> str:
    """What the console prints for ``answer``."""
    shown = view(answer)
    return render(shown, options_of(shown, faq.messages), faq.messages)


def test_answers_and_refusals_both_carry_the_disclaimer(faq):
    for question in ["借呗升级失败怎么办", "今天天气怎么样"]:
        answer = faq.ask(question)
        assert view(answer).disclaimer == faq.messages.disclaimer
        assert faq.messages.disclaimer_short in console_text(faq, answer)
        assert to_json(answer)["disclaimer"] == faq.messages.disclaimer
        assert faq.messages.disclaimer_short in html.unescape(render_html(answer))


def test_a_refusal_suggests_questions_and_the_official_channel(faq):
    text = console_text(faq, faq.ask("今天天气怎么样"))
    assert all(example in text for example in faq.messages.examples)
    assert "95188" in text


def test_a_huabei_only_question_is_told_it_is_out_of_scope(faq):
    answer = faq.ask("花呗的免息期有多长")
    assert not answer.answered and any("花呗" in note for note in answer.notes)


def test_an_answer_lists_the_best_distinct_passages_best_first(faq):
    answer = faq.ask("借呗升级失败怎么办", top_k=3)
    scores = [hit.score for hit in answer.hits]
    assert answer.answered and len(answer.hits) == 3 and scores == sorted(scores, reverse=True)
    assert len({hit.passage.answer for hit in answer.hits}) == 3


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
        answer = faq.ask(question, top_k=3)
        passages = dict.fromkeys([hit.passage for hit in answer.hits] + list(answer.related))  # one of each
        texts = [passage.answer for passage in passages]
        assert len(texts) > 1, question
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


@pytest.mark.parametrize("greeting", ["你好", "谢谢", "在吗？", "hi", "hello!", "借呗", "蚂蚁借呗？", "jiebei"])
def test_a_greeting_or_the_bare_product_name_is_asked_what_the_problem_is(faq, greeting):
    answer = faq.ask(greeting)
    assert not answer.answered and answer.refusal == "filler"
    assert answer.notes == (faq.messages.refusal_notes["filler"],)


# --- the answer view (what a person is shown, on any screen) ---------------------------------

from bot.knowledge import load_knowledge, split_article  # noqa: E402
from bot.reply import compose, compose_chosen, shorten  # noqa: E402
from bot.search import Hit, SearchResult  # noqa: E402


def test_an_answer_is_titled_by_its_own_heading_and_sourced_by_its_articles_title(faq):
    shown = view(faq.ask("借呗升级失败怎么办"))
    best = faq.ask("借呗升级失败怎么办").hits[0].passage
    assert shown.kind is Outcome.ANSWER and shown.title == best.headings[-1] and "›" not in shown.title
    assert shown.source == best.headings[0] and not shown.source.endswith(".txt")
    assert best.source not in console_text(faq, faq.ask("借呗升级失败怎么办"))
    assert best.source not in render_html(faq.ask("借呗升级失败怎么办"))


def test_a_qa_entry_has_no_article_title_and_never_shows_its_file_name(tmp_path, faq):
    (tmp_path / "faq.csv").write_text("question,answer\n借呗怎么升级,在借呗页面点升级。\n", encoding="utf-8")
    passage = load_knowledge(tmp_path).passages[0]
    answer = compose(SearchResult("借呗怎么升级", ("升级",), (Hit(passage, 1.0, 1.0),), None), faq.messages)
    assert view(answer).source == "" and view(answer).title == "借呗怎么升级"
    assert "faq.csv" not in console_text(faq, answer) + render_html(answer)


def test_a_short_passage_is_shown_whole_and_has_nothing_more():
    assert shorten("第一句。第二句。") == "第一句。第二句。"


def test_a_long_passage_shows_its_lead_and_first_numbered_item_only():
    text = "原因有以下几点:\n1. 系统故障：后台维护。\n2. 操作问题：未完成验证。\n3. 规则调整：更新了规则。"
    assert shorten(text) == "原因有以下几点:\n1. 系统故障：后台维护。"


def test_a_long_paragraph_is_cut_after_a_sentence_within_the_limit():
    text = "这是一句说明。" * 100
    short = shorten(text, limit=300)
    assert len(short) <= 300 and short.endswith("。") and text.startswith(short)


def test_text_without_any_sentence_end_is_cut_at_the_limit_and_marked():
    short = shorten("借" * 1000, limit=300)
    assert short == "借" * 300 + "…"


def test_every_passage_opens_with_at_most_about_a_screen(faq):
    for passage in faq.knowledge.passages:
        short = shorten(passage.answer)
        assert len(short) <= 301 and passage.answer.startswith(short.rstrip("…"))


def test_related_questions_are_other_distinct_passages_and_never_an_articles_framing(faq):
    for question in ["借呗升级失败怎么办", "借呗额度异常账单没生成", "借呗分期还完了为什么没有额度", "借呗系统维护看不到账单"]:
        answer = faq.ask(question)
        shown = view(answer)
        related = [p for p in faq.knowledge.passages if p.id in {c.id for c in shown.related}]
        assert 1 <= len(related) <= 3, question
        assert shown.passage not in {p.id for p in related}
        assert not any(p.framing for p in related)
        best = answer.hits[0].passage.answer
        assert not any(p.answer in best or best in p.answer for p in related)


def test_an_articles_introduction_and_closing_are_told_from_its_structure_not_their_names():
    article = "\n".join(["标题", "开头的介绍段落，说明背景。", "原因一", "第一个原因的说明。",
                         "办法二", "第二个办法的说明。", "最后几句话", "总结全文的收尾段落。"])
    passages = split_article("a.txt", article).passages
    assert [p.framing for p in passages] == [True, False, False, True]


def test_a_clarification_offers_its_candidates_as_choices(faq):
    a, b = faq.knowledge.passages[2], faq.knowledge.passages[3]
    result = SearchResult("借呗", ("借呗",), (Hit(a, 1.0, 0.5), Hit(b, 0.9, 0.5)), None, clarify=True)
    shown = view(compose(result, faq.messages))
    assert shown.kind is Outcome.CLARIFY and [c.id for c in shown.choices] == [a.id, b.id]
    assert [c.label for c in shown.choices] == [a.heading, b.heading] and not shown.related


def test_two_choices_of_one_heading_are_told_apart_by_their_parents(faq):
    twins = [p for p in faq.knowledge.passages if p.heading == "建立多元化的融资渠道"]
    result = SearchResult("融资渠道", ("融资",), tuple(Hit(p, 1.0, 0.5) for p in twins), None, clarify=True)
    labels = [c.label for c in view(compose(result, faq.messages)).choices]
    assert len(twins) == 2 and len(set(labels)) == 2 and all(label.endswith("建立多元化的融资渠道") for label in labels)


def test_a_chosen_passage_is_answered_first_with_related_questions_of_its_own(faq):
    chosen = next(p for p in faq.knowledge.passages if p.heading == "系统兼容性问题")
    answer = compose_chosen(chosen, faq.search(chosen.question, k=8), faq.messages)
    shown = view(answer)
    assert shown.passage == chosen.id and shown.full == chosen.answer and not answer.clarify
    assert shown.related and chosen.id not in {c.id for c in shown.related}


def test_a_refusal_says_why_in_plain_words_with_the_topics_hint_and_examples(faq):
    for question in ["今天天气怎么样", "https://example.com/a?b=1", "花呗的免息期有多长"]:
        shown = view(faq.ask(question))
        assert shown.kind is Outcome.REFUSE and shown.reason and "笼统" not in shown.reason + shown.hint, question
        assert shown.examples == faq.messages.examples
    huabei = view(faq.ask("花呗的免息期有多长"))
    assert "花呗" in huabei.reason and "花呗" in huabei.hint and huabei.reason not in huabei.hint


def test_the_json_contract_keeps_its_keys(faq):
    for question in ["借呗升级失败怎么办", "今天天气怎么样"]:
        data = to_json(faq.ask(question))
        assert set(data) == CONTRACT_KEYS
        assert all(set(r) == {"id", "question", "answer", "source", "score"} for r in data["results"])
        assert (data["refusal"] is None) == data["answered"] and all(isinstance(n, str) for n in data["notes"])
