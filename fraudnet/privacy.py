"""Personal-data protection: keyed hashing, masking and address normalisation for identifiers.

Each function has a Python form (for single values, the API and tests) and a SQL form (`sql_*`, DuckDB
expressions used by the ingest to process millions of rows without Python loops). Both forms give the same
result for the same input; tests check that on samples.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

from fraudnet.errors import ConfigError

__all__ = [
    "KEY_FILE_NAME",
    "hash_identifier",
    "mask_certno",
    "mask_phone",
    "normalize_phone",
    "mask_name",
    "normalize_address",
    "address_key",
    "load_or_create_key",
    "sql_hash_identifier",
    "sql_mask_certno",
    "sql_mask_phone",
    "sql_normalize_phone",
    "sql_normalize_address",
    "sql_address_key",
    "is_certno",
    "is_mobile",
    "sql_is_certno",
    "sql_is_mobile",
    "mask_identifiers_in_text",
]

KEY_FILE_NAME = "secret.key"

# Full-width ASCII (U+FF01–U+FF5E) and the ideographic space to half-width; traditional / variant characters
# found in addresses to the simplified form.
_FULL = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
_VARIANT_FROM = "號單樓棟幢區縣鎮鄉門層莊戶裏"
_VARIANT_TO = "号单楼栋栋区县镇乡门层庄户里"
_ADDR_TABLE = str.maketrans(_FULL + _VARIANT_FROM, _HALF + _VARIANT_TO)
_WIDTH_TABLE = str.maketrans(_FULL, _HALF)
# Building / unit / room wording after a number: "3号楼" = "3#楼" = "3#" = "3幢" = "3栋"; "2单" = "2单元";
# "501室" = "501房" = "501". Applied in this order, after whitespace is removed.
_ADDR_RULES: tuple[tuple[str, str], ...] = (
    (r"([0-9]+)(号楼|#楼|楼栋|栋楼|#|栋)", "栋"),
    (r"([0-9]+)(单元|门洞|单)", "单元"),
    (r"([0-9]+)(号房|室|房|户)", ""),
)
_ADDR_RULES_PY = tuple((re.compile(p), r"\1" + r) for p, r in _ADDR_RULES)
# ASCII whitespace only, exactly as RE2's \s in the SQL forms.
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")
_PHONE_NOISE = r"[\t\n\f\r \-()]"
_PHONE_NOISE_PY = re.compile(_PHONE_NOISE)


def load_or_create_key(workspace: str | os.PathLike[str]) -> bytes:
    """Return the workspace's hashing key from `<workspace>/secret.key`, creating it (mode 0600) on first use."""
    ws = Path(workspace)
    path = ws / KEY_FILE_NAME
    if path.exists():
        text = path.read_text(encoding="ascii").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: hashing key is not hex text ({exc})") from exc
        if len(key) < 16:
            raise ConfigError(f"{path}: hashing key is {len(key)} bytes, expected at least 16")
        return key
    ws.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    if not create_secret_file(path, key.hex() + "\n"):
        return load_or_create_key(ws)
    return key


