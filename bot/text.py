"""The one place where text becomes tokens, used identically for passages and questions.

Normalise (NFKC, lower case, Traditional → Simplified, typo map, Cantonese → Mandarin, English
glossary, number masks), cut with jieba and a domain dictionary, map colloquial words to the articles' words,
drop stop words. Every word list is a data file in ``bot/resources/``.
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable

import jieba
import opencc

RESOURCES = Path(__file__).parent / "resources"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]|\x1b\[[0-9;]*[a-zA-Z]")
_CONTRACTION = re.compile(r"n['’]t\b")
_ENGLISH_WORD = re.compile(r"[a-z]{3,}")
_INFLECTIONS = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"))
_REPEATS = re.compile(r"(\D)\1{2,}")
_URL = re.compile(r"https?://\S+|www\.\S+")
# Numbers: masked digits (***), digits, and a run of Chinese numerals that holds a unit (十百千万亿)
# or is followed by a measure word. A run is taken whole, once (possessive), and judged after:
# a pattern that looked for the unit inside the run would try every start of a long run of 一二….
_NUMBER = re.compile(r"\*{2,}|\d++(?:\.\d+)?|(?P<run>[零一二两三四五六七八九十百千万亿]++)")
_NUMERAL_UNIT = re.compile(r"[十百千万亿]")
_MEASURE_WORD = re.compile(r"个月|个|期|天|年|月|日|号|次|笔|元|块|岁|周|小时|分钟")
MAX_EXPANSION = 1000  # characters normalisation may add to a text (NFKC makes one U+FDFA eighteen)
# What the lexical stages read of a question, so that none costs more than a few ordinary ones
# (benchmarks/worst_case.py): real questions hold 12 characters at the median, 97 and 39 tokens at
# most (79,000 ATEC questions); the sentence encoder reads 200 too. bot.search reads a story's
# last sentence again.
MAX_QUESTION_CHARS = 200  # of a question, as typed and once normalised
MAX_QUESTION_TOKENS = 100  # of a question
_WORDLIKE = re.compile(r"[\w\u3400-\u9fff]", re.UNICODE)
SENTENCE_ENDS = "。！？!?；;"  # what ends a sentence, in Chinese and Western punctuation
_AFTER_SENTENCE = re.compile(f"(?<=[{SENTENCE_ENDS}\n])")
# "怎么" asks how (怎么提额) or, followed by a change or a negation, why (额度怎么没了, 怎么降了):
# the articles explain problems, so the two must not look alike once "怎么" is dropped as a stop word.
# At the end of a clause it asks how something is (普及程度如何, 信用咋样): neither.
_HOW = re.compile(r"(?:怎么样|怎么|如何|怎样|咋样|咋)(?!样|回事|一回事|办|弄|整|\s*(?:[，。？?！!,;；]|$))")
_WHY_AFTER = re.compile(r"[^，。？?！!,;；\s]{0,8}?(?:[了啦](?=$|[，。？?！!,;；\s呢啊呀吗])|不|没|无|只|会|突然|又|一直|总|老|这么|那么|还没|还不|还是|就|变|成|被)")
WHY = "原因"  # the token every why-question carries (synonyms.tsv maps 为什么, 为啥… to it)
HOW_TO = "怎么做"  # the token a how-to question carries

jieba.setLogLevel(logging.WARNING)


def _data_lines(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a UTF-8 word list."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _pairs(path: Path) -> dict[str, str]:
    pairs = {}
    for line in _data_lines(path):
        source, _, target = line.partition("\t")
        pairs[source.strip()] = target.strip()
    return pairs


@dataclass(frozen=True)
class Vocabulary:
    """The word lists a maintainer edits; loaded once from a resources folder."""

    userdict: Path
    stopwords: frozenset[str]
    synonyms: dict[str, tuple[str, ...]]
    typos: dict[str, str]
    cantonese: dict[str, str]
    glossary: dict[str, str]
    siblings: dict[str, str]

    @classmethod
    def load(cls, folder: Path = RESOURCES) -> "Vocabulary":
        synonyms = {k: tuple(v.split()) for k, v in _pairs(folder / "synonyms.tsv").items()}
        return cls(
            userdict=folder / "userdict.txt",
            stopwords=frozenset(_data_lines(folder / "stopwords.txt")),
            synonyms=synonyms,
            typos=_pairs(folder / "typos.tsv"),
            cantonese=_pairs(folder / "cantonese.tsv"),
            glossary=_pairs(folder / "glossary_en.tsv"),
            siblings=_pairs(folder / "siblings.tsv"),
        )

    @cached_property
    def products(self) -> frozenset[str]:
        """The product this knowledge is about (``siblings.tsv``'s second column): named alone,
        it says nothing of the problem."""
        return frozenset(self.siblings.values())

    @cached_property
    def rewrites(self) -> dict[str, str]:
        """What ``Tokenizer.spelling`` replaces in a text, typos and Cantonese alike."""
        return self.typos | self.cantonese


class Tokenizer:
    """Text → retrieval tokens. Holds its own jieba instance (no shared global state)."""

    def __init__(self, vocabulary: Vocabulary | None = None) -> None:
        self.vocabulary = vocabulary or Vocabulary.load()
        self._converter = opencc.OpenCC("t2s")

    @cached_property
    def _jieba(self) -> jieba.Tokenizer:
        segmenter = jieba.Tokenizer()
        segmenter.load_userdict(str(self.vocabulary.userdict))
        for word in [*self.vocabulary.synonyms, *self.vocabulary.typos.values(), *self.vocabulary.stopwords]:
            if not word.isascii():
                segmenter.add_word(word)
        return segmenter

    @cached_property
    def _rewrite_pattern(self) -> re.Pattern[str] | None:
        return _alternation(self.vocabulary.rewrites)

    @cached_property
    def _glossary_pattern(self) -> re.Pattern[str] | None:
        return _alternation(self.vocabulary.glossary, outside="[a-z]")  # whole English words only

    def spelling(self, text: str, limit: int | None = None) -> str:
        """The text as the knowledge spells it: NFKC, Simplified, known misspellings fixed (借贝 →
        借呗), written Cantonese in Mandarin words (點解 → 为什么). What the sentence encoder reads
        of a question: it knows Traditional characters and Cantonese less well, homophone typos
        not at all. Of the composed text, at most ``limit`` characters are
        read (``MAX_EXPANSION`` more than were given without one): composing can multiply a text."""
        text = text.encode("utf-8", errors="ignore").decode("utf-8")  # lone surrogates cannot be text
        text = unicodedata.normalize("NFKC", text)[:len(text) + MAX_EXPANSION if limit is None else limit]
        text = self._converter.convert(_CONTROL.sub(" ", text))
        if self._rewrite_pattern:
            text = self._rewrite_pattern.sub(lambda m: self.vocabulary.rewrites[m.group(0)], text)
        return text

    def normalise(self, text: str, limit: int | None = None) -> str:
        """Canonical surface form: the spelling's, lower case, English glossed, numbers masked."""
        text = _URL.sub(" ", self.spelling(text, limit).lower())
        if self._glossary_pattern:
            text = _CONTRACTION.sub(" not", text)
            text = _ENGLISH_WORD.sub(lambda m: self._base_form(m.group(0)), text)
            text = self._glossary_pattern.sub(lambda m: f" {self.vocabulary.glossary[m.group(0)]} ", text)
        text = _REPEATS.sub(r"\1", text)  # "啊啊啊啊", "？？？？" → one
        return _NUMBER.sub(_number_mask, text)  # masked (***) and real numbers alike: one neutral number

    def _base_form(self, word: str) -> str:
        """An inflected English word as the glossary lists it (limits → limit, failed → fail),
        when the glossary has that form and not the inflected one."""
        glossary = self.vocabulary.glossary
        if word in glossary:
            return word
        for suffix, replacement in _INFLECTIONS:
            if word.endswith(suffix) and (base := word[: -len(suffix)] + replacement) in glossary:
                return base
        return word

    def tokens(self, text: str) -> list[str]:
        """Retrieval tokens of any text, in order, repeats kept (BM25 counts them)."""
        return self._tokens_of(self.normalise(text))

    def question_tokens(self, text: str) -> list[str]:
        """A question's tokens, at bounded cost whatever it holds: its first ``MAX_QUESTION_CHARS``
        characters, normalised (which can lengthen them: glosses, number masks) and cut at as many
        again, and at most ``MAX_QUESTION_TOKENS`` of their tokens (the kind of question kept)."""
        normalised = self.normalise(text[:MAX_QUESTION_CHARS], MAX_QUESTION_CHARS)[:MAX_QUESTION_CHARS]
        return self._tokens_of(normalised, MAX_QUESTION_TOKENS)

    def _tokens_of(self, text: str, limit: int | None = None) -> list[str]:
        """The tokens of normalised ``text``, at most ``limit`` words' worth (and the kind of question)."""
        out: list[str] = []
        for word in self._jieba.cut(text, HMM=False):
            if limit is not None and len(out) >= limit:
                break
            word = word.strip()
            if not word or word.isdigit() or not _WORDLIKE.search(word) or (len(word) == 1 and word.isascii()):
                continue
            if word in self.vocabulary.stopwords:
                continue  # and none of its parts either ("能不能" must not yield "不能")
            out += self._canonical(word)
            out += self.parts(word)
        out = out if limit is None else out[:limit]
        return out + self._asked(text, out)

    @staticmethod
    def _asked(text: str, tokens: list[str]) -> list[str]:
        """The kind of question "怎么/如何" asks in normalised ``text``, as a token: why (when not
        already said) or how."""
        kinds = {bool(_WHY_AFTER.match(text, m.end())) for m in _HOW.finditer(text)}
        if True in kinds:
            return [] if WHY in tokens else [WHY]
        return [HOW_TO] if kinds else []

    def _canonical(self, word: str) -> list[str]:
        """The article's word(s) for a word, interned: a large index holds each string once."""
        return [sys.intern(t) for t in self.vocabulary.synonyms.get(word, (word,)) if t not in self.vocabulary.stopwords]

    def parts(self, word: str) -> list[str]:
        """The tokens a word adds beside itself: the dictionary words of two or three characters
        inside it, as jieba's search mode finds them ("升级失败" also counts as "升级" and
        "失败"); none for a word the synonyms map. Linear in the word's length."""
        if len(word) < 3 or word in self.vocabulary.synonyms:
            return []
        known = self._jieba.FREQ
        inside = [word[i:i + size] for size in (2, 3) if len(word) > size for i in range(len(word) - size + 1)]
        return [token for part in inside if known.get(part) for token in self._canonical(part)]


def has_words(text: str) -> bool:
    """Whether a text holds any word (letters, digits, Chinese characters), not only emoji,
    symbols or white space."""
    return bool(_WORDLIKE.search(text))


def sentence_groups(text: str, chars: int) -> list[str]:
    """A text cut after its sentences (and lines), neighbours joined while they fit in ``chars``
    characters: a short sentence is read with the next, a long one alone. Never empty."""
    if len(text) <= chars and "\n" not in text and text.strip() == text:
        return [text]  # all of it fits in one group: what the loop below returns, without its cost
    groups: list[str] = []
    for sentence in filter(str.strip, _AFTER_SENTENCE.split(text)):
        if groups and len(groups[-1]) + len(sentence) <= chars:
            groups[-1] += sentence
        else:
            groups.append(sentence)
    return groups or [text]


def question_text(text: str) -> str:
    """A question as the front ends hand it to the core: NFKC-composed once, here (a character
    such as U+FDFA becomes 18; composed text cannot grow again, so no later stage, the sentence
    encoder's own C normaliser included, meets the expansion), lone surrogates dropped."""
    return unicodedata.normalize("NFKC", text.encode("utf-8", errors="ignore").decode("utf-8"))


def _number_mask(match: re.Match[str]) -> str:
    """A number as one neutral token; a run of numerals only when it holds a unit or a measure
    word follows it (一二 alone is no number: 一一对应)."""
    run = match.group("run")
    if run is None or _NUMERAL_UNIT.search(run) or _MEASURE_WORD.match(match.string, match.end()):
        return " 0 "
    return run


def _alternation(words: Iterable[str], outside: str = "") -> re.Pattern[str] | None:
    """One pattern for many words, longest first (so 蚂蚁借吧 wins over 借吧); with ``outside``,
    a match may not touch that character class on either side."""
    keys = sorted((word for word in words if word), key=len, reverse=True)
    if not keys:
        return None
    body = "|".join(map(re.escape, keys))
    # The lookahead on the words' first characters rejects at once a position no word starts at;
    # without it the engine tries every word at every character (0.5 µs a character for 350 words).
    start = "(?=[" + "".join(map(re.escape, sorted({key[0] for key in keys}))) + "])"
    return re.compile(f"{start}(?<!{outside})(?:{body})(?!{outside})" if outside else f"{start}(?:{body})")
