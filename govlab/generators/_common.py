"""Shared vocabulary and vectorised column builders for the synthetic datasets.

Everything here works on whole arrays: a builder draws integer codes from the chunk's
generator with numpy, then turns them into strings either by ``take`` from a
precomputed Arrow vocabulary, by Arrow's element-wise string kernels, or (for fixed
width codes such as SSNs and card numbers) by writing ASCII bytes straight into an
Arrow string buffer. No builder loops over rows in Python.

All randomness comes from the generator passed in, so a chunk is a pure function of
(rng state, start, n); builders draw in a fixed order, which keeps datasets deterministic.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .base import CHUNK_ROWS, REGIONS, ChunkBuilder

# --------------------------------------------------------------------------- vocabulary

FIRST_NAMES = np.array(
    [
        "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
        "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
        "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy",
        "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley",
        "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle",
        "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Dorothy", "George", "Melissa",
        "Timothy", "Deborah", "Ronald", "Stephanie", "Edward", "Rebecca", "Jason", "Sharon",
        "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen", "Gary", "Amy",
        "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Anna", "Stephen", "Brenda",
        "Larry", "Pamela", "Justin", "Emma", "Scott", "Nicole", "Brandon", "Helen",
        "Benjamin", "Samantha", "Samuel", "Katherine", "Gregory", "Christine", "Alexander",
        "Debra", "Patrick", "Rachel", "Frank", "Carolyn", "Raymond", "Janet", "Jack",
        "Maria", "Dennis", "Olivia", "Jerry", "Heather", "Tyler", "Sofia", "Aaron", "Wei",
        "Priya", "Carlos", "Aisha", "Hiroshi", "Fatima", "Diego",
    ]
)  # fmt: skip

LAST_NAMES = np.array(
    [
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
        "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
        "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson",
        "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker",
        "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
        "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
        "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker",
        "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy",
        "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey",
        "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson",
        "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes",
        "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross",
        "Foster", "Jimenez", "O'Brien", "Chen", "Singh", "Tanaka", "Okafor", "Kowalski",
    ]
)  # fmt: skip

STREETS = np.array(
    [
        "Oak St", "Maple Ave", "Cedar Ln", "Elm St", "Pine Rd", "Main St", "Park Ave",
        "Washington Blvd", "Lake Dr", "Hill Rd", "Church St", "Sunset Blvd", "River Rd",
        "Highland Ave", "Chestnut St", "Walnut St", "Spruce Ct", "Willow Way", "Birch Ln",
        "Jefferson St", "Lincoln Ave", "Madison Ave", "Franklin St", "Broadway",
        "Meadow Ln", "Forest Dr", "Valley Rd", "Ridge Rd", "Spring St", "Mill St",
        "Center St", "Union St", "Market St", "Water St", "School St", "Prospect Ave",
        "Cherry Ln", "Dogwood Dr", "Magnolia Ave", "Poplar St", "Sycamore Rd",
        "Hickory Ln", "Aspen Ct", "Juniper Way", "Laurel St", "Harbor View Dr",
        "College Ave", "Railroad Ave", "Grove St", "Front St",
    ]
)  # fmt: skip

# (city, state, base zip). States are grouped into REGIONS below; every region has cities.
_CITY_ROWS: tuple[tuple[str, str, int], ...] = (
    # NE
    ("Boston", "MA", 2108), ("Worcester", "MA", 1608), ("Providence", "RI", 2903),
    ("Hartford", "CT", 6103), ("New Haven", "CT", 6510), ("New York", "NY", 10001),
    ("Buffalo", "NY", 14202), ("Albany", "NY", 12207), ("Newark", "NJ", 7102),
    ("Philadelphia", "PA", 19103), ("Pittsburgh", "PA", 15222), ("Burlington", "VT", 5401),
    ("Bangor", "ME", 4401),
    # SE
    ("Atlanta", "GA", 30303), ("Savannah", "GA", 31401), ("Miami", "FL", 33130),
    ("Orlando", "FL", 32801), ("Tampa", "FL", 33602), ("Charlotte", "NC", 28202),
    ("Raleigh", "NC", 27601), ("Nashville", "TN", 37203), ("Memphis", "TN", 38103),
    ("Birmingham", "AL", 35203), ("Richmond", "VA", 23219), ("Louisville", "KY", 40202),
    ("New Orleans", "LA", 70112), ("Charleston", "SC", 29401),
    # MW
    ("Chicago", "IL", 60601), ("Springfield", "IL", 62704), ("Detroit", "MI", 48226),
    ("Columbus", "OH", 43215), ("Cleveland", "OH", 44113), ("Indianapolis", "IN", 46204),
    ("Milwaukee", "WI", 53202), ("Madison", "WI", 53703), ("Minneapolis", "MN", 55401),
    ("Des Moines", "IA", 50309), ("Kansas City", "MO", 64106), ("St. Louis", "MO", 63101),
    ("Omaha", "NE", 68102),
    # SW
    ("Houston", "TX", 77002), ("Dallas", "TX", 75201), ("Austin", "TX", 78701),
    ("San Antonio", "TX", 78205), ("El Paso", "TX", 79901), ("Fort Worth", "TX", 76102),
    ("Oklahoma City", "OK", 73102), ("Tulsa", "OK", 74103), ("Albuquerque", "NM", 87102),
    ("Santa Fe", "NM", 87501), ("Phoenix", "AZ", 85004), ("Tucson", "AZ", 85701),
    ("Mesa", "AZ", 85201),
    # W
    ("Los Angeles", "CA", 90012), ("San Francisco", "CA", 94103), ("San Diego", "CA", 92101),
    ("Sacramento", "CA", 95814), ("Seattle", "WA", 98101), ("Spokane", "WA", 99201),
    ("Portland", "OR", 97204), ("Eugene", "OR", 97401), ("Denver", "CO", 80202),
    ("Boulder", "CO", 80302), ("Salt Lake City", "UT", 84101), ("Las Vegas", "NV", 89101),
    ("Boise", "ID", 83702),
)  # fmt: skip

STATE_REGION: dict[str, str] = {
    **dict.fromkeys(("ME", "NH", "VT", "MA", "RI", "CT", "NY", "NJ", "PA"), "NE"),
    **dict.fromkeys(
        ("DE", "MD", "VA", "WV", "NC", "SC", "GA", "FL", "KY", "TN", "AL", "MS", "AR", "LA"),
        "SE",
    ),
    **dict.fromkeys(("OH", "IN", "IL", "MI", "WI", "MN", "IA", "MO", "ND", "SD", "NE", "KS"), "MW"),
    **dict.fromkeys(("TX", "OK", "NM", "AZ"), "SW"),
    **dict.fromkeys(("CO", "WY", "MT", "ID", "UT", "NV", "CA", "OR", "WA", "AK", "HI"), "W"),
}

CITIES = np.array([c for c, _, _ in _CITY_ROWS])
CITY_STATES = np.array([s for _, s, _ in _CITY_ROWS])
CITY_ZIPS = np.array([z for _, _, z in _CITY_ROWS], dtype=np.int64)
CITY_REGION = np.array([REGIONS.index(STATE_REGION[s]) for s in CITY_STATES], dtype=np.int64)

EMAIL_DOMAINS = np.array(
    ["example.com", "example.org", "example.net", "mail.example", "inbox.test", "post.test"]
)

CONDITIONS = np.array(
    [
        "hypertension", "diabetes", "asthma", "copd", "arthritis", "migraine",
        "depression", "anxiety", "influenza", "pneumonia", "heart failure",
        "chronic kidney disease",
    ]
)  # fmt: skip
CONDITION_WEIGHTS = np.array([18, 14, 12, 6, 10, 7, 8, 8, 7, 4, 3, 3], dtype=np.float64)

# Clinical notes are "<visit>: <finding>". Neither part names a condition: the notes
# are masked for roles that see `condition`, so a note that embedded the row's condition
# would hand those roles part of the masked value (see emails() for the same rule).
NOTE_VISITS = np.array(
    [
        "follow-up visit",
        "initial consultation",
        "medication review",
        "routine check-up",
        "referred to specialist",
        "lab results reviewed",
        "care plan updated",
        "discharge summary",
    ]
)
NOTE_FINDINGS = np.array(
    [
        "blood pressure 128/82",
        "no known drug allergies",
        "allergic to penicillin",
        "non-smoker",
        "former smoker",
        "BMI 31, diet advice given",
        "reports poor sleep",
        "vaccinations up to date",
        "lives alone, daughter visits weekly",
        "advised to increase exercise",
        "weight stable since last visit",
        "fasting labs ordered",
    ]
)

INSURERS = np.array(["BCB", "AET", "UHC", "CIG", "HUM", "KPS", "MCR", "MCD"])

# (product, category, list price)
_PRODUCT_ROWS: tuple[tuple[str, str, float], ...] = (
    ("Wireless Earbuds", "Electronics", 59.99), ("Bluetooth Speaker", "Electronics", 39.99),
    ("USB-C Charger", "Electronics", 19.99), ("Smartwatch", "Electronics", 199.00),
    ("Mechanical Keyboard", "Electronics", 89.99), ("4K Monitor", "Electronics", 329.00),
    ("Webcam", "Electronics", 49.99), ("Laptop Stand", "Electronics", 34.50),
    ("Coffee Maker", "Home & Kitchen", 79.00), ("Chef Knife", "Home & Kitchen", 45.00),
    ("Non-Stick Pan", "Home & Kitchen", 29.99), ("Blender", "Home & Kitchen", 64.99),
    ("Air Fryer", "Home & Kitchen", 99.00), ("Bath Towel Set", "Home & Kitchen", 32.00),
    ("Mystery Novel", "Books", 14.99), ("Cookbook", "Books", 24.99),
    ("Science Fiction Novel", "Books", 16.99), ("Picture Book", "Books", 9.99),
    ("Travel Guide", "Books", 19.50), ("Running Shoes", "Clothing", 119.00),
    ("Denim Jacket", "Clothing", 74.00), ("Cotton T-Shirt", "Clothing", 15.00),
    ("Wool Sweater", "Clothing", 68.00), ("Rain Jacket", "Clothing", 89.00),
    ("Yoga Mat", "Sports & Outdoors", 25.00), ("Camping Tent", "Sports & Outdoors", 149.00),
    ("Water Bottle", "Sports & Outdoors", 18.00), ("Dumbbell Set", "Sports & Outdoors", 59.00),
    ("Bicycle Helmet", "Sports & Outdoors", 44.99), ("Face Moisturizer", "Beauty", 22.00),
    ("Shampoo", "Beauty", 8.99), ("Sunscreen SPF 50", "Beauty", 12.49),
    ("Building Blocks Set", "Toys", 49.99), ("Board Game", "Toys", 29.99),
    ("Jigsaw Puzzle", "Toys", 17.99), ("Organic Coffee Beans", "Grocery", 13.99),
    ("Green Tea", "Grocery", 6.49), ("Dark Chocolate Bar", "Grocery", 3.99),
)  # fmt: skip

PRODUCTS = np.array([p for p, _, _ in _PRODUCT_ROWS])
PRODUCT_CATEGORIES = np.array([c for _, c, _ in _PRODUCT_ROWS])
PRODUCT_PRICES = np.array([p for _, _, p in _PRODUCT_ROWS], dtype=np.float64)

BRANCH_SUFFIXES = np.array(["Main", "Downtown", "North", "Central"])

# ------------------------------------------------------- precomputed Arrow vocabularies

_FIRST_LAST = np.char.add(
    np.char.add(np.repeat(FIRST_NAMES, LAST_NAMES.size), " "), np.tile(LAST_NAMES, FIRST_NAMES.size)
)
_LOCAL_PARTS = np.char.replace(
    np.char.lower(
        np.char.add(
            np.char.add(np.repeat(FIRST_NAMES, LAST_NAMES.size), "."),
            np.tile(LAST_NAMES, FIRST_NAMES.size),
        )
    ),
    "'",
    "",
)
# " <street>, <city>, <ST> " for every (street, city) pair; the house number goes
# before it and the zip code after it.
_ADDRESS_MIDDLES = np.char.add(
    np.char.add(" ", np.repeat(STREETS, CITIES.size)),
    np.char.add(
        np.char.add(", ", np.tile(CITIES, STREETS.size)),
        np.char.add(np.char.add(", ", np.tile(CITY_STATES, STREETS.size)), " "),
    ),
)

FULL_NAMES_PA = pa.array(_FIRST_LAST, type=pa.string())
EMAIL_LOCALS_PA = pa.array(_LOCAL_PARTS, type=pa.string())
ADDRESS_MIDDLES_PA = pa.array(_ADDRESS_MIDDLES, type=pa.string())
EMAIL_DOMAINS_PA = pa.array(np.char.add("@", EMAIL_DOMAINS), type=pa.string())
REGIONS_PA = pa.array(REGIONS, type=pa.string())
CONDITIONS_PA = pa.array(CONDITIONS, type=pa.string())
PRODUCTS_PA = pa.array(PRODUCTS, type=pa.string())
PRODUCT_CATEGORIES_PA = pa.array(PRODUCT_CATEGORIES, type=pa.string())

_EPOCH = np.datetime64("1970-01-01", "D")


def vocab(values: np.ndarray | list[str] | tuple[str, ...]) -> pa.StringArray:
    """A numpy/sequence vocabulary as an Arrow string array, ready for ``take``."""
    return pa.array(np.asarray(values), type=pa.string())


def take(vocabulary: pa.Array, codes: np.ndarray) -> pa.Array:
    """Vocabulary entries for integer codes (the fast path for any categorical column)."""
    return vocabulary.take(pa.array(codes, type=pa.int64()))


def full_chunks(build: ChunkBuilder) -> ChunkBuilder:
    """Make a short chunk the prefix of the full-size chunk it would be part of.

    Column values depend on how many rows a builder draws at once, so without this the
    1,000-row "tiny" table would share nothing with the first rows of "small". Building
    a whole CHUNK_ROWS chunk and slicing it keeps every size a prefix of the larger ones
    (row k is the same record at any size), for at most one extra chunk of work.
    """

    @functools.wraps(build)
    def wrapper(rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
        if 0 < n < CHUNK_ROWS:
            return build(rng, start, CHUNK_ROWS).slice(0, n)
        return build(rng, start, n)

    return wrapper


def salted(rng: np.random.Generator, dataset: str) -> np.random.Generator:
    """A generator derived from ``rng`` and the dataset name.

    Without it every dataset would draw the same first values from the same seed (row 1
    of each table would be the same person); the salt decorrelates them deterministically.
    """
    salt = int.from_bytes(dataset.encode("utf-8")[:16].ljust(16, b"\0"), "little")
    return np.random.default_rng([int(rng.integers(0, 2**63 - 1)), salt])


def weighted_codes(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n codes in [0, len(weights)) drawn with the given relative weights."""
    cdf = np.cumsum(weights, dtype=np.float64)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1)