def create_secret_file(path: Path, text: str) -> bool:
    """Write a new secret file (mode 0600) unless it exists; False when another process made it first.

    O_EXCL: two processes creating the same key or password at once must not end up with different ones."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
    return True


@functools.lru_cache(maxsize=8)
def _hmac_base(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def _hmac_hex(key: bytes, text: str) -> str:
    h = _hmac_base(key).copy()
    h.update(text.encode("utf-8"))
    return h.hexdigest()


def hash_identifier(value: str | None, key: bytes) -> str | None:
    """HMAC-SHA256 (hex) of an identifier after trimming spaces and upper-casing; None for an empty value."""
    if value is None:
        return None
    text = str(value).strip(" ").upper()
    if not text:
        return None
    return _hmac_hex(key, text)


def _mask_middle(text: str, keep_start: int, keep_end: int) -> str:
    if len(text) <= keep_start + keep_end:
        # Too short to show both ends: keep at most the last two characters.
        shown = min(2, max(len(text) - 2, 0))
        return "*" * (len(text) - shown) + (text[-shown:] if shown else "")
    return text[:keep_start] + "*" * (len(text) - keep_start - keep_end) + text[-keep_end:]


def mask_certno(value: str | None) -> str | None:
    """Mask an ID number keeping the first 4 and last 4 characters: `3101**********1234`."""
    if value is None:
        return None
    text = str(value).strip(" ")
    return _mask_middle(text, 4, 4) if text else None


def normalize_phone(value: str | None) -> str | None:
    """A phone number in half-width digits without spaces, dashes, brackets and a +86/0086 country code."""
    if value is None:
        return None
    text = _PHONE_NOISE_PY.sub("", str(value).translate(_WIDTH_TABLE))
    if text.startswith("+86") and len(text) > 10:
        text = text[3:]
    elif text.startswith("0086") and len(text) > 11:
        text = text[4:]
    return text or None


def mask_phone(value: str | None) -> str | None:
    """Mask a phone number keeping the first 3 and last 4 digits: `138****5678`."""
    text = normalize_phone(value)
    return _mask_middle(text, 3, 4) if text else None


def mask_name(value: str | None) -> str | None:
    """Mask a personal name: `张*三` for three characters or more, `李*` for two, `*` for one."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) == 1:
        return "*"
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]


