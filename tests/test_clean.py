"""hybrid.ingest.clean: Markdown/HTML becomes plain text, code kept apart."""

from __future__ import annotations

from hybrid.ingest.article import parse_article
from hybrid.ingest.clean import (
    READ_CHARS,
    clean,
    head_lines,
    prefix,
    without_addresses,
    without_math,
)


def article(**fields):
    return parse_article({"id": "a1", "title": "标题", **fields})


def test_html_and_markdown_become_plain_text():
    text = clean(article(content=(
        "# 部署 nginx\n\n<script>alert('x')</script><style>p{}</style><nav>首页 菜单</nav>"
        "<p>配置 &amp; 优化 &lt;server&gt; 块</p>\n\n- 列表项 `inline`\n")))
    assert "alert" not in text.body and "p{}" not in text.body and "菜单" not in text.body
    assert "配置 & 优化 <server> 块" in text.body
    assert "部署 nginx" in text.body and "inline" in text.body


def test_full_width_forms_and_whitespace_are_normalised():
    text = clean(article(content="ＡＰＩ　网关，支持\t\tＨＴＴＰ２：\n\n\n好"))
    assert text.body == "API 网关,支持 HTTP2:\n好"


def test_trademark_signs_are_no_part_of_a_name():
    text = clean(article(title="Intel® Core™ i7", content="Intel® Core™ 处理器与 Wi-Fi℠"))
    assert text.title == "Intel Core i7"
    assert text.body == "Intel Core 处理器与 Wi-Fi"


def test_code_blocks_are_kept_apart_and_bounded():
    code = "\n".join(f"print({i})" for i in range(500))
    text = clean(article(content=f"一段很短的说明。\n\n```python\n{code}\n```\n"))
    assert "print(1)" in text.code and "print" not in text.body
    lexical = text.lexical_text()
    prose = "\n".join(p for p in (text.title, text.description, text.body) if p)
    assert lexical.startswith(prose) and len(lexical) - len(prose) <= 0.2 * len(prose) + 1


def test_embedding_input_puts_title_first_and_respects_budget():
    text = clean(article(description="摘要", content="正文" * 1000))
    snippet = text.embedding_input(50)
    assert snippet.startswith("标题 摘要") and len(snippet) <= 50


def test_broken_html_is_best_effort():
    text = clean(article(content="<div><p>未闭合 <b>加粗 <i>斜体</div></span> 结尾 <a href='x'"))
    assert "未闭合" in text.body and "结尾" in text.body


def test_markdown_that_crashes_the_fast_parser_still_renders():
    # markdown-it-pyrs panics (a BaseException) on this; a batch must not die of it
    text = clean(parse_article({"id": "m", "title": "t",
                                "content": "正文 [`]\n```\ncode\n```"}))
    assert "正文" in text.body


def test_a_bounded_slice_never_ends_in_a_piece_of_a_word():
    """The code slice of the lexical text and the tag candidates' prefix are cut at a word:
    a cut "curve" would leave "c" for the tagger to find."""
    code = "secp521r1 : NIST/SECG curve over a 521 bit prime field\n" * 40
    text = clean(article(content=f"{'椭圆曲线的参数。' * 40}\n\n```\n{code}```\n"))
    lexical = text.lexical_text()
    assert lexical.split()[-1] in code.split()
    assert prefix("abc curve", 5) == "abc " and prefix("abc curve", 9) == "abc curve"
    assert prefix("中文测试", 2) == "中文" and prefix("Elasticsearch", 7) == ""


def test_addresses_stay_for_the_classifier_and_go_from_tag_candidates():
    """A `blog.csdn.net` link says where a post was written (a category on some sites); as a
    tag candidate its `https`, host and path would pass for words."""
    text = clean(article(content="原文见 https://blog.csdn.net/u1/article/details/42 ，转载。"))
    assert "blog.csdn.net" in text.lexical_text()
    assert without_addresses(text.body).split() == ["原文见", ",转载。"]


def test_a_long_post_is_read_up_to_a_whole_line_so_its_cost_is_bounded():
    """Every stage after cleaning reads the body: a 100k-character post costs what a
    `READ_CHARS` one does, and the cut falls after a whole line, never inside a word."""
    paragraph = "第{}段讲负载均衡与 Kubernetes Ingress 的配置方法。\n\n"
    content = "".join(paragraph.format(i) for i in range(4000))
    assert len(content) > 5 * READ_CHARS
    text = clean(article(content=content))
    assert "第0段" in text.body and "第3999段" not in text.body
    assert len(text.body) <= READ_CHARS and text.body.endswith("的配置方法。")
    assert head_lines("短文", 10) == "短文"
    assert head_lines("a" * 20 + "\nbbb", 22) == "a" * 20
    assert head_lines("word " * 10, 12) == "word word "  # no line end: cut at a word


def test_formulas_go_from_tag_candidates_and_prices_stay():
    """`$\\mathrm{PHR}$` would give `mathrm` for a tag; "$5 或 $10" is prose."""
    text = clean(article(content="寄存器 $\\mathrm{PHR}$ 的位宽是 $n$，满足\n\n"
                                 "$$t_{AA} = 10\\mathrm{ns}$$\n\n价格 $5 或 $10。"))
    stripped = without_math(text.body)
    assert "mathrm" in text.body and "mathrm" not in stripped and "PHR" not in stripped
    assert "寄存器" in stripped and "$5 或 $10" in stripped
    assert without_math(r"设 \(x^2\) 与 \[y\] 及 \alpha 值").split() == ["设", "与", "及", "值"]


def test_markdown_left_raw_in_an_html_block_gives_its_text_not_its_target():
    """CommonMark leaves Markdown inside an HTML block as it is: the image paths of a post
    (`/img/articles/local-notifications-in-ios-8-with-swift-part-2/...`) became the tags
    `img` and `8-with-swift-part`."""
    text = clean(article(content=(
        '设置角标的值。\n<div style="max-width:300px;">\n'
        "![](/img/articles/notes-in-ios-8-with-swift-part-2/Shot-10.31.14-PM.png)"
        "![截图](/img/b.png)\n见[苹果文档](https://developer.apple.com/a b)\n</div>\n\n"
        "数组 `f[i](x)` 的调用\n<div align=center>\n"
        "[![Swift 标志](/assets/swift-logo.png)](/guide/getting-started-with-swift)\n</div>\n")))
    assert "img" not in text.body and "swift-part" not in text.body
    assert "截图" in text.body and "苹果文档" in text.body
    assert "f[i](x)" in text.body
    assert "Swift 标志" in text.body and "getting-started" not in text.body