# ------------------------------------------------------------- string assembly helpers


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and/or literal strings."""
    return pc.binary_join_element_wise(*parts, "")


def int_strings(values: np.ndarray, width: int = 0) -> pa.Array:
    """Decimal strings of non-negative integers, left-padded with zeros to ``width``."""
    out = pc.cast(pa.array(values, type=pa.int64()), pa.string())
    return pc.utf8_lpad(out, width, "0") if width else out


_DIGITS4 = np.array([[ord(ch) for ch in f"{i:04d}"] for i in range(10_000)], dtype=np.uint8).view(
    np.uint32
)[:, 0]  # the 4 ASCII digits of 0000..9999, packed in one uint32 each


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of non-negative integers as an (n, width) uint8 matrix, zero-padded.

    Works four digits at a time through a lookup table (integer division is the slow
    part); values wider than ``width`` keep only their lowest ``width`` digits.
    """
    values = np.asarray(values, dtype=np.int64)
    groups = -(-width // 4)
    packed = np.empty((values.shape[0], groups), dtype=np.uint32)
    for g in range(groups):  # a handful of column groups, never rows
        chunk = values if g == 0 else values // 10 ** (4 * g)
        packed[:, groups - 1 - g] = _DIGITS4[chunk % 10_000]
    return packed.view(np.uint8)[:, groups * 4 - width :]


def fixed_width_strings(matrix: np.ndarray) -> pa.StringArray:
    """One ASCII string per row of an (n, width) uint8 matrix, built without copying rows."""
    matrix = np.ascontiguousarray(matrix, dtype=np.uint8)
    n, width = matrix.shape
    if n * width >= 2**31:
        raise ValueError("fixed_width_strings: chunk too large for 32-bit offsets")
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(matrix))