def normalize_address(value: str | None) -> str | None:
    """Normalise an address for matching: full-width to half-width, variants unified, spacing/punctuation removed.

    `上海市 浦东新区 张杨路１２３號３号楼２单元５０１室` and `上海市浦东新区张杨路123号3#楼2单元501` give the same text.
    Only letters and digits (Unicode categories L and N) are kept in the end.
    """
    if value is None:
        return None
    text = _WHITESPACE.sub("", str(value).translate(_ADDR_TABLE).lower())
    for pattern, repl in _ADDR_RULES_PY:
        text = pattern.sub(repl, text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")
    return text or None


def address_key(value: str | None, key: bytes) -> str | None:
    """Keyed hash of the normalised address (the `addr_key` linking persons who share an address)."""
    norm = normalize_address(value)
    if norm is None:
        return None
    return _hmac_hex(key, norm)


_CERTNO = r"[1-8][0-9]{5}(18|19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
_CERT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CERT_CHECK = "10X98765432"
_MOBILE = r"1[3-9][0-9]{9}"
_PHONE_CHARS = "[0-9\uff10-\uff19\uff0b\uff08\uff09\uff0d\u3000\t\n\f\r +()\\-]{11,24}"


def is_certno(value: str | None) -> bool:
    """Whether a value is a mainland resident ID number (18 characters, a birth date, a valid check digit)."""
    if value is None:
        return False
    text = str(value).strip()
    if not re.fullmatch(_CERTNO, text):
        return False
    total = sum(int(d) * w for d, w in zip(text[:17], _CERT_WEIGHTS, strict=True))
    return _CERT_CHECK[total % 11] == text[17].upper()


def is_mobile(value: str | None) -> bool:
    """Whether a value is a mainland mobile number (11 digits starting 13–19, after `normalize_phone`)."""
    text = normalize_phone(value)
    return bool(text and re.fullmatch(_MOBILE, text))


_CERTNO_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[1-8][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def mask_identifiers_in_text(text: str) -> str:
    """A free text (a raw CSV line kept in the quarantine) with ID-card and mobile numbers in it masked."""
    text = _CERTNO_IN_TEXT.sub(lambda m: mask_certno(m.group()) if is_certno(m.group()) else m.group(), text)
    return _MOBILE_IN_TEXT.sub(lambda m: mask_phone(m.group()) or "", text)


# --- SQL forms (DuckDB) ------------------------------------------------------------------------------------


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_hmac(expr: str, key: bytes) -> str:
    """HMAC-SHA256 hex of a VARCHAR expression, written with DuckDB's sha256 (RFC 2104 construction)."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in block).hex()
    opad = bytes(b ^ 0x5C for b in block).hex()
    return f"sha256(unhex('{opad}') || unhex(sha256(unhex('{ipad}') || encode({expr}))))"


def sql_hash_identifier(expr: str, key: bytes) -> str:
    """SQL form of `hash_identifier` (NULL in, NULL out: sha256 and || propagate NULL)."""
    return _sql_hmac(f"NULLIF(upper(trim({expr})), '')", key)


def _sql_mask_middle(t: str, keep_start: int, keep_end: int) -> str:
    n = f"length({t})"
    shown = f"least(2, greatest({n} - 2, 0))"
    return (f"(CASE WHEN {t} = '' THEN NULL "
            f"WHEN {n} <= {keep_start + keep_end} THEN repeat('*', {n} - {shown}) || right({t}, {shown}) "
            f"ELSE left({t}, {keep_start}) || repeat('*', {n} - {keep_start + keep_end}) || right({t}, {keep_end}) "
            "END)")


def sql_mask_certno(expr: str) -> str:
    """SQL form of `mask_certno`."""
    return _sql_mask_middle(f"trim({expr})", 4, 4)


def _sql_translate(expr: str, src: str, dst: str) -> str:
    """translate() only where a character to translate occurs (translate is slow; the RE2 test is not)."""
    return f"(CASE WHEN regexp_matches({expr}, {_lit('[' + src + ']')}) THEN translate({expr}, {_lit(src)}, " \
           f"{_lit(dst)}) ELSE {expr} END)"


def sql_normalize_phone(expr: str) -> str:
    """SQL form of `normalize_phone` (plain digit strings, the usual case, take a fast path)."""
    t = f"regexp_replace({_sql_translate(expr, _FULL, _HALF)}, '{_PHONE_NOISE}', '', 'g')"
    slow = (f"NULLIF(CASE WHEN starts_with({t}, '+86') AND length({t}) > 10 THEN substr({t}, 4) "
            f"WHEN starts_with({t}, '0086') AND length({t}) > 11 THEN substr({t}, 5) ELSE {t} END, '')")
    return f"(CASE WHEN regexp_full_match({expr}, '[0-9]{{1,20}}') THEN {expr} ELSE {slow} END)"


def sql_mask_phone(expr: str) -> str:
    """SQL form of `mask_phone`."""
    return _sql_mask_middle(sql_normalize_phone(expr), 3, 4)


def sql_normalize_address(expr: str) -> str:
    """SQL form of `normalize_address`."""
    translated = _sql_translate(expr, _FULL + _VARIANT_FROM, _HALF + _VARIANT_TO)
    t = f"regexp_replace(lower({translated}), " r"'[\t\n\f\r ]+', '', 'g')"
    for pattern, repl in _ADDR_RULES:
        t = f"regexp_replace({t}, {_lit(pattern)}, {_lit(chr(92) + '1' + repl)}, 'g')"
    return f"NULLIF(regexp_replace({t}, '[^\\p{{L}}\\p{{N}}]+', '', 'g'), '')"


def sql_address_key(expr: str, key: bytes) -> str:
    """SQL form of `address_key`."""
    return _sql_hmac(sql_normalize_address(expr), key)


def sql_is_certno(expr: str) -> str:
    """SQL form of `is_certno` (false for NULL)."""
    t = f"trim({expr})"
    total = " + ".join(f"{w} * TRY_CAST(substr({t}, {i + 1}, 1) AS INTEGER)" for i, w in enumerate(_CERT_WEIGHTS))
    return (f"coalesce(CASE WHEN regexp_full_match({t}, {_lit(_CERTNO)}) THEN "
            f"substr({_lit(_CERT_CHECK)}, (({total}) % 11) + 1, 1) = upper(substr({t}, 18, 1)) END, false)")


def sql_is_mobile(expr: str) -> str:
    """SQL form of `is_mobile` (false for NULL)."""
    # Cheap screen first: a phone is 11 to 24 characters of digits (half- or full-width) and separators.
    screen = f"regexp_full_match({expr}, {_lit(_PHONE_CHARS)})"
    return (f"coalesce(CASE WHEN {screen} THEN regexp_full_match({sql_normalize_phone(expr)}, {_lit(_MOBILE)}) "
            "END, false)")
