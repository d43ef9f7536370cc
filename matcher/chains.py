"""Industrial-chain definitions (一月一链 events) as YAML data: loading and validation.

A chain has a name and segments (上游材料 / 中游部件 / 下游应用 ...). Each segment says which patents and which
demands belong to it: IPC/CPC prefixes, keywords in Chinese and English, optional seed patents, and filters
(``PatentFilters`` / ``DemandFilters`` fields, chain-wide and per segment). ``data/chains/README.md`` documents
the format; ``load_chain`` turns a file into a validated ``Chain`` or raises ``ChainError`` with a message that
names the file and the key path, e.g. ``chain.yaml: segments[1].ipc[0]: not an IPC/CPC code or prefix: 'X99'``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from matcher.filters import DemandFilters, PatentFilters
from matcher.i18n import DEFAULT_LANG, Message
from matcher.reasons import reason, refusal
from matcher.records import normalize_code

CHAINS_DIR = Path(__file__).resolve().parent.parent / "data" / "chains"
_IPC_PREFIX = re.compile(r"^[A-H](\d{1,2}([A-Z](\d{1,4}(/\d{0,6})?)?)?)?$")
_SLUG = r"^[a-z0-9][a-z0-9_-]*$"
MAX_EXPAND = 1000
F = TypeVar("F", bound=BaseModel)


class ChainError(ValueError):
    """A chain file that cannot be used: one line per problem, each naming the file and the key path.
    ``message(lang)`` says it in Chinese or English; ``str()`` is the English form."""

    def __init__(self, *lines: Message) -> None:
        self.lines = lines
        super().__init__(self.message("en"))

    def message(self, lang: str = DEFAULT_LANG) -> str:
        return "\n".join(line.text(lang) for line in self.lines)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.lines)


def _ipc_prefix(value: str) -> str:
    code = normalize_code(value)
    if not _IPC_PREFIX.match(code):
        raise refusal("chain_ipc_prefix", value=repr(value))
    return code


Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
IpcPrefix = Annotated[str, AfterValidator(_ipc_prefix)]
SeedId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class Keywords(_Strict):
    """Keywords per language. A Chinese keyword matches text containing it (after full-width and traditional
    characters are folded); an English keyword matches text containing every word of it (stemmed, any order)."""

    zh: list[Word] = Field(default_factory=list)
    en: list[Word] = Field(default_factory=list)

    def all(self) -> list[str]:
        return [*self.zh, *self.en]


class Segment(_Strict):
    id: Annotated[str, StringConstraints(pattern=_SLUG, max_length=40)] = Field(
        description="Short key, lower-case ASCII (battery_materials); also the sheet order key.")
    name: Word = Field(description="Chinese name, e.g. 上游·动力电池材料 (the XLSX sheet name with --lang zh).")
    name_en: Word | None = Field(default=None, description="English name (the sheet name with --lang en).")
    description: str = Field(default="", max_length=2000,
                             description="What the segment covers; with the keywords, the semantic query.")
    ipc: list[IpcPrefix] = Field(default_factory=list, description="IPC/CPC prefixes: a patent with any code "
                                                                   "starting with any of them belongs.")
    keywords: Keywords = Field(default_factory=Keywords)
    seeds: list[SeedId] = Field(default_factory=list, description="Patent ids always included.")
    negative_keywords: Keywords = Field(default_factory=Keywords, description="A record containing any of these "
                                        "(as whole words) is not in the segment, whatever selected it; seeds stay.")
    keyword_similarity: float = Field(default=0.25, ge=-1.0, le=1.0, description=(
        "A keyword hit counts only when the record's dense cosine to the description is at least this (use-m3)."))
    semantic_similarity: float = Field(default=0.4, ge=-1.0, le=1.0, description=(
        "The semantic expansion takes only records whose cosine to the description is at least this (use-m3)."))
    expand_patents: int = Field(default=20, ge=0, le=MAX_EXPAND,
                                description="Also the N patents the hybrid ranker finds closest to the segment.")
    expand_demands: int = Field(default=10, ge=0, le=MAX_EXPAND,
                                description="Also the N demands the hybrid ranker finds closest to the segment.")
    patent_filters: PatentFilters | None = None
    demand_filters: DemandFilters | None = None

    @model_validator(mode="after")
    def _selects_something(self) -> Segment:
        if not (self.ipc or self.keywords.all() or self.seeds):
            raise refusal("chain_selects_nothing")
        return self

    @property
    def label_en(self) -> str:
        return self.name_en or self.id

    def query(self) -> str:
        """The text the semantic expansion searches with: description and keywords, both languages."""
        return "\n".join(p for p in (self.description, " ".join(self.keywords.zh), " ".join(self.keywords.en)) if p)


class Chain(_Strict):
    name: Word
    name_en: Word | None = None
    description: str = Field(default="", max_length=4000)
    patent_filters: PatentFilters = Field(default_factory=PatentFilters)
    demand_filters: DemandFilters = Field(default_factory=DemandFilters)
    segments: list[Segment] = Field(min_length=1)
    source: str = Field(default="", exclude=True, description="The file it was loaded from.")

    @field_validator("segments")
    @classmethod
    def _unique_segments(cls, segments: list[Segment]) -> list[Segment]:
        for what in ("id", "name"):
            seen: dict[str, int] = {}
            for i, seg in enumerate(segments):
                value = getattr(seg, what)
                if value in seen:
                    raise refusal("chain_same_segment", i=i, what=what, j=seen[value], value=repr(value))
                seen[value] = i
        return segments

    def segment_patent_filters(self, segment: Segment) -> PatentFilters:
        return _overlay(self.patent_filters, segment.patent_filters)

    def segment_demand_filters(self, segment: Segment) -> DemandFilters:
        return _overlay(self.demand_filters, segment.demand_filters)


def _overlay(base: F, override: F | None) -> F:
    """The chain's filters with the fields the segment sets replaced (field by field, not merged inside)."""
    if override is None:
        return base
    return base.model_copy(update={name: getattr(override, name) for name in override.model_fields_set})


