"""Personal data out of exported traces: e-mail addresses, phone numbers and the names of the
CRM's contacts are masked.

Langfuse keeps every prompt and reply of a turn, and those carry the CRM's contacts (their
names, e-mail addresses and phone numbers) to wherever Langfuse runs. Unless
`FLOWSTATE_TRACE_RAW` is true, `observability.tracing.setup_tracing` masks them twice over:

- :func:`mask_data` is the Langfuse client's `mask`: the input, output and metadata that the SDK
  records (the LangChain callback handler's generations, the turn's root span, tool
  observations) are masked as they are set, in the turn's context;
- :func:`mask_attributes` runs in the export hook (`mask_otel_spans`, on the exporter's thread)
  over every string attribute of every span, which also covers spans the SDK never sees
  (OpenInference's CrewAI spans carry their prompts in `input.value` and `llm.input_messages.*`).

What is masked:

- text shaped like an e-mail address (`[email]`) or a phone number of 7 or more digits written
  in groups (`[phone]`, e.g. "+1-415-555-0123", "(020) 7946 0958");
- the full name of a contact (`[name]`): "First Last" as stored, matched case-insensitively with
  any whitespace between the words ("ada  LOVELACE", "Ada\\nLovelace"); a possessive keeps its
  "'s" ("[name]'s deal"). A first or last name alone, or "Last, First", is not masked. The names
  come from a loader the app sets (:func:`set_name_loader`; the CRM's contacts), reloaded at most
  every `NAME_REFRESH_S` seconds in the background: a contact added since is masked from the
  next reload on, and a failed reload keeps the names loaded before (logged once).

Whose names: contacts are the people at customer accounts, the personal data the CRM holds.
Sales reps and managers are the workspace's own users: their names stay visible, since a team
lead reads traces by rep.

A turn may show the names of its own records: the graph calls :func:`allow_names` with the
contacts it resolved from the conversation and the records the crew's reply rests on (its
sources and facts), and the contacts' names among them stay readable in that turn's trace
(keyed by OpenTelemetry trace id, kept `ALLOW_TTL_S` seconds, at most `ALLOW_MAX_TRACES`
traces) while other contacts' names are masked. What the SDK recorded before the turn found its
records keeps them masked (fail closed): the root span's input (the rep's message), the crew's
tool observations, and spans exported while the crew still ran (the export runs every few
seconds) when the names came only with the crew's reply.

Names are found in one pass over the text (its words with their positions, then the runs of
consecutive words looked up in a set), so masking costs O(len(text)) however many contacts
there are.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
NAME_MASK = "[name]"

#: Seconds between reloads of the contacts' names (monotonic clock).
NAME_REFRESH_S = 60.0
#: Seconds a trace's allowed names are kept after the last :func:`allow_names` for it.
ALLOW_TTL_S = 15 * 60.0
#: Traces whose allowed names are kept at once (the oldest are dropped first).
ALLOW_MAX_TRACES = 10_000

#: A loader of the names to mask: full names ("First Last") of people.
NameLoader = Callable[[], Iterable[str]]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# a country code, an area code in parentheses or as a group, then at least two groups of digits
# split by space, dot or dash: dates ("2024-06-01"), times and plain amounts do not fit
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{2,4}[\s.-])?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?!\w)"
)
# a word of a name: letters and digits, with inner hyphens and apostrophes ("Jean-Luc",
# "O'Neil"); a possessive is part of the word ("Lovelace's") and is matched without its "'s"
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")
_POSSESSIVE = "'s"


def _fold(word: str) -> str:
    return word.lower().replace("\u2019", "'")


def name_key(name: str) -> str | None:
    """The form a full name is looked up in: its words lower-cased, joined by one space ("Ada
    LOVELACE" -> "ada lovelace"); None for fewer than two words (a single word is not masked)."""
    words = [_fold(m.group()) for m in _WORD.finditer(name)]
    return " ".join(words) if len(words) >= 2 else None


# ---------------------------------------------------------------------------------------------
# the names to mask
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NameSet:
    """Full names to find in text: `keys` (:func:`name_key` forms), `firsts` (their first
    words, to skip the rest of the text cheaply) and `longest` (most words in one name)."""

    keys: frozenset[str] = frozenset()
    firsts: frozenset[str] = frozenset()
    longest: int = 0

    @classmethod
    def of(cls, names: Iterable[str]) -> NameSet:
        keys = {key for key in map(name_key, names) if key is not None}
        return cls(
            keys=frozenset(keys),
            firsts=frozenset(key.split(" ", 1)[0] for key in keys),
            longest=max((key.count(" ") + 1 for key in keys), default=0),
        )

    def __bool__(self) -> bool:
        return bool(self.keys)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """The names in `text`, in order and not overlapping (the longest at a place first):
        (start, end, key) each, `end` before a possessive "'s"."""
        if not self.keys:
            return []
        words = [(m.start(), m.end(), _fold(m.group())) for m in _WORD.finditer(text)]
        found: list[tuple[int, int, str]] = []
        i = 0
        while i < len(words):
            hit = self._match_at(text, words, i) if words[i][2] in self.firsts else None
            if hit is None:
                i += 1
                continue
            count, end, key = hit
            found.append((words[i][0], end, key))
            i += count
        return found

    def _match_at(self, text: str, words: list[tuple[int, int, str]], i: int) -> tuple[int, int, str] | None:
        # the words of a name are separated by whitespace only: "Ada, Lovelace" is not a name
        run = 1
        while run < self.longest and i + run < len(words):
            gap = text[words[i + run - 1][1] : words[i + run][0]]
            if not gap or not gap.isspace():
                break
            run += 1
        for count in range(run, 1, -1):
            _, end, last = words[i + count - 1]
            head = " ".join(w[2] for w in words[i : i + count - 1])
            if f"{head} {last}" in self.keys:
                return count, end, f"{head} {last}"
            if last.endswith(_POSSESSIVE):
                key = f"{head} {last[: -len(_POSSESSIVE)]}"
                if key in self.keys:
                    return count, end - len(_POSSESSIVE), key
        return None


def _in_background(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="flowstate-mask-names", daemon=True).start()


class NameRegistry:
    """The names to mask, from `loader` (thread-safe).

    :meth:`names` loads them on first use (blocking: nothing is exported unmasked while they
    load), then, once `refresh_s` seconds have passed since the last load, starts a reload with
    `spawn` (default: a daemon thread) and answers with the names it has meanwhile, so masking
    never waits on the database after the first load. A loader that raises leaves the last names
    in place (logged once until a load succeeds again) and is tried again `refresh_s` later.
    `clock`: monotonic seconds."""

    def __init__(
        self,
        loader: NameLoader | None = None,
        *,
        refresh_s: float = NAME_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        spawn: Callable[[Callable[[], None]], None] = _in_background,
    ) -> None:
        self._loader = loader
        self._refresh_s = refresh_s
        self._clock = clock
        self._spawn = spawn
        self._names = NameSet()
        self._loaded_at: float | None = None  # the last load tried (failed or not)
        self._reloading = False
        self._failing = False
        self._lock = threading.Lock()  # the fields above
        self._load_lock = threading.Lock()  # one load at a time

    def set_loader(self, loader: NameLoader | None) -> None:
        """Use `loader` from now on (None: no names, nothing masked as a name); the names are
        loaded again on next use."""
        with self._lock:
            self._loader = loader
            self._names = NameSet()
            self._loaded_at = None

    def names(self) -> NameSet:
        """The names to mask now (see the class docstring). Never raises."""
        with self._lock:
            if self._loader is None:
                return self._names
            if self._loaded_at is None:
                first = True
            elif self._reloading or self._clock() - self._loaded_at < self._refresh_s:
                return self._names
            else:
                first, self._reloading = False, True
        if first:
            self.refresh(only_if_unloaded=True)
        else:
            try:
                self._spawn(self._reload)
            except Exception:
                self._failed("could not start a reload of the names to mask")
                with self._lock:
                    self._reloading = False
                    self._loaded_at = self._clock()
        with self._lock:
            return self._names

    def refresh(self, *, only_if_unloaded: bool = False) -> bool:
        """Load the names now (blocking; one load at a time). True when they were loaded; False
        when there is no loader, the loader failed (the last names stay) or, with
        `only_if_unloaded`, another thread loaded them meanwhile. Never raises."""
        with self._load_lock:
            with self._lock:
                loader = self._loader
                if loader is None or (only_if_unloaded and self._loaded_at is not None):
                    return False
            try:
                names: NameSet | None = NameSet.of(loader())
            except Exception:
                self._failed("could not load the names to mask; masking keeps the names it had")
                names = None
            with self._lock:
                if loader is not self._loader:  # replaced while loading: its names are stale
                    return False
                self._loaded_at = self._clock()
                if names is None:
                    return False
                self._names, self._failing = names, False
                return True

    def _reload(self) -> None:
        try:
            self.refresh()
        finally:
            with self._lock:
                self._reloading = False

    def _failed(self, message: str) -> None:
        with self._lock:
            if self._failing:
                return
            self._failing = True
        logger.warning("masking: %s (logged once until a load succeeds)", message, exc_info=True)


_registry = NameRegistry()


def set_name_loader(loader: NameLoader | None) -> None:
    """Mask the full names `loader()` returns (the app sets the CRM contacts' names at start-up;
    None: mask no names). Loaded on first use, then every `NAME_REFRESH_S` seconds."""
    _registry.set_loader(loader)


def refresh_names() -> bool:
    """Load the names to mask now (blocking): the app calls it at start-up, in a worker thread,
    so the first turn does not wait for them. See :meth:`NameRegistry.refresh`."""
    return _registry.refresh()


# ---------------------------------------------------------------------------------------------
# names a trace may show
# ---------------------------------------------------------------------------------------------
class AllowList:
    """Names allowed per trace: trace id (32 lower-case hex digits) -> allowed :func:`name_key`
    forms, for `ttl_s` seconds after the last addition, at most `max_traces` traces (the least
    recently added dropped first). Thread-safe: turns add in their context, the exporter's
    thread reads."""

    def __init__(
        self,
        *,
        max_traces: int = ALLOW_MAX_TRACES,
        ttl_s: float = ALLOW_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_traces
        self._ttl = ttl_s
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, set[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, trace_id: int | str, keys: Iterable[str]) -> None:
        trace = trace_key(trace_id)
        with self._lock:
            now = self._clock()
            expires, allowed = self._items.pop(trace, (now, set()))
            if expires <= now:
                allowed = set()
            allowed.update(keys)
            self._items[trace] = (now + self._ttl, allowed)
            # the front holds the least recently added, so the first to expire
            while self._items:
                oldest_expires = next(iter(self._items.values()))[0]
                if len(self._items) <= self._max and oldest_expires > now:
                    break
                self._items.popitem(last=False)

    def get(self, trace_id: int | str | None) -> frozenset[str]:
        if trace_id is None:
            return frozenset()
        trace = trace_key(trace_id)
        with self._lock:
            entry = self._items.get(trace)
            if entry is None:
                return frozenset()
            if entry[0] <= self._clock():
                del self._items[trace]
                return frozenset()
            return frozenset(entry[1])

    def __len__(self) -> int:
        return len(self._items)


_allowed = AllowList()


def trace_key(trace_id: int | str) -> str:
    """A trace id as 32 lower-case hex digits (OpenTelemetry's int, or hex as Langfuse gives it)."""
    return format(trace_id, "032x") if isinstance(trace_id, int) else trace_id.lower()


def current_trace_id() -> str | None:
    """The trace id of the current OpenTelemetry span (32 hex digits), None outside a span."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return trace_key(context.trace_id) if context.is_valid else None


def allow_names(texts: Iterable[str], *, trace_id: int | str | None = None) -> None:
    """Let a trace show the contacts' names found in `texts` (the turn's own records: a name, a
    label holding one such as "Ada Lovelace, CTO", any text of a record): the current span's
    trace, or `trace_id`. Only names the registry masks are recorded, so the allow-list holds
    contacts' names and nothing else. A no-op outside a span or when no names are masked, in
    which case `texts` (it may be a generator) is not read. Never raises."""
    try:
        trace = trace_id if trace_id is not None else current_trace_id()
        if trace is None:
            return
        registered = _registry.names()
        if not registered:
            return
        keys = {key for text in texts for _, _, key in registered.find(text)}
        if keys:
            _allowed.add(trace, keys)
    except Exception:
        logger.warning("masking: could not allow a turn's names", exc_info=True)


def allowed_names(trace_id: int | str | None) -> frozenset[str]:
    """The :func:`name_key` forms `trace_id` may show (empty for None or an unknown trace)."""
    return _allowed.get(trace_id)


def allow_list() -> AllowList:
    """The process's allow-list (tests)."""
    return _allowed


# ---------------------------------------------------------------------------------------------
# masking
# ---------------------------------------------------------------------------------------------
def _mask(text: str, names: NameSet, allowed: Collection[str]) -> str:
    if "@" in text:
        text = _EMAIL.sub(EMAIL_MASK, text)
    text = _PHONE.sub(PHONE_MASK, text)
    if not names:
        return text
    parts: list[str] = []
    at = 0
    for start, end, key in names.find(text):
        if key in allowed:
            continue
        parts += (text[at:start], NAME_MASK)
        at = end
    if not parts:
        return text
    parts.append(text[at:])
    return "".join(parts)


def _mask_value(value: Any, names: NameSet, allowed: Collection[str]) -> Any:
    if isinstance(value, str):
        return _mask(value, names, allowed)
    if isinstance(value, Mapping):
        return {
            _mask(k, names, allowed) if isinstance(k, str) else k: _mask_value(v, names, allowed)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask_value(v, names, allowed) for v in value]
    return value


def mask_text(text: str, *, allowed: Collection[str] = frozenset()) -> str:
    """`text` with e-mail addresses replaced by "[email]", phone numbers by "[phone]" and the
    full names of the registry (:func:`set_name_loader`) by "[name]", except those whose
    :func:`name_key` is in `allowed`."""
    return _mask(text, _registry.names(), allowed)


def mask_value(value: Any, *, allowed: Collection[str] = frozenset()) -> Any:
    """`value` with :func:`mask_text` applied to every string in it (dict keys included; lists,
    tuples and dicts rebuilt; other values as they are)."""
    return _mask_value(value, _registry.names(), allowed)


def mask_data(*, data: Any, **_kwargs: Any) -> Any:
    """The Langfuse client's `mask` function (`Langfuse(mask=...)`): :func:`mask_value` of
    `data`, keeping the names the current trace may show (:func:`allow_names`). Objects that are
    not JSON-like (pydantic models, messages) are masked through their text form only when they
    are strings; Langfuse serializes the rest afterwards."""
    return mask_value(data, allowed=allowed_names(current_trace_id()))


def mask_attributes(attributes: Mapping[str, Any], *, trace_id: int | str | None = None) -> dict[str, Any]:
    """The span attributes that masking changes, with their masked values (strings, and
    sequences of strings); empty when nothing needs masking. Names that trace `trace_id` may
    show (:func:`allow_names`) are kept."""
    names = _registry.names()
    allowed = allowed_names(trace_id)
    changed: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, str):
            masked = _mask(value, names, allowed)
            if masked != value:
                changed[key] = masked
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            masked_items = [_mask(v, names, allowed) for v in value]
            if masked_items != list(value):
                changed[key] = masked_items
    return changed
