"""Renders/s of the seed's abandoned-cart email: sandboxed dialect vs plain airspeed.

Both render the same parsed-once template against the seed's cart event; plain
airspeed gets the loop variable written ``$item`` (it cannot parse ``$!item``)
and raw dicts, our engine the template as written and frozen data. Prints both
rates and the sandbox's cost; the target is at most 30%.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import airspeed  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.templating import build_context, compile_template

CART_EMAIL = """<html><body>
<h1>You left something in your cart</h1>
#set($items = $data.get('array'))
#if($items.size() > 1)
<p>$items.size() items are waiting for you</p>
#else
<p>One item is waiting for you</p>
#end
<table>
#foreach($!item in $!items)
  <tr class="#if($velocityCount % 2 == 0)even#{else}odd#end">
    <td><a href="$!item.get('url')"><img src="$!item.get('imageurl')" alt="$!item.get('name')"></a></td>
    <td>$!item.get('brand') $!item.get('name')</td>
    <td>$!item.get('price') UAH <s>$!item.get('tags_oldprice')</s></td>
    <td>$!item.get('tags_weight') g</td>
  </tr>
#end
</table>
</body></html>
"""

ITEM = {
    "url": "https://site.com/catalog/suhaya-detskaya-molochnaya-smes-hipp-combiotic-2-750-g",
    "imageurl": "https://site.com/uploads/product/big/20161122/20161122_7zvb.jpg",
}
CART_PARAMS: list[tuple[str, object]] = [
    ("email", "site@ukr.net"),
    (
        "items",
        {
            "array": [
                {
                    **ITEM,
                    "name": "Hair styler",
                    "price": "341",
                    "brand": "Le Petit Olivier",
                    "tags_weight": "200",
                    "tags_oldprice": "467",
                },
                {
                    **ITEM,
                    "name": "Magnolia Nobile Парфумована вода",
                    "price": "2341",
                    "brand": "Acqua Di Parma",
                    "tags_weight": "100",
                    "tags_oldprice": "4467",
                },
            ]
        },
    ),
]
SECONDS = 2.0


def rate(render: Callable[[], str]) -> float:
    """Renders per second over about SECONDS of wall time, after a warm-up."""
    for _ in range(200):
        render()
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < SECONDS:
        for _ in range(100):
            render()
        count += 100
    return count / elapsed


def main() -> None:
    """Measures both engines and prints the figures and their ratio."""
    ours = compile_template(CART_EMAIL)
    context = build_context(params=CART_PARAMS, json_param="items")
    plain = airspeed.Template(CART_EMAIL.replace("$!item in $!items", "$item in $items"))
    plain.ensure_compiled()
    raw_context = {"data": dict(CART_PARAMS)["items"]}

    sandboxed = rate(lambda: ours.render(context))
    stock = rate(lambda: plain.merge(raw_context))
    cost = 1 - sandboxed / stock
    print("abandoned-cart email, parsed template cached")
    print(f"  plain airspeed (no sandbox): {stock:10.0f} renders/s")
    print(f"  eventflow dialect + sandbox: {sandboxed:10.0f} renders/s")
    print(
        f"  ratio sandbox/plain: {sandboxed / stock:.2f} (sandbox cost {cost:.0%}, target <= 30%)"
    )


if __name__ == "__main__":
    main()
