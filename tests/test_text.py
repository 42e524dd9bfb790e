"""One tokeniser for passages and questions, robust to how people type."""

import random
import re

import pytest

from bot.text import HOW_TO, MAX_EXPANSION, MAX_QUESTION_CHARS, MAX_QUESTION_TOKENS, WHY, Tokenizer, _NUMBER, _number_mask, sentence_groups


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer()


@pytest.mark.parametrize("word", ["借呗", "花呗", "额度", "芝麻信用", "逾期", "账单", "分期", "授信", "风控"])
def test_domain_words_stay_whole(tokenizer, word):
    assert word in tokenizer.tokens(f"我的{word}出问题了")


def test_taiwan_words_reach_the_articles_words(tokenizer):
    assert {"账单", "生成"} <= set(tokenizer.tokens("借唄帳單沒有產生"))
    assert "渠道" in tokenizer.tokens("建立多元化的融資管道")


def test_traditional_gives_the_same_tokens_as_simplified(tokenizer):
    assert tokenizer.tokens("借唄升級失敗，額度顯示異常") == tokenizer.tokens("借呗升级失败，额度显示异常")


def test_full_width_and_case_are_normalised(tokenizer):
    assert tokenizer.tokens("ＡＰＰ里借呗") == tokenizer.tokens("app里借呗")


def test_typos_users_make_are_corrected(tokenizer):
    assert tokenizer.tokens("借吧额度没了") == tokenizer.tokens("借呗额度没了")
    assert "花呗" in tokenizer.tokens("花贝不能用")


@pytest.mark.parametrize("cantonese, mandarin", [
    ("點解我嘅借唄用唔到", "为什么我的借呗用不到"),
    ("借唄還咗錢仲未有額度", "借呗还了钱还没有额度"),
    ("借唄係咪系統維護緊，睇唔到賬單", "借呗是不是系统维护紧,看不到账单"),
    ("借唄額度幾時會恢復", "借呗额度什么时候会恢复"),
])
def test_written_cantonese_is_read_in_mandarin_words(tokenizer, cantonese, mandarin):
    """The sentence encoder knows Cantonese less well than Mandarin, and BM25 knows only the
    articles' words: both read the Mandarin."""
    assert tokenizer.spelling(cantonese) == mandarin
    assert tokenizer.tokens(cantonese) == tokenizer.tokens(mandarin)


@pytest.mark.parametrize("mandarin", ["借呗系统维护期间关系到账单吗 我们什么时候能查看", "晚上12点算逾期吗",
                                      "怎么现在变成日利率", "怎么能快点解封", "还款完成日期", "旁边个人都能借"])
def test_cantonese_rewrites_leave_mandarin_alone(tokenizer, mandarin):
    assert tokenizer.spelling(mandarin) == mandarin


def test_typos_and_cantonese_never_claim_the_same_text(tokenizer):
    assert not set(tokenizer.vocabulary.typos) & set(tokenizer.vocabulary.cantonese)


def test_english_question_finds_chinese_words(tokenizer):
    tokens = tokenizer.tokens("Jiebei upgrade failed, my credit limit is gone")
    assert {"借呗", "升级", "失败", "额度"} <= set(tokens)


@pytest.mark.parametrize("english, words", [
    ("I paid back everything but no quota", {"还款", "无", "额度"}),
    ("no bill was generated", {"无", "账单", "生成"}),
    ("the upgrade keeps failing", {"升级", "频繁", "失败"}),
    ("is the assessment delayed", {"评估", "滞后"}),
    ("how come my Jiebei is gone", {"原因", "借呗", "无"}),
    ("a change in the platform's rules", {"调整", "平台", "规则"}),
    ("plan a strategy in advance", {"策略", "提前"}),
    ("reduce our reliance on several lending apps", {"降低", "依赖", "多头", "借贷"}),
    ("the bookkeeping is a mess", {"财务", "混乱"}),
    ("risk control manually limits users", {"风险", "控制", "人为", "额度", "用户"}),
])
def test_everyday_english_reaches_the_articles_words(tokenizer, english, words):
    assert words <= set(tokenizer.tokens(english))


def test_masked_numbers_are_numbers_not_words(tokenizer):
    assert tokenizer.tokens("借呗***期还完了") == tokenizer.tokens("借呗12期还完了")
    assert not any("*" in token for token in tokenizer.tokens("借呗***期还完了"))


def test_colloquial_words_map_to_the_articles_words(tokenizer):
    assert "怎么办" not in tokenizer.tokens("咋整")  # a question word, not content
    assert "资金" in tokenizer.tokens("缺钱")
    assert "无法" in tokenizer.tokens("借呗用不了")
    assert {"故障", "降低"} <= set(tokenizer.tokens("借呗老出毛病 会拉低信用吗"))


