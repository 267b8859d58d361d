"""The index catalogue: Awesome Spectral Indices (as shipped by ``spyndex``) plus user indices."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

from agrivision.errors import SpectralIndexError
from agrivision.indices.formula import Formula, compile_formula
from agrivision.indices.symbols import constants, load_json

#: Common names that the catalogue spells differently.
ALIASES: dict[str, str] = {"NDRE": "NDREI", "MSAVI2": "MSAVI", "CIRedEdge": "CIRE"}

#: Formulas shipped wrong in spyndex <= 0.12 (ASI catalogue of 2026-07), replaced only while the
#: shipped text is the faulty one: the red-blue term is rb = R - gamma * (B - R) (Kaufman & Tanre
#: 1992, ARVI; Huete & Liu 1994, SARVI with gamma = 1); upstream awesome-spectral-indices #132.
CORRECTIONS: dict[str, tuple[str, str]] = {
    "ARVI": (
        "(N - (R - gamma * (R - B))) / (N + (R - gamma * (R - B)))",
        "(N - (R - gamma * (B - R))) / (N + (R - gamma * (B - R)))",
    ),
    "SARVI": (
        "(1 + L)*(N - (R - (R - B))) / (N + (R - (R - B)) + L)",
        "(1 + L)*(N - (R - (B - R))) / (N + (R - (B - R)) + L)",
    ),
}

#: Per-index defaults where the catalogue's shared constant does not fit the index: L = 1 is
#: EVI's value; SAVI's author recommends L = 0.5 (Huete 1988) and most software uses it.
INDEX_DEFAULTS: dict[str, dict[str, float]] = {"SAVI": {"L": 0.5}}

_REGISTERED: dict[str, IndexInfo] = {}


@dataclass(frozen=True)
class IndexInfo:
    """One spectral index.

    ``bands`` are catalogue band symbols (``N``, ``R``...; see
    :func:`agrivision.indices.symbols.band_symbols` for the scene variables behind them),
    ``defaults`` maps each constant the formula uses to its default (``None``: no default,
    it must be passed to :func:`~agrivision.indices.compute`).
    """

    name: str
    long_name: str
    formula: str
    bands: tuple[str, ...]
    defaults: Mapping[str, float | None] = field(hash=False)
    domain: str
    reference: str = ""
    platforms: tuple[str, ...] = ()
    custom: bool = False

    @property
    def compiled(self) -> Formula:
        """The compiled formula (cached)."""
        return _compiled(self.formula, tuple(self.defaults))


@cache
def _compiled(text: str, names: tuple[str, ...]) -> Formula:
    return compile_formula(text, extra_constants=names)


def _info(name: str, formula: Formula, *, custom: bool, **meta) -> IndexInfo:
    known = constants()
    given = meta.pop("defaults", {})
    defaults = {
        c: given[c] if c in given else (known[c].default if c in known else None)
        for c in formula.constants
    }
    return IndexInfo(
        name=name,
        formula=formula.text,
        bands=formula.bands,
        defaults=MappingProxyType(defaults),
        custom=custom,
        **meta,
    )


@cache
def _catalogue() -> dict[str, IndexInfo]:
    out = {}
    for name, spec in load_json("spectral-indices-dict.json")["SpectralIndices"].items():
        text = spec["formula"]
        faulty, fixed = CORRECTIONS.get(name, (text, text))
        out[name] = _info(
            name,
            compile_formula(fixed if text == faulty else text, name=name),
            custom=False,
            defaults=INDEX_DEFAULTS.get(name, {}),
            long_name=spec["long_name"],
            domain=spec["application_domain"],
            reference=spec.get("reference", ""),
            platforms=tuple(spec.get("platforms", ())),
        )
    return out


def _all() -> dict[str, IndexInfo]:
    return {**_catalogue(), **_REGISTERED}


def list_indices(
    search: str | None = None, *, application_domain: str | None = None
) -> list[IndexInfo]:
    """Indices of the catalogue (and registered ones), sorted by name.

    Parameters
    ----------
    search
        Case-insensitive text that the name or long name must contain.
    application_domain
        Keep one domain only: ``vegetation, water, soil, burn, urban, snow, clouds, radar,
        kernel`` (or ``custom`` for registered indices).
    """
    found = list(_all().values())
    if search:
        text = search.lower()
        found = [i for i in found if text in i.name.lower() or text in i.long_name.lower()]
    if application_domain:
        found = [i for i in found if i.domain == application_domain.lower()]
    return sorted(found, key=lambda i: i.name.lower())


def index_info(name: str) -> IndexInfo:
    """The index called ``name`` (case-insensitive; a few common aliases such as ``NDRE``).

    Raises
    ------
    SpectralIndexError
        If no index has that name (the message suggests close names) or the name matches
        several indices that differ only in case (``BAI``/``BaI``).
    """
    everything = _all()
    if name in everything:
        return everything[name]
    folded = {k.lower(): v for k, v in ALIASES.items()}
    if str(name).lower() in folded:
        return everything[folded[str(name).lower()]]
    same = [k for k in everything if k.lower() == str(name).lower()]
    if len(same) == 1:
        return everything[same[0]]
    if same:
        raise SpectralIndexError(
            f"index name {name!r} is ambiguous: {' and '.join(same)} differ only in case",
            fix="spell it exactly",
        )
    by_lower = {k.lower(): k for k in everything}
    close = [by_lower[c] for c in difflib.get_close_matches(str(name).lower(), by_lower, n=4)]
    raise SpectralIndexError(
        f"unknown spectral index {name!r}"
        + (f"; did you mean {', '.join(close)}?" if close else ""),
        fix="see agrivision.indices.list_indices() or register_index() for your own formula",
    )


def register_index(
    name: str,
    formula: str,
    *,
    long_name: str = "",
    reference: str = "",
    constants: Mapping[str, float] | None = None,
    overwrite: bool = False,
) -> IndexInfo:
    """Add a custom index computed from ``formula`` (catalogue band symbols and constants).

    ``constants`` gives defaults for the formula's own constant names (and may override
    catalogue defaults for this index). Registered indices live for the Python session and
    appear in :func:`list_indices` with ``domain="custom"``.

    Raises
    ------
    FormulaError
        If the formula is not plain arithmetic on known symbols.
    SpectralIndexError
        If ``name`` is empty or already taken and ``overwrite`` is false.
    """
    if not isinstance(name, str) or not name.strip():
        raise SpectralIndexError("an index name must be a non-empty string")
    taken = name in _catalogue() or (name in _REGISTERED and not overwrite)
    if taken:
        raise SpectralIndexError(
            f"index {name!r} already exists",
            fix="choose another name" + ("" if name in _catalogue() else " or pass overwrite=True"),
        )
    info = make_index(name, formula, long_name=long_name, reference=reference, constants=constants)
    _REGISTERED[name] = info
    return info


def make_index(
    name: str,
    formula: str,
    *,
    long_name: str = "",
    reference: str = "",
    constants: Mapping[str, float] | None = None,
) -> IndexInfo:
    """A custom :class:`IndexInfo` from a formula, not registered (see :func:`register_index`)."""
    given = {k: float(v) for k, v in (constants or {}).items()}
    compiled = compile_formula(formula, extra_constants=given, name=name)
    return _info(
        name,
        compiled,
        custom=True,
        defaults=given,
        long_name=long_name or name,
        domain="custom",
        reference=reference,
    )


def unregister_index(name: str) -> None:
    """Remove a custom index added with :func:`register_index` (no-op if absent)."""
    _REGISTERED.pop(name, None)