# --- loading ----------------------------------------------------------------------------------------------
class _RepeatedKey(yaml.constructor.ConstructorError):
    def __init__(self, key: object, mark: yaml.Mark) -> None:
        super().__init__(None, None, f"key {key!r} appears twice", mark)
        self.key = key


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a chain file with a repeated key is refused instead."""


def _mapping_without_repeats(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise _RepeatedKey(key, key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)


def key_path(loc: tuple[int | str, ...]) -> str:
    """``('segments', 1, 'ipc', 0)`` -> ``segments[1].ipc[0]``; ``""`` for the top level."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _reason(error: dict[str, Any], loc: tuple[int | str, ...]) -> Message:
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc)
        return (Message("chain.unknown_key_allowed", allowed=_allowed_keys(model)) if model is not None
                else Message("chain.unknown_key"))
    if kind == "missing":
        return Message("chain.missing")
    if kind == "too_short" and isinstance(error.get("input"), list):
        return Message("chain.empty")
    if kind == "string_pattern_mismatch":
        return Message("chain.slug", value=repr(error["input"]))
    said = reason(error)
    if kind in _TYPE_ERRORS and "input" in error:
        value = error["input"]
        return Message("chain.got", reason=said, type=type(value).__name__, value=f"{value!r:.60}")
    return said


_TYPE_ERRORS = {"string_type", "list_type", "int_type", "bool_type", "float_type", "model_type", "dict_type",
                "literal_error", "date_type", "int_from_float"}


def _allowed_keys(model: type[BaseModel]) -> str:
    return ", ".join(name for name, f in model.model_fields.items() if not f.exclude)


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose keys are allowed at ``loc`` (for "unknown key" messages)."""
    model: type[BaseModel] = Chain
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        ann = model.model_fields.get(part)
        if ann is None:
            return None
        nested = {"segments": Segment, "keywords": Keywords, "negative_keywords": Keywords,
                  "patent_filters": PatentFilters,
                  "demand_filters": DemandFilters}.get(part)
        if nested is None:
            return None
        model = nested
    return model


def format_errors(source: str, exc: ValidationError) -> list[Message]:
    """One line per error of ``exc``: the file, the key path and why."""
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))  # drop union/function tags
        where = key_path(loc) or Message("chain.top_level")
        lines.append(Message("chain.at", source=source, where=where, reason=_reason(error, loc)))
    return lines


def parse_chain(data: object, source: str = "<chain>") -> Chain:
    """A validated ``Chain`` from already-parsed YAML/JSON data."""
    if not isinstance(data, dict):
        raise ChainError(Message("chain.not_mapping", source=source, type=type(data).__name__))
    try:
        chain = Chain.model_validate(data)
    except ValidationError as exc:
        raise ChainError(*format_errors(source, exc)) from None
    chain.source = source
    return chain


def load_chain(path: str | Path) -> Chain:
    """Read and validate a chain file (YAML; JSON is YAML too)."""
    path = Path(path)
    source = path.name
    try:
        raw = path.read_text("utf-8")
    except FileNotFoundError:
        raise ChainError(Message("chain.no_file", path=str(path))) from None
    except UnicodeDecodeError as exc:
        raise ChainError(Message("chain.not_utf8", source=source, reason=exc.reason, start=exc.start)) from None
    except OSError as exc:
        raise ChainError(Message("chain.unreadable", path=str(path), reason=exc.strerror or str(exc))) from None
    try:
        data = yaml.load(raw, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # a repeated key in our words; any other problem in the YAML parser's (English) words
        problem = (Message("chain.repeated_key", name=repr(exc.key)) if isinstance(exc, _RepeatedKey)
                   else exc.problem or str(exc))
        if mark is None:
            raise ChainError(Message("chain.yaml", source=source, detail=problem)) from None
        raise ChainError(Message("chain.yaml_at", source=source, line=mark.line + 1, column=mark.column + 1,
                                 problem=problem)) from None
    except yaml.YAMLError as exc:
        raise ChainError(Message("chain.yaml", source=source, detail=str(exc))) from None
    return parse_chain(data, source)


def shipped_chains() -> list[Path]:
    """The example chain files under ``data/chains/``."""
    return sorted(CHAINS_DIR.glob("*.yaml"))