def with_nulls(rng: np.random.Generator, array: pa.Array, fraction: float) -> pa.Array:
    """The array with about ``fraction`` of its entries replaced by NULL."""
    mask = rng.random(len(array)) < fraction
    if not mask.any():
        return array
    return pc.if_else(pa.array(mask), pa.scalar(None, type=array.type), array)


# ------------------------------------------------------------------- column builders


def names(rng: np.random.Generator, n: int) -> tuple[pa.Array, np.ndarray]:
    """("First Last" strings, name codes)."""
    codes = rng.integers(0, len(FULL_NAMES_PA), n)
    return take(FULL_NAMES_PA, codes), codes


def emails(rng: np.random.Generator, n: int) -> pa.Array:
    """ "first.last42@example.com" for a name drawn on its own, not the row's owner's.

    A generated e-mail must not be computable from a column a role may see unmasked: one
    built from the row's name gave a role that masks ``email`` but sees the name
    (ecommerce's support_agent) all of it but a 1-3 digit number and the domain, whose
    length and last letters its ``redact_part`` mask shows anyway. Independent names
    keep the familiar format; a shared first or last name is chance (~1 row in 55).
    """
    local = take(EMAIL_LOCALS_PA, rng.integers(0, len(EMAIL_LOCALS_PA), n))
    suffix = int_strings(rng.integers(1, 1000, n))
    domain = take(EMAIL_DOMAINS_PA, rng.integers(0, EMAIL_DOMAINS.size, n))
    return join(local, suffix, domain)


