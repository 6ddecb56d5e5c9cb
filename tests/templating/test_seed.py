"""The seed's own templates render exactly as Apache Velocity 1.7 renders them."""

from __future__ import annotations

import pytest

from server.templating import TemplateError, build_context, render

CART_EVENT = [
    ("email", "site@ukr.net"),
    (
        "items",
        {
            "array": [
                {
                    "name": "Hair styler",
                    "price": "341",
                    "url": "https://site.com/a",
                    "imageurl": "https://site.com/a.jpg",
                    "brand": "Le Petit Olivier",
                    "tags_weight": "200",
                    "tags_oldprice": "467",
                },
                {
                    "name": "Magnolia Nobile Парфумована вода",
                    "price": "2341",
                    "url": "https://site.com/b",
                    "imageurl": "https://site.com/b.jpg",
                    "brand": "Acqua Di Parma",
                    "tags_weight": "100",
                    "tags_oldprice": "4467",
                },
            ]
        },
    ),
]

LOOP = """#foreach($!item in $!data.get('array'))
$!item.get('name')
$!item.get('price')
$!item.get('url')
$!item.get('imageurl')
$!item.get('brand')
$!item.get('tags_weight')
$!item.get('tags_oldprice')
#end
"""


def test_seed_loop_renders_every_item() -> None:
    """The documented #foreach($!item in ...) loop prints each item's fields, one a line."""
    context = build_context(params=CART_EVENT, json_param="items")
    assert render(LOOP, context) == (
        "Hair styler\n341\nhttps://site.com/a\nhttps://site.com/a.jpg\nLe Petit Olivier\n200\n467\n"
        "Magnolia Nobile Парфумована вода\n2341\nhttps://site.com/b\nhttps://site.com/b.jpg\n"
        "Acqua Di Parma\n100\n4467\n"
    )


def test_seed_index_forms() -> None:
    """Elements are reachable by index, and a wrongly cased key inserts nothing."""
    context = build_context(params=CART_EVENT, json_param="items")
    template = (
        "$!data.get('array').get(0).get('name')|$!data.get('array').get(1).get('brand')"
        "|$!data.get('array').size()|$!data.get('array').get(0).get('ImageUrl')|"
    )
    assert render(template, context) == "Hair styler|Acqua Di Parma|2||"


def test_seed_password_letter() -> None:
    """The transactional letter inserts the password param."""
    context = build_context(
        params=[("EmailAddress", "site@ukr.net"), ("password", "12345678")], json_param=None
    )
    assert render("Password: $!data.get('password')", context) == "Password: 12345678"


def test_seed_missing_element_is_an_error() -> None:
    """Indexing past the array fails the message, with the reference's position."""
    context = build_context(params=CART_EVENT, json_param="items")
    with pytest.raises(TemplateError) as caught:
        render("Items:\n  $!data.get('array').get(5).get('name')", context)
    assert (caught.value.line, caught.value.column) == (2, 3)
    assert "Index 5 out of bounds for length 2" in caught.value.reason


def test_seed_quote_typo_is_a_syntax_error() -> None:
    """The seed's get(''tags_weight') typo is reported as a syntax error, as Velocity does."""
    with pytest.raises(TemplateError) as caught:
        render("$!data.get('array').get(0).get(''tags_weight')", {"data": {}})
    assert caught.value.line == 1
