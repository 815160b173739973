"""Bytes of a text file → text: which encoding it is in.

Text files come from scraped web pages and old Windows machines, so their
encoding is anything from UTF-8 to GBK or Big5, often without a declaration.
Detectors guess badly on short Chinese texts (GB18030 happily "decodes" Big5
bytes into rare characters), so the order here is: byte-order marks, UTF-16
recognised by its NUL bytes, strict UTF-8, then the Chinese legacy codecs each
decoded strictly and scored on how much the result looks like real Chinese.
charset-normalizer only breaks near-ties or is the last resort.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

from charset_normalizer import from_bytes

from zh.script import to_traditional

__all__ = ["declared_charset", "decode_bytes"]

# Legacy codecs tried after UTF-8, in order of preference on a tie.
# GB18030 is a superset of GBK and GB2312; CP950 is Big5 with Microsoft's additions.
LEGACY_CANDIDATES: tuple[str, ...] = ("gb18030", "big5", "cp950")
# Share of characters that must be "ordinary" for a decoding to be believed.
MIN_PLAUSIBILITY = 0.9
# Control or private-use characters tolerated before a decoding is rejected.
MAX_BAD_SHARE = 0.005
# Decodings closer than this in score are a tie, broken by charset-normalizer.
TIE_MARGIN = 0.05

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)

# The most frequent Chinese characters (simplified); their traditional forms are
# added at first use. Real Chinese text is made mostly of these, text decoded
# with the wrong legacy codec almost never is.
_COMMON_HAN = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点"
    "从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原"
    "又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革"
    "位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强"
    "放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交"
    "受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八"
    "离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布"
    "复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往历市克何除消构府称太准精值"
    "号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参"
    "红细引听该铁价严龙飞服务作风群众干部职青妇联织建设坚持推进落实加强领导会议讲话同志们工作组织"
)

_HAN_RANGES: tuple[tuple[int, int], ...] = (
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0x3400, 0x4DBF),  # extension A
    (0xF900, 0xFAFF),  # compatibility ideographs
)
_GOOD_RANGES: tuple[tuple[int, int], ...] = _HAN_RANGES + (
    (0x20, 0x7E),  # printable ASCII
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # full-width forms
    (0x2000, 0x206F),  # general punctuation (quotes, dashes, ellipsis)
    (0x00A0, 0x00B7),  # nbsp, ·, ©, °
    (0x2460, 0x24FF),  # circled numbers
    (0x25A0, 0x25FF),  # geometric shapes used as bullets
)


def decode_bytes(data: bytes, *, declared: str | None = None) -> tuple[str, str]:
    """Decode text bytes; return ``(text, codec name)`` or raise ``ValueError``.

    ``declared`` is an encoding the file itself names (an HTML ``<meta charset>``);
    it is tried first among the legacy codecs but still has to decode strictly
    and look like text.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec), codec
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"starts with a {codec} byte-order mark but does not decode"
                ) from exc

    if b"\x00" in data:
        utf16 = _utf16_without_bom(data)
        if utf16 is not None:
            return utf16
        raise ValueError("binary data (NUL bytes), not text in a known encoding")

    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass

    candidates: list[str] = []
    normalised = _normalise_codec(declared) if declared else None
    if normalised and normalised not in ("utf-8", "utf-16", "utf-32"):
        candidates.append(normalised)
    candidates += [c for c in LEGACY_CANDIDATES if c not in candidates]

    scored: list[tuple[float, str, str]] = []
    for codec in candidates:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        plausible = _plausibility(text)
        if plausible >= MIN_PLAUSIBILITY:
            scored.append((plausible + _commonness(text), codec, text))
    if scored:
        best = max(scored, key=lambda s: s[0])  # max keeps the first of equals: preference order
        close = [s for s in scored if best[0] - s[0] < TIE_MARGIN]
        if len(close) > 1:
            best = _break_tie(data, close) or best
        return best[2], best[1]

    guess = from_bytes(data).best()
    if guess is not None:
        text = str(guess)
        if _plausibility(text) >= MIN_PLAUSIBILITY:
            return text, guess.encoding
    raise ValueError("undecodable: not UTF-8, UTF-16, GB18030/GBK or Big5 text")


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """Decode BOM-less UTF-16 in whichever byte order gives believable text.

    Where the NUL bytes sit says little for Chinese: ASCII has its zero byte on one
    side, while common characters such as 一 (U+4E00) have it on the other. So both
    byte orders are decoded strictly (an unpaired surrogate fails) and each result
    must look like text; the wrong order turns newlines and punctuation into stray
    symbols and common characters into rare ones, so the higher score wins. Binary
    data fails both: control and private-use characters, few from the text ranges.
    """
    if len(data) % 2:
        return None
    best: tuple[float, str, str] | None = None
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        plausible = _plausibility(text)
        if plausible >= MIN_PLAUSIBILITY:
            score = plausible + _commonness(text)
            if best is None or score > best[0]:
                best = (score, codec, text)
    return (best[2], best[1]) if best else None


def _normalise_codec(name: str) -> str | None:
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    # Pages labelled GB2312/GBK routinely use characters outside those sets.
    return "gb18030" if codec in ("gb2312", "gbk") else codec


def declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii", "replace") if match else None


def _in_ranges(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def _plausibility(text: str) -> float:
    """Share of characters that ordinary Chinese/ASCII text is made of.

    Replacement characters, control codes and private-use characters (what a
    wrong codec produces) make the decoding implausible outright."""
    if not text:
        return 0.0
    good = bad = 0
    for ch in text:
        cp = ord(ch)
        if ch in "\t\n\r\f" or _in_ranges(cp, _GOOD_RANGES):
            good += 1
        elif cp == 0xFFFD:
            return 0.0
        elif cp < 0x20 or 0x7F <= cp <= 0x9F or 0xE000 <= cp <= 0xF8FF:
            bad += 1
    if bad > MAX_BAD_SHARE * len(text):
        return 0.0
    return good / len(text)


@lru_cache(maxsize=1)
def _common_han() -> frozenset[str]:
    return frozenset(_COMMON_HAN) | frozenset(to_traditional(_COMMON_HAN))


def _commonness(text: str) -> float:
    """Share of the Han characters that are among the most frequent ones."""
    han = [ch for ch in text if _in_ranges(ord(ch), _HAN_RANGES)]
    if not han:
        return 0.0
    common = _common_han()
    return sum(ch in common for ch in han) / len(han)


def _break_tie(data: bytes, close: list[tuple[float, str, str]]) -> tuple[float, str, str] | None:
    names = [codec for _, codec, _ in close]
    guess = from_bytes(data, cp_isolation=names).best()
    if guess is None:
        return None
    chosen = _normalise_codec(guess.encoding)
    for item in close:
        if _normalise_codec(item[1]) == chosen:
            return item
    return None
