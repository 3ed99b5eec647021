"""Fixtures for the guards tests: a CRM name index shaped like the Maven data (no database: the
guards get names and facts from their caller)."""

from __future__ import annotations

import pytest

from guards.names import NameIndex

NAMES = [
    "Acme Corporation",
    "Betatech",
    "Cancity",
    "Codehow",
    "Globex Corporation",
    "Gekko & Co",
    "Hottechi",
    "Isdom",
    "Konex",
    "Rantouch",
    "Xx-holding",
    "Zoomit",
    "Zumgoity",
    "The New York Inquirer",
    "Darcel Schlecht",
    "Moses Frase",
    "Kary Hendrixson",
    "Kami Bicknell",
    "Summer Sewald",
    "Dustin Brinkmann",
    "Melvin Marxen",
    "Lena Ortiz",
    "Dana Whitfield",
    "GTX Basic",
    "GTX Pro",
    "GTX Plus Basic",
    "GTX Plus Pro",
    "MG Special",
    "MG Advanced",
    "GTK 500",
    "1C1I7A6R",
    "Z063OYW0",
    "EC4QE1BX",
    "Central",
    "East",
    "West",
    "technology",
    "medical",
    "retail",
    "United States",
    "Kenya",
    "Prospecting",
    "Engaging",
    "Negotiation",
    "Won",
    "Lost",
]


@pytest.fixture(scope="session")
def index() -> NameIndex:
    return NameIndex.from_names(NAMES)
