"""hybrid.ingest.title_terms: a term the title names and the text says again is one
candidate, whole, even where jieba cuts it into words that are no candidates alone."""

from __future__ import annotations

from hybrid.ingest.segment import Segmenter


def test_a_term_the_title_names_and_the_text_says_again_is_a_candidate():
    """jieba cuts 渤中凹陷 into 渤中/ns + 凹陷/v and 空间后方交会 into 空间 + 后方/f + 交会:
    said in the title and once more, the whole term is the candidate."""
    seg = Segmenter()
    found = seg.candidates("渤中凹陷的油气成藏条件\n渤中凹陷位于渤海海域，是重要的生油凹陷。")
    assert "渤中凹陷" in found.tokens and "渤中凹陷" in found.phrases
    found = seg.candidates("空间后方交会的初值求解\n本文给出空间后方交会初值的一种求解方法。")
    assert found.tokens.count("空间后方交会") == 2
    assert not {"空间", "交会"} & set(found.tokens)  # pieces of it


def test_latin_and_chinese_joined_by_a_slash_make_one_term():
    found = Segmenter().candidates(
        "SiCp/Al复合材料的制备工艺\n采用无压渗透法制备了SiCp/Al复合材料，并测试其强度。")
    assert "SiCp/Al复合材料" in found.tokens
    assert not {"SiCp", "Al复合材料"} & set(found.tokens)


def test_a_linking_word_ends_a_title_term():
    """苦豆子和狼牙刺 is two terms, not one."""
    found = set(Segmenter().candidates("苦豆子和狼牙刺的比较\n苦豆子和狼牙刺都是耐旱植物。").tokens)
    assert "狼牙刺" in found and not any("和" in c for c in found)


def test_a_run_the_text_says_only_inside_a_longer_word_is_no_term():
    """The title's 园路|铺|装 and the text's 园路铺设 share 园路铺, which is no word."""
    found = set(Segmenter().candidates("园路铺装的设计原则\n园路铺设应当考虑行人的舒适。").tokens)
    assert not {"园路铺", "园路铺装"} & found


def test_a_title_term_the_text_never_says_again_is_no_candidate():
    found = set(Segmenter().candidates("渤中凹陷的油气成藏条件\n该地区位于渤海海域。").tokens)
    assert "渤中凹陷" not in found


class _CountingJieba:
    """A segmenter's dictionary that records what it is asked to tag."""

    def __init__(self, jieba):
        self.jieba, self.tagged = jieba, []

    def tag(self, text):
        self.tagged.append(text)
        return self.jieba.tag(text)

    def __getattr__(self, name):
        return getattr(self.jieba, name)


def test_the_title_is_tagged_once_with_the_whole_text():
    """Its words are the text's first words: tagging the title again was a second pass over
    every title, and found the same terms."""
    seg = Segmenter()
    seg._jieba = _CountingJieba(seg.jieba)
    found = seg.candidates("渤中凹陷的油气成藏条件\n渤中凹陷位于渤海海域，是重要的生油凹陷。")
    assert "渤中凹陷" in found.tokens
    assert "渤中凹陷的油气成藏条件" not in seg._jieba.tagged
