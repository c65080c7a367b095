"""The SVG chart is returned as `Markup` (bandit B704): every text in it is escaped."""

from __future__ import annotations

from xml.etree import ElementTree

from gateway.figures.charts import Bar, bar_chart

HOSTILE = "\"'><script>alert(1)</script><svg onload=alert(2)>&amp;"


def test_hostile_id_title_and_labels_stay_text() -> None:
    svg = str(
        bar_chart(
            HOSTILE,
            HOSTILE,
            [Bar(HOSTILE, 5), Bar(HOSTILE, None), Bar(HOSTILE, 3, hidden=True)],
            threshold=10,
        )
    )
    assert "<script" not in svg
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own output: one well-formed SVG
    texts = [el.text for el in root.iter() if el.tag.endswith(("title", "text"))]
    assert texts.count(HOSTILE) == 4  # the title and three labels, as the very text given
    assert root.get("aria-labelledby") == f"{HOSTILE}-title"
    assert not [el for el in root.iter() if el.tag.endswith(("script", "}svg")) and el is not root]
    assert not [name for el in root.iter() for name in el.attrib if name.startswith("on")]