def ssns(rng: np.random.Generator, n: int) -> pa.StringArray:
    """ "123-45-6789": area 001-899 except 666, group 01-99, serial 0001-9999."""
    area = rng.integers(1, 899, n)
    area = np.where(area >= 666, area + 1, area)  # skip 666, keep the range 001-899
    group = rng.integers(1, 100, n)
    serial = rng.integers(1, 10000, n)
    out = np.empty((n, 11), dtype=np.uint8)
    out[:, 0:3] = digit_matrix(area, 3)
    out[:, 3] = ord("-")
    out[:, 4:6] = digit_matrix(group, 2)
    out[:, 6] = ord("-")
    out[:, 7:11] = digit_matrix(serial, 4)
    return fixed_width_strings(out)


def addresses(rng: np.random.Generator, n: int) -> tuple[pa.Array, np.ndarray]:
    """("12 Oak St, Springfield, IL 62704" strings, city codes) — region follows the city."""
    house = np.floor(10 ** rng.uniform(0.0, 4.0, n)).astype(np.int64)  # 1..9999, log-uniform
    street = rng.integers(0, STREETS.size, n)
    city = rng.integers(0, CITIES.size, n)
    zips = CITY_ZIPS[city] + rng.integers(0, 20, n)
    middle = take(ADDRESS_MIDDLES_PA, street * CITIES.size + city)
    return join(int_strings(house), middle, int_strings(zips, 5)), city


