"""Domain vocabularies of the subscription app: what clean values look like before dirt is added."""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Lena", "Jonas", "Amelie", "Lukas", "Chloe", "Hugo", "Sofia", "Mateo",
    "Yuki", "Haruto", "Aisha", "Omar", "Priya", "Arjun", "Ingrid", "Lars", "Zoe", "Noah",
    "Emma", "Liam", "Olivia", "Lucas", "Mia", "Leon", "Elena", "Pablo", "Ana", "Marco",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois",
    "Moreau", "Laurent", "Rossi", "Russo", "Ferrari", "Tanaka", "Suzuki", "Sato", "Khan",
    "Patel", "Singh", "Nielsen", "Hansen", "Berg", "Novak", "Silva", "Santos", "Costa",
)  # fmt: skip

FIRST_NAMES_LOWER = tuple(name.lower() for name in FIRST_NAMES)
LAST_NAMES_LOWER = tuple(name.lower() for name in LAST_NAMES)

EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com", "mail.test", "inbox.example", "post.example.org", "corp.example.net",
)  # fmt: skip

# Canonical categorical values are what `lower(trim(x))` yields (data contract, D1).
COUNTRIES: tuple[str, ...] = (
    "us", "ca", "gb", "de", "fr", "es", "it", "nl", "se", "jp", "in", "br", "au", "mx", "pl",
)  # fmt: skip

BANK_NAMES: tuple[str, ...] = (
    "chase", "bank of america", "wells fargo", "citibank", "hsbc", "barclays", "deutsche bank",
    "bnp paribas", "santander", "ing", "commerzbank", "mufg", "rbc", "td bank",
)  # fmt: skip

SWIFT_CODES: tuple[str, ...] = (
    "CHASUS33", "BOFAUS3N", "WFBIUS6S", "CITIUS33", "HSBCGB2L", "BARCGB22", "DEUTDEFF",
    "BNPAFRPP", "BSCHESMM", "INGBNL2A", "COBADEFF", "BOTKJPJT", "ROYCCAT2", "TDOMCATT",
)  # fmt: skip

CARD_TYPES: tuple[str, ...] = ("visa", "mastercard", "amex", "discover")
PAYMENT_METHODS: tuple[str, ...] = ("credit_card", "bank_transfer", "paypal")
BILLING_PERIODS: tuple[str, ...] = ("monthly", "annual")

SUBSCRIPTION_STATUSES: tuple[str, ...] = ("active", "idle", "blocked", "cancelled")
PAYMENT_STATUSES: tuple[str, ...] = ("succeeded", "failed", "refunded")
PAYMENT_CURRENCY = "usd"

# Orphan payments (D8) point into a range that subscription ids never reach, so they stay orphans.
ORPHAN_SUBSCRIPTION_BASE = 9_000_000_000_000_000