@pytest.mark.parametrize("question, kind", [
    ("借呗额度怎么没了", WHY), ("我的借呗怎么关闭了", WHY), ("怎么突然不能借了", WHY),
    ("借呗怎么被关了", WHY), ("借呗怎么给关掉啦", WHY),
    ("借呗怎么提额", HOW_TO), ("如何开通借呗", HOW_TO), ("怎样关闭借呗", HOW_TO),
    ("借呗升级失败怎么办", None), ("我的信用到底咋样", None), ("借呗额度没了", None),
])
def test_how_and_why_questions_are_told_apart_though_both_say_zenme(tokenizer, question, kind):
    tokens = tokenizer.tokens(question)
    assert (WHY in tokens, HOW_TO in tokens) == (kind == WHY, kind == HOW_TO), tokens


def test_a_why_question_carries_one_why_token_however_it_is_asked(tokenizer):
    assert tokenizer.tokens("为什么借呗额度怎么没了").count(WHY) == 1


def test_a_stop_word_lends_none_of_its_parts(tokenizer):
    assert "无法" not in tokenizer.tokens("能不能看看借呗")


@pytest.mark.parametrize("text", ["", "   ", "？？！！", "🤔💸❓❓", "的了吗呢", "\x00\x1b[31m", "\ud800"])
def test_empty_or_meaningless_text_gives_no_tokens(tokenizer, text):
    assert tokenizer.tokens(text) == []


OLD_NUMBER = re.compile(  # the definition (and the old pattern, quadratic on a long run of 一二…)
    r"\*{2,}|\d+(?:\.\d+)?"
    r"|[零一二两三四五六七八九十百千万亿]*[十百千万亿][零一二两三四五六七八九十百千万亿]*"
    r"|[零一二两三四五六七八九十]+(?=个月|个|期|天|年|月|日|号|次|笔|元|块|岁|周|小时|分钟)"
)


def test_numbers_are_masked_as_they_always_were():
    rng = random.Random(12)
    alphabet = "零一二两三四五六七八九十百千万亿个月期天年日号次笔元块岁周小时分钟*19.借呗 "
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _NUMBER.sub(_number_mask, text) == OLD_NUMBER.sub(" 0 ", text), text


def test_a_long_run_of_numerals_is_read_in_one_pass(tokenizer):
    # 100,000 numerals: one pass takes milliseconds; the old pattern tried every start (minutes)
    assert tokenizer.normalise("一二" * 50_000 + "个月") == " 0 个月"
    assert tokenizer.normalise("借呗" + "一二" * 50_000) == "借呗" + "一二" * 50_000


def test_normalisation_never_grows_a_text_by_more_than_a_thousand_characters(tokenizer):
    assert len(tokenizer.normalise("\ufdfa")) == 18  # NFKC: one character, eighteen
    assert len(tokenizer.normalise("\ufdfa" * 1000)) <= 1000 + MAX_EXPANSION
    assert len(tokenizer.normalise("\ufdfa" * 1000, 50)) <= 50  # a reader that wants 50 composes 50


def test_a_question_is_cut_with_jieba_in_its_first_characters_only_whatever_it_holds(tokenizer, monkeypatch):
    """The cost of a question's tokens is bounded before the segmenter: however normalising
    multiplies or collapses a shape, jieba meets at most ``MAX_QUESTION_CHARS`` characters."""
    seen = []
    cut = tokenizer._jieba.cut
    monkeypatch.setattr(tokenizer._jieba, "cut", lambda text, **options: seen.append(text) or cut(text, **options))
    distinct = "".join(chr(0x4E00 + 37 * n % 20_000) for n in range(5_000))
    for question in ("\ufdfa" * 5_000, "一二" * 5_000, "借呗额度" * 5_000, "a" * 100_000, distinct, "怎么" * 5_000,
                     " ".join(f"word{n}" for n in range(5_000)), "借呗" + "啊" * 100_000):
        seen.clear()
        tokens = tokenizer.question_tokens(question)
        assert len(seen) == 1 and len(seen[0]) <= MAX_QUESTION_CHARS, (question[:10], len(seen[0]))
        assert len(tokens) <= MAX_QUESTION_TOKENS + 1
    assert "花呗" not in tokenizer.question_tokens("借呗额度" * MAX_QUESTION_CHARS + "花呗")  # beyond: not read


def test_a_question_has_a_bounded_number_of_tokens_whatever_it_holds(tokenizer):
    for question in ("\ufdfa" * 1000, "借呗额度" * 5000, " ".join(f"w{n}" for n in range(5000)), "借呗" * 20_000):
        assert len(tokenizer.question_tokens(question)) <= MAX_QUESTION_TOKENS + 1
    asked = "借呗升级失败怎么办"
    assert tokenizer.question_tokens(asked) == tokenizer.tokens(asked)
    assert tokenizer.question_tokens("借呗额度怎么没了" + "啊" * 5000)[-1] == WHY


def test_an_answer_is_cut_after_its_sentences_short_neighbours_joined():
    text = "短句一。短句二！这是一个比较长的句子，它自己就超过了上限的长度。\n第二行没有句号\n"
    assert sentence_groups(text, 12) == ["短句一。短句二！", "这是一个比较长的句子，它自己就超过了上限的长度。", "第二行没有句号\n"]
    assert sentence_groups("没有标点的一段话", 12) == ["没有标点的一段话"] and sentence_groups("", 12) == [""]