def regions_for(city_codes: np.ndarray) -> pa.Array:
    """The region (one of REGIONS) of each city code from ``addresses``."""
    return take(REGIONS_PA, CITY_REGION[city_codes])


def phones(rng: np.random.Generator, n: int) -> pa.StringArray:
    """ "(415) 555-0123"-style North American numbers."""
    area = rng.integers(201, 990, n)
    exchange = rng.integers(200, 1000, n)
    line = rng.integers(0, 10000, n)
    out = np.empty((n, 14), dtype=np.uint8)
    out[:, 0] = ord("(")
    out[:, 1:4] = digit_matrix(area, 3)
    out[:, 4] = ord(")")
    out[:, 5] = ord(" ")
    out[:, 6:9] = digit_matrix(exchange, 3)
    out[:, 9] = ord("-")
    out[:, 10:14] = digit_matrix(line, 4)
    return fixed_width_strings(out)


def _luhn_table() -> np.ndarray:
    doubled = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9])
    v = np.arange(10_000)
    d4, d3, d2, d1 = v // 1000, v // 100 % 10, v // 10 % 10, v % 10  # d1 is rightmost
    return doubled[d1] + d2 + doubled[d3] + d4


_LUHN4 = _luhn_table()  # Luhn sum of 4 digits whose 1st and 3rd from the right are doubled


