"""The request bodies of the seed document (eSputnik's Generate event v2 guide)."""

from __future__ import annotations

from typing import Any

ABANDONED_CART: dict[str, Any] = {
    "eventTypeKey": "abandoned_cart",
    "keyValue": "site@com.net",
    "params": [
        {"name": "email", "value": "site@ukr.net"},
        {"name": "items", "value": {"array": [
            {"name": "Hair styler", "price": "341",
             "url": "https://site.com/catalog/suhaya-detskaya-molochnaya-smes-hipp-combiotic-2-750-g",
             "imageurl": "https://site.com/uploads/product/big/20161122/20161122_7zvb.jpg",
             "brand": "Le Petit Olivier", "tags_weight": "200", "tags_oldprice": "467"},
            {"name": "Magnolia Nobile Парфумована вода", "price": "2341",
             "url": "https://site.com/catalog/suhaya-detskaya-molochnaya-smes-hipp-combiotic-2-750-g",
             "imageurl": "https://site.com/uploads/product/big/20161122/20161122_7zvb.jpg",
             "brand": "Acqua Di Parma", "tags_weight": "100", "tags_oldprice": "4467"},
        ]}},
    ],
}

CREATE_CONTACT: dict[str, Any] = {
    "eventTypeKey": "create_contact",
    "keyValue": "site@com.net",
    "params": [
        {"name": "email", "value": "site@ukr.net"},
        {"name": "phone", "value": "380501234567"},
        {"name": "externalCustomerId", "value": "AV13760"},
        {"name": "json", "value": {"profileInputs": [{"profileInputId": 10001, "value": "2020-11-23"}]}},
    ],
}

PASSWORD_RECOVERY: dict[str, Any] = {
    "eventTypeKey": "password_recovery",
    "keyValue": "site@com.net",
    "params": [
        {"name": "EmailAddress", "value": "site@ukr.net"},
        {"name": "password", "value": "12345678"},
    ],
}

CONTACT_JSON: dict[str, Any] = {
    "eventTypeKey": "contact_validation",
    "keyValue": "site@com.net",
    "params": [
        {"name": "contactJson", "value": {
            "firstname": "Olena", "lastname": "Shevchenko", "sms": "+380501234567",
            "town": "Kyiv", "timeZone": "Etc/GMT+03", "languageCode": "uk",
            "profileInputs": [{"profileInputId": 10001, "value": "2020-11-23"}],
            "confirmed": False}},
    ],
}

SEED_BODIES = {"abandoned_cart": ABANDONED_CART, "create_contact": CREATE_CONTACT,
               "password_recovery": PASSWORD_RECOVERY}