def luhn_check_digits(payload: np.ndarray) -> np.ndarray:
    """Luhn check digit to append to each non-negative integer payload (up to 16 digits).

    The digits are doubled at odd positions counting from the payload's right end; as
    4-digit groups always start at an even offset, one lookup table serves every group.
    """
    payload = np.asarray(payload, dtype=np.int64)
    total = np.zeros(payload.shape, dtype=np.int64)
    for g in range(4):
        total += _LUHN4[payload // 10 ** (4 * g) % 10_000]
    return (10 - total % 10) % 10


def card_numbers(rng: np.random.Generator, n: int) -> pa.StringArray:
    """ "4111-1111-1111-1111"-style Visa/Mastercard numbers with a valid Luhn check digit."""
    visa = rng.random(n) < 0.6
    mastercard = rng.integers(51, 56, n) * 10**13 + rng.integers(0, 10**13, n)  # 51-55...
    payload = np.where(visa, 4 * 10**14 + rng.integers(0, 10**14, n), mastercard)
    digits = digit_matrix(payload * 10 + luhn_check_digits(payload), 16)
    out = np.empty((n, 19), dtype=np.uint8)
    out[:, [4, 9, 14]] = ord("-")
    for group in range(4):
        out[:, group * 5 : group * 5 + 4] = digits[:, group * 4 : group * 4 + 4]
    return fixed_width_strings(out)


def coded_ids(rng: np.random.Generator, n: int, prefixes: np.ndarray, digits: int) -> pa.Array:
    """ "<PREFIX>-<digits>" identifiers, e.g. insurance member ids "BCB-482019374"."""
    width = len(prefixes[0])
    letters = np.frombuffer("".join(prefixes).encode("ascii"), dtype=np.uint8).reshape(-1, width)
    out = np.empty((n, width + 1 + digits), dtype=np.uint8)
    out[:, :width] = letters[rng.integers(0, len(prefixes), n)]
    out[:, width] = ord("-")
    out[:, width + 1 :] = rng.integers(48, 58, (n, digits), dtype=np.uint8)
    return fixed_width_strings(out)


def day_number(date: str) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return int((np.datetime64(date, "D") - _EPOCH).astype(np.int64))


def dates(rng: np.random.Generator, n: int, first: str, last: str) -> pa.Array:
    """Uniform random date32 values between two ISO dates, inclusive."""
    days = rng.integers(day_number(first), day_number(last) + 1, n).astype(np.int32)
    return pa.array(days, type=pa.date32())


def timestamps(rng: np.random.Generator, n: int, first: str, last: str) -> pa.Array:
    """Uniform random timestamp("us") values (whole seconds, no timezone) in [first, last]."""
    lo = day_number(first) * 86_400
    hi = (day_number(last) + 1) * 86_400
    seconds = rng.integers(lo, hi, n)
    return pa.array(seconds * 1_000_000, type=pa.timestamp("us"))


def money(values: np.ndarray) -> pa.Array:
    """float64 amounts rounded to cents."""
    return pa.array(np.round(values, 2), type=pa.float64())


def primary_keys(start: int, n: int) -> pa.Array:
    """start+1 .. start+n as int64."""
    return pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64))
