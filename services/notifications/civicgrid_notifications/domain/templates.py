"""Message templates (消息模板): what a notification says, per locale and channel. Pure: Jinja2
(a pure library, in its sandbox) and no I/O.

A `Template` has a slug `name` and `variants` by locale: `zh-CN` (required: the fallback of every
other locale) and `en` (optional). A variant holds the texts of the channels the template is
used on (`in_app`, `email`, `sms`, `wechat`; `webhook` takes no text: its payload is thin and
fixed). Every text field is a Jinja2 template rendered against one event:

    event       {"id", "type", "subject", "time" (ISO instant), "data"}: the CloudEvent
    <key>       every key of the event's data, at the top level: {{ case_number }}
    recipient   {"kind"} and, when it is known, "name": {{ recipient.name | default('您') }}
    locale      the locale rendered ("zh-CN" or "en")

plus the filters `china_time` (an ISO instant to "2026-03-04 18:00", Asia/Shanghai) and
`china_date` ("2026-03-04"). A name the event does not have is an error (StrictUndefined), not
an empty string; a null value renders empty.

**The sandbox.** Templates are written by district administrators and rendered with data from
citizens, so they run in Jinja2's `ImmutableSandboxedEnvironment` (no `__class__`, no private
attributes, no mutation of the data), further narrowed here so that a template cannot exhaust the
service either: no `{% set %}`, `{% macro %}`, `{% include %}` or the other tags that bind or load
(only `if` and one level of `for`), no globals (`range`, `lipsum`, ...), a whitelist of filters
(none that pads, wraps or formats: `center`, `indent`, `format`, `safe`...), a whitelist of methods
on data values (no `format`, `ljust`, `replace`...), bounded `*`, `**`, `join` and `replace`, no
`%` on strings, and output that stops at the field's limit. Only `email.html` is autoescaped
(and `safe` is not available: data stays escaped); every other field is plain text, which its
channel shows as text.

**Limits** are the providers': an SMS variable at most 35 characters (Aliyun SendSms), a WeChat
subscribe-message value 20 or 32 (see `wechat_value_limit`), and what an inbox or a mail client
shows. A template's source may be at most twice its field's rendered limit.

`validate_template` reads a template from JSON (a district's PUT), and renders every variant and
channel against sample events of its event types: every problem is collected and refused at once
as a `TemplateRejected` naming each field (`variants/zh-CN/email/subject`). `Template.to_dict()`
is the form stored in events; `Template.from_dict` reads it back without judging it again.
"""
from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import jinja2
from jinja2 import nodes
from jinja2.filters import FILTERS, do_replace, sync_do_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from civicgrid_common.calendar.working_days import CHINA_TZ
from civicgrid_common.problems import Refusal, RuleViolation, body_error

__all__ = [
    "Channel", "ZH_CN", "EN", "LOCALES", "NAME_PATTERN", "MAX_FIELDS", "MAX_VALUE", "SMS_PARAM_LIMIT",
    "InAppText", "EmailText", "SmsText", "WechatText", "WebhookText", "ChannelTexts", "Template",
    "RenderedMessage", "RenderFailed", "TemplateRejected", "FieldErrors", "validate_template",
    "render_context", "china_time", "china_date", "wechat_value_limit",
]


class Channel(enum.StrEnum):
    IN_APP = "in_app"  # the civicgrid inbox (站内信)
    EMAIL = "email"
    SMS = "sms"  # Aliyun SendSms: an approved template with variables
    WECHAT = "wechat"  # a WeChat subscribe message (订阅消息)
    WEBHOOK = "webhook"  # a department system's signed webhook: no text


ZH_CN = "zh-CN"
EN = "en"
LOCALES = (ZH_CN, EN)  # zh-CN first: the fallback
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")  # a template's (and a rule's) slug
MAX_FIELDS = 20  # variables of an SMS, fields of a WeChat message
MAX_VALUE = 100_000  # the longest string or list an expression may build while rendering
MAX_ERRORS = 100  # problems listed in one refusal
SMS_PARAM_LIMIT = 35  # Aliyun: a variable's value is at most 35 characters

# A sample or delivery whose output runs past this many times the limit stops rendering there.
_OVERRUN = 4


# ---------------------------------------------------------------------------- refusals


class RenderFailed(ValueError):
    """A field could not be rendered for an event: its source does not compile, it names what
    the event lacks, the sandbox refused it, or its text is too long or not of its form. `path`
    is the field's place in the template's JSON (`variants/zh-CN/email/subject`); `code` one of
    syntax_error, not_allowed, sandbox, undefined_variable, render_error, too_long, empty,
    invalid_value, channel_not_in_template."""

    def __init__(self, path: Sequence[str], code: str, detail: str) -> None:
        self.path = tuple(path)
        self.code = code
        self.detail = detail
        super().__init__(f"{'/'.join(self.path)}: {detail}")


class TemplateRejected(RuleViolation):
    """A template that does not hold; `errors` name each field (JSON Pointer, detail)."""

    refusal = Refusal.INVALID

    def __init__(self, errors: Sequence[Mapping[str, Any]], *, code: str = "invalid_template",
                 message: str = "The message template does not hold.") -> None:
        super().__init__(code, message, errors=errors)


class FieldErrors:
    """The problems found in an input, each as an `errors` item naming its member
    (`{"pointer": "#/variants/zh-CN/sms/params/code", "detail": ...}`), the same problem once,
    at most MAX_ERRORS of them."""

    def __init__(self, limit: int = MAX_ERRORS) -> None:
        self._items: list[dict[str, Any]] = []
        self._seen: set[Any] = set()
        self._limit = limit
        self._more = False

    def add(self, path: Sequence[str | int], detail: str, *, key: Any = None) -> None:
        """Note a problem at `path` (members of the JSON, e.g. ("channels", 2)); `key` says which
        problems are the same one (default: the path and the detail)."""
        key = key if key is not None else (tuple(path), detail)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self._items) >= self._limit:
            self._more = True
            return
        self._items.append(body_error([str(p) for p in path], detail))

    def __bool__(self) -> bool:
        return bool(self._items)

    def items(self) -> list[dict[str, Any]]:
        more = [{"pointer": "#", "detail": f"more than {self._limit} problems: correct these first"}]
        return [*self._items, *(more if self._more else [])]


# ---------------------------------------------------------------------------- the texts


def wechat_value_limit(name: str) -> int:
    """The longest value a WeChat subscribe-message field takes. WeChat bounds a value by its
    field's kind, the name without its number: `thing` (事物) at most 20 characters,
    `character_string` (字符串: case numbers, codes) at most 32, and here every other kind at
    20 (time, date, phrase, name, ...). Some kinds are bounded tighter by WeChat itself
    (phrase and symbol 5, car_number 8, name 10) or take only a format (time, date, amount);
    WeChat refuses those values when sending, so keep such fields short."""
    kind = name.rstrip("0123456789")
    return 32 if kind == "character_string" else 20


def _sms_param_limit(name: str) -> int:
    return SMS_PARAM_LIMIT


_LINK = re.compile(r"^(?:/(?![/\\])[^\s\\]*|https://[^\s/\\?#@]+(?:[/?#][^\s\\]*)?)$")
_PAGE = re.compile(r"^/?[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)*(?:\?[^\s#\\]*)?$")
_SIGN_NAME = re.compile(r"^[^\s{}<>\[\]【】\x00-\x1f\x7f]{2,12}$")
_SMS_TEMPLATE_CODE = re.compile(r"^SMS_[0-9]{1,20}$")
_WECHAT_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_SMS_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_WECHAT_FIELD_NAME = re.compile(r"^[a-z]+(?:_[a-z]+)*[0-9]{1,3}$")


def _check(pattern: re.Pattern[str], form: str) -> Callable[[str], str | None]:
    return lambda value: None if pattern.match(value) else f"{value[:80]!r} is not {form}"


@dataclass(frozen=True)
class _Spec:
    """A text field of a channel: rendered from Jinja (`jinja`) or kept as written."""

    name: str
    limit: int  # characters, after rendering
    required: bool = True
    jinja: bool = True
    html: bool = False  # rendered with autoescape
    one_line: bool = False  # line breaks and control characters become spaces
    check: Callable[[str], str | None] | None = None  # a problem with the value, or None


@dataclass(frozen=True)
class _MapSpec:
    """A channel's named variables (SMS params, WeChat data): name -> Jinja source."""

    name: str
    key: re.Pattern[str]
    key_form: str
    limit: Callable[[str], int]
    min_items: int


_SPECS: Mapping[Channel, tuple[tuple[_Spec, ...], _MapSpec | None]] = {
    Channel.IN_APP: ((
        _Spec("title", 120, one_line=True),
        _Spec("body", 2000),
        _Spec("link", 1000, required=False, one_line=True,
              check=_check(_LINK, "a link: a path of this site (/cases/...) or an https URL")),
    ), None),
    Channel.EMAIL: ((
        _Spec("subject", 200, one_line=True),
        _Spec("text", 20000),
        _Spec("html", 50000, required=False, html=True),
    ), None),
    Channel.SMS: ((
        _Spec("sign_name", 12, jinja=False,
              check=_check(_SIGN_NAME, "an approved signature: 2 to 12 characters, without 【】 or braces")),
        _Spec("template_code", 24, jinja=False, check=_check(_SMS_TEMPLATE_CODE, "an SMS template code like SMS_123456789")),
        _Spec("preview", 500, required=False),
    ), _MapSpec("params", _SMS_PARAM_NAME, "a variable name of the approved template (letters, digits, _)",
                _sms_param_limit, 0)),
    Channel.WECHAT: ((
        _Spec("template_id", 128, jinja=False, check=_check(_WECHAT_TEMPLATE_ID, "a WeChat template id")),
        _Spec("page", 512, required=False, one_line=True,
              check=_check(_PAGE, "a mini-program page path like pages/case/detail?id=...")),
    ), _MapSpec("data", _WECHAT_FIELD_NAME, "a field of the WeChat template like thing1 or character_string2",
                wechat_value_limit, 1)),
    Channel.WEBHOOK: ((), None),
}


@dataclass(frozen=True)
class _Text:
    """A channel's texts in one locale. `to_dict` is their JSON form (absent fields left out)."""

    channel: ClassVar[Channel]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = dict(value) if isinstance(value, Mapping) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        names = {f.name for f in fields(cls)}
        return cls(**{k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class InAppText(_Text):
    channel: ClassVar[Channel] = Channel.IN_APP
    title: str
    body: str
    link: str | None = None  # /cases/{{ event.subject }} or an https URL


@dataclass(frozen=True)
class EmailText(_Text):
    channel: ClassVar[Channel] = Channel.EMAIL
    subject: str
    text: str  # the plain-text part, always sent
    html: str | None = None  # the HTML part, autoescaped


@dataclass(frozen=True)
class SmsText(_Text):
    """Aliyun SendSms: the approved signature and template, and the template's variables."""

    channel: ClassVar[Channel] = Channel.SMS
    sign_name: str
    template_code: str
    params: Mapping[str, str] = field(default_factory=dict)
    preview: str | None = None  # the whole approved text, for the inbox and the audit trail


@dataclass(frozen=True)
class WechatText(_Text):
    channel: ClassVar[Channel] = Channel.WECHAT
    template_id: str
    data: Mapping[str, str]  # thing1 -> {{ affair_name }}
    page: str | None = None  # the mini-program page opened from the message


@dataclass(frozen=True)
class WebhookText(_Text):
    channel: ClassVar[Channel] = Channel.WEBHOOK


_TEXT_CLASSES: Mapping[Channel, type[_Text]] = {
    cls.channel: cls for cls in (InAppText, EmailText, SmsText, WechatText, WebhookText)
}


@dataclass(frozen=True)
class ChannelTexts:
    """One locale's variant of a template: a text per channel it is used on."""

    in_app: InAppText | None = None
    email: EmailText | None = None
    sms: SmsText | None = None
    wechat: WechatText | None = None
    webhook: WebhookText | None = None

    def get(self, channel: Channel | str) -> Any:
        return getattr(self, Channel(channel).value)

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(c for c in Channel if self.get(c) is not None)

    def to_dict(self) -> dict[str, Any]:
        return {c.value: self.get(c).to_dict() for c in self.channels}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelTexts:
        return cls(**{Channel(c).value: _TEXT_CLASSES[Channel(c)].from_dict(t) for c, t in data.items()})


@dataclass(frozen=True)
class _Item:
    """One source to render: a field (`key` None) or a variable of params/data."""

    member: str
    key: str | None
    source: str
    limit: int
    required: bool
    jinja: bool
    html: bool
    one_line: bool
    check: Callable[[str], str | None] | None

    @property
    def path(self) -> tuple[str, ...]:
        return (self.member,) if self.key is None else (self.member, self.key)


def _items(channel: Channel, text: _Text) -> Iterator[_Item]:
    specs, map_spec = _SPECS[channel]
    for spec in specs:
        value = getattr(text, spec.name)
        if value is not None:
            yield _Item(spec.name, None, value, spec.limit, spec.required, spec.jinja, spec.html, spec.one_line,
                        spec.check)
    if map_spec is not None:
        for key, source in getattr(text, map_spec.name).items():
            yield _Item(map_spec.name, key, source, map_spec.limit(key), True, True, False, True, None)


# ---------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class RenderedMessage:
    """A template rendered for one event, channel and locale. `fields` by channel:
    in_app {title, body, link?}; email {subject, text, html?}; sms {sign_name, template_code,
    params: {name: value}, preview?}; wechat {template_id, data: {name: value}, page?};
    webhook {}. `locale` is the one rendered (after falling back to zh-CN)."""

    template: str
    channel: Channel
    locale: str
    fields: Mapping[str, Any]


def render_context(event: Mapping[str, Any], *, recipient: Mapping[str, Any] | None = None,
                   locale: str = ZH_CN) -> dict[str, Any]:
    """What a template sees: `event` (id, type, subject, time, data), the data's keys at the top
    level, `about` (what notifications remembers of the event's case or incident, domain/facts.py),
    `recipient` (kind; name only when known) and `locale`."""
    if not isinstance(event, Mapping) or not isinstance(event.get("data"), Mapping):
        raise TypeError("an event to render is a mapping with a `data` mapping")
    data = dict(event["data"])
    time = event.get("time")
    view = {
        "id": None if event.get("id") is None else str(event["id"]),
        "type": event.get("type"),
        "subject": event.get("subject"),
        "time": time.isoformat() if isinstance(time, datetime) else time,
        "data": data,
    }
    who: dict[str, Any] = {"kind": None}
    if recipient is not None:
        who["kind"] = recipient.get("kind")
        if recipient.get("name"):
            who["name"] = recipient["name"]
    context = {k: v for k, v in data.items() if isinstance(k, str)}
    about = event.get("about")
    context.update(event=view, about=dict(about) if isinstance(about, Mapping) else {}, recipient=who, locale=locale)
    return context


def _instant(value: Any, name: str) -> datetime:
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined: raises, naming what is missing
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}: {value[:40]!r} is not an ISO 8601 instant") from None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} takes an instant with its UTC offset, like 2026-03-04T10:00:00Z; got {value!r:.40}")
    return value


def china_time(value: Any) -> str:
    """An instant as China's clocks show it: '2026-03-04 18:00' (Asia/Shanghai)."""
    return _instant(value, "china_time").astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def china_date(value: Any) -> str:
    """The day of an instant in China ('2026-03-04'); a calendar date stays as it is."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and _DATE.match(value):
        return date.fromisoformat(value).isoformat()
    return _instant(value, "china_date").astimezone(CHINA_TZ).date().isoformat()


def _bounded_value(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict)) and len(value) > MAX_VALUE:
        raise SecurityError(f"a value of more than {MAX_VALUE} characters or items is not built in a template")
    return value


def _bounded(filter_: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(filter_)  # keeps jinja_pass_arg (pass_eval_context, ...)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        return _bounded_value(filter_(*args, **kwargs))

    return bounded


@jinja2.pass_eval_context
def _join(eval_ctx: nodes.EvalContext, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)
    size = len(str(d)) * max(len(items) - 1, 0)
    if attribute is None:
        size += sum(len(str(item)) for item in items)
    if size > MAX_VALUE:
        raise SecurityError(f"join would build {size} characters; at most {MAX_VALUE}")
    return _bounded_value(sync_do_join(eval_ctx, items, d, attribute))


@jinja2.pass_eval_context
def _replace(eval_ctx: nodes.EvalContext, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old_text, new_text = str(s), str(old), str(new)
    hits = len(text) + 1 if old_text == "" else text.count(old_text)
    if count is not None and count >= 0:
        hits = min(hits, count)
    size = len(text) + hits * (len(new_text) - len(old_text))
    if size > MAX_VALUE:
        raise SecurityError(f"replace would build {size} characters; at most {MAX_VALUE}")
    return _bounded_value(do_replace(eval_ctx, s, old, new, count))


# Filters that do not pad, wrap, format or mark text safe; `join` and `replace` bounded.
_FILTERS = (
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
    "groupby", "int", "items", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
    "reverse", "round", "select", "selectattr", "sort", "string", "striptags", "sum", "title", "tojson", "trim",
    "truncate", "unique", "upper", "urlencode", "wordcount",
)

# The methods a template may call on data values (JSON: strings, numbers, lists, objects).
# Nothing that pads, repeats or formats (format, ljust, zfill, replace, join: use the filters).
_STR_METHODS = frozenset({
    "upper", "lower", "strip", "lstrip", "rstrip", "title", "capitalize", "casefold", "swapcase", "startswith",
    "endswith", "split", "rsplit", "splitlines", "partition", "rpartition", "find", "rfind", "index", "rindex",
    "count", "removeprefix", "removesuffix", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower",
    "isnumeric", "isdecimal",
})
_METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, _STR_METHODS),
    ((bool, int, float), frozenset()),
    (dict, frozenset({"items", "keys", "values", "get"})),
    ((list, tuple), frozenset({"index", "count"})),
)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, narrowed: the methods of data values are a whitelist, and the
    operators that multiply a value's size are bounded."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        for types, allowed in _METHODS:
            if isinstance(obj, types):
                return attr in allowed and super().is_safe_attribute(obj, attr, value)
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format is not a method a template may call (is_safe_attribute)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("formatting a string with % is not available in a template")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_VALUE:
                    raise SecurityError(f"a value of more than {MAX_VALUE} characters or items is not built")
        if operator == "**" and isinstance(right, (int, float)):
            bits = left.bit_length() if isinstance(left, int) else 64
            if abs(right) > 1024 or bits * abs(right) > 4096:
                raise SecurityError("a power that large is not computed in a template")
        return _bounded_value(super().call_binop(context, operator, left, right))

    def call(self, context: jinja2.runtime.Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        return _bounded_value(super().call(context, obj, *args, **kwargs))


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _environment(*, html: bool) -> _Sandbox:
    env = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=html, finalize=_finalize, trim_blocks=True,
                   lstrip_blocks=True, auto_reload=False, cache_size=0)
    env.globals.clear()  # no range, lipsum, cycler, joiner, namespace, dict
    env.filters = {name: _bounded(FILTERS[name]) for name in _FILTERS}
    env.filters.update(join=_join, replace=_replace, china_time=china_time, china_date=china_date)
    return env


_TEXT_ENV = _environment(html=False)
_HTML_ENV = _environment(html=True)

# Tags a notification template may not use: they bind names, define or load templates, or
# change escaping (only `if` and `for` remain).
_TAG_NAMES: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Macro, "macro"), (nodes.CallBlock, "call"), (nodes.FilterBlock, "filter"), (nodes.With, "with"),
    (nodes.Assign, "set"), (nodes.AssignBlock, "set"), (nodes.Include, "include"), (nodes.Import, "import"),
    (nodes.FromImport, "from"), (nodes.Extends, "extends"), (nodes.Block, "block"),
    (nodes.EvalContextModifier, "autoescape"), (nodes.Scope, "autoescape"),
)


def _line(node: nodes.Node) -> str:
    lineno = getattr(node, "lineno", None)
    if lineno is None:
        lineno = next((n.lineno for n in node.find_all(nodes.Node) if getattr(n, "lineno", None)), None)
    return f"line {lineno}: " if lineno else ""


def _tree_problem(node: nodes.Node, in_loop: bool = False) -> tuple[str, str] | None:
    """(code, detail) for the first construct a notification template may not use."""
    if isinstance(node, nodes.Stmt) and not isinstance(node, (nodes.Output, nodes.If, nodes.For)):
        tag = next((name for cls, name in _TAG_NAMES if isinstance(node, cls)), type(node).__name__.lower())
        return "not_allowed", f"{_line(node)}{{% {tag} %}} is not available in a message template"
    if isinstance(node, nodes.For):
        if in_loop:
            return "not_allowed", f"{_line(node)}loops do not nest in a message template"
        if node.recursive:
            return "not_allowed", f"{_line(node)}recursive loops are not available in a message template"
    for child in node.iter_child_nodes():  # first, so that ''.__class__.__mro__ names __class__
        problem = _tree_problem(child, in_loop or isinstance(node, nodes.For))
        if problem is not None:
            return problem
    name = None
    if isinstance(node, nodes.Getattr):
        name = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        name = node.arg.value
    if name is not None and name.startswith("_"):
        return "sandbox", f"{_line(node)}{name!r} may not be read in a template (sandbox)"
    return None


def _compile(source: str, *, html: bool, path: Sequence[str]) -> jinja2.Template:
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        tree = env.parse(source)
        problem = _tree_problem(tree)
        if problem is not None:
            raise RenderFailed(path, *problem)
        return env.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:  # an unknown filter too (TemplateAssertionError)
        raise RenderFailed(path, "syntax_error", f"syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise RenderFailed(path, "syntax_error", "nested too deeply") from None


class _Overrun(Exception):
    pass


def _run(template: jinja2.Template, context: Mapping[str, Any], cap: int) -> str:
    parts, size = [], 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > cap:
            raise _Overrun
        parts.append(chunk)
    return "".join(parts)


_LINE_BREAKS = re.compile(r"\s*[\x00-\x1f\x7f]+\s*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _normalised(text: str, one_line: bool) -> str:
    if one_line:
        return _LINE_BREAKS.sub(" ", text).strip()
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _pick(variants: Mapping[str, ChannelTexts], channel: Channel, locale: Any) -> str | None:
    wanted = [locale, locale.split("-")[0]] if isinstance(locale, str) else []
    for candidate in (*wanted, ZH_CN):
        texts = variants.get(candidate)
        if texts is not None and texts.get(channel) is not None:
            return candidate
    return None


# ---------------------------------------------------------------------------- the template


@dataclass(frozen=True)
class Template:
    """A named message template: its texts by locale and channel. Render it with `render`; each
    source is compiled once per Template and kept."""

    name: str
    variants: Mapping[str, ChannelTexts]
    _compiled: dict[tuple[str, bool], jinja2.Template] = field(default_factory=dict, init=False, repr=False,
                                                                compare=False)

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels with a text (in zh-CN, which every locale falls back to)."""
        texts = self.variants.get(ZH_CN)
        return texts.channels if texts is not None else ()

    def has_text_for(self, channel: Channel | str) -> bool:
        """Whether the template can be sent on `channel` (webhooks need no text)."""
        channel = Channel(channel)
        return channel is Channel.WEBHOOK or channel in self.channels

    def render(self, channel: Channel | str, event: Mapping[str, Any], *, locale: str = ZH_CN,
               recipient: Mapping[str, Any] | None = None) -> RenderedMessage:
        """The texts of `channel` for `event`, in `locale` (an exact match, then its language
        ('en-GB' -> 'en'), then zh-CN). Raises RenderFailed for a field that cannot be rendered
        for this event or is too long."""
        channel = Channel(channel)
        used = _pick(self.variants, channel, locale)
        if channel is Channel.WEBHOOK:
            return RenderedMessage(self.name, channel, used or ZH_CN, {})
        if used is None:
            raise RenderFailed((channel.value,), "channel_not_in_template",
                               f"template {self.name!r} has no text for {channel.value}")
        context = render_context(event, recipient=recipient, locale=used)
        out: dict[str, Any] = {}
        for item in _items(channel, self.variants[used].get(channel)):
            value = self._render(item, context, ("variants", used, channel.value, *item.path))
            if value is None:
                continue
            if item.key is None:
                out[item.member] = value
            else:
                out.setdefault(item.member, {})[item.key] = value
        map_spec = _SPECS[channel][1]
        if map_spec is not None:
            out.setdefault(map_spec.name, {})
        return RenderedMessage(self.name, channel, used, out)

    def _compiled_source(self, item: _Item, path: Sequence[str]) -> jinja2.Template:
        key = (item.source, item.html)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _compile(item.source, html=item.html, path=path)
        return compiled

    def _render(self, item: _Item, context: Mapping[str, Any], path: Sequence[str]) -> str | None:
        """One field's text; None for an optional field that renders empty."""
        if not item.jinja:
            return item.source
        compiled = self._compiled_source(item, path)
        cap = item.limit * _OVERRUN + 1000
        try:
            text = _normalised(_run(compiled, context, cap), item.one_line)
        except _Overrun:
            raise RenderFailed(path, "too_long", f"renders to more than {cap} characters; "
                                                 f"the limit is {item.limit}") from None
        except SecurityError as exc:
            raise RenderFailed(path, "sandbox", f"not allowed in a template (sandbox): {exc}") from None
        except jinja2.UndefinedError as exc:
            raise RenderFailed(path, "undefined_variable", f"undefined: {exc.message}") from None
        except Exception as exc:  # the template's own fault on this data: a bad filter argument, 1/0...
            raise RenderFailed(path, "render_error", f"{type(exc).__name__}: {str(exc)[:200]}") from None
        if not text:
            if item.required:
                raise RenderFailed(path, "empty", "renders empty")
            return None
        if len(text) > item.limit:
            raise RenderFailed(path, "too_long", f"renders to {len(text)} characters; the limit is {item.limit}")
        if item.check is not None and (problem := item.check(text)) is not None:
            raise RenderFailed(path, "invalid_value", problem)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "variants": {locale: self.variants[locale].to_dict() for locale in LOCALES if locale in self.variants}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Template:
        """A template as an event stored it (to_dict): read, not judged again."""
        return cls(data["name"], {locale: ChannelTexts.from_dict(v) for locale, v in data["variants"].items()})


# ---------------------------------------------------------------------------- validation


def _key(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 64 else text[:61] + "..."


def _parse_text(channel: Channel, raw: Any, path: tuple[str, ...], errors: FieldErrors,
                checks: list[tuple[tuple[str, ...], _Item]]) -> _Text | None:
    """A channel's text, or None (its problems noted); every well-formed Jinja source goes to
    `checks` to be compiled and rendered, its siblings' problems notwithstanding."""
    if not isinstance(raw, Mapping):
        errors.add(path, f"the {channel.value} text is an object")
        return None
    specs, map_spec = _SPECS[channel]
    known = {s.name for s in specs} | ({map_spec.name} if map_spec else set())
    ok = True
    for member in raw:
        if member not in known:
            allowed = ", ".join(sorted(known)) or "no members (webhooks take no text)"
            errors.add((*path, _key(member)), f"not a member of the {channel.value} text; allowed: {allowed}")
            ok = False
    values: dict[str, Any] = {}
    for spec in specs:
        value = raw.get(spec.name)
        where = (*path, spec.name)
        if value is None:
            if spec.required:
                errors.add(where, "required")
                ok = False
            continue
        if not isinstance(value, str):
            errors.add(where, "must be text")
            ok = False
            continue
        if spec.jinja:
            if len(value) > 2 * spec.limit:
                errors.add(where, f"the template is {len(value)} characters long; at most {2 * spec.limit}")
                ok = False
                continue
            if spec.required and not value.strip():
                errors.add(where, "must not be empty")
                ok = False
                continue
            checks.append((where, _Item(spec.name, None, value, spec.limit, spec.required, True, spec.html,
                                        spec.one_line, spec.check)))
        elif spec.check is not None and (problem := spec.check(value)) is not None:
            errors.add(where, problem)
            ok = False
            continue
        values[spec.name] = value
    if map_spec is not None:
        where = (*path, map_spec.name)
        entries = raw.get(map_spec.name)
        if entries is None and map_spec.min_items == 0:
            entries = {}
        if not isinstance(entries, Mapping):
            errors.add(where, "required: an object of name -> template" if entries is None
                       else "an object of name -> template")
            return None
        if len(entries) > MAX_FIELDS or len(entries) < map_spec.min_items:
            errors.add(where, f"{map_spec.min_items} to {MAX_FIELDS} entries; {len(entries)} given")
            ok = False
        else:
            for key, source in entries.items():
                at = (*where, _key(key))
                if not isinstance(key, str) or not map_spec.key.match(key):
                    errors.add(at, f"not {map_spec.key_form}")
                    ok = False
                    continue
                limit = map_spec.limit(key)
                if not isinstance(source, str) or not source.strip():
                    errors.add(at, "must be a template (text), not empty")
                    ok = False
                elif len(source) > 2 * limit:
                    errors.add(at, f"the template is {len(source)} characters long; at most {2 * limit}")
                    ok = False
                else:
                    checks.append((at, _Item(map_spec.name, key, source, limit, True, True, False, True, None)))
            values[map_spec.name] = dict(entries)
    return _TEXT_CLASSES[channel](**values) if ok else None


def _parse(raw: Any, errors: FieldErrors,
           checks: list[tuple[tuple[str, ...], _Item]]) -> tuple[str, dict[str, ChannelTexts]]:
    if not isinstance(raw, Mapping):
        errors.add((), "a template is an object with name and variants")
        return "", {}
    for member in raw:
        if member not in ("name", "variants"):
            errors.add((_key(member),), "not a member of a template; allowed: name, variants")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        errors.add(("name",), "required" if name is None else
                   "a template name is 1 to 64 lower-case letters, digits or _.- beginning with a letter")
        name = ""
    variants_raw = raw.get("variants")
    variants: dict[str, ChannelTexts] = {}
    if not isinstance(variants_raw, Mapping):
        errors.add(("variants",), "required: an object of locale -> texts" if variants_raw is None
                   else "an object of locale -> texts")
        return name, variants
    if len(variants_raw) > len(LOCALES):
        errors.add(("variants",), f"at most {len(LOCALES)} locales: {', '.join(LOCALES)}")
        return name, variants
    if ZH_CN not in variants_raw:
        errors.add(("variants", ZH_CN), "required: zh-CN is every other locale's fallback")
    for locale, texts_raw in variants_raw.items():
        where = ("variants", _key(locale))
        if locale not in LOCALES:
            errors.add(where, f"not a locale of civicgrid; allowed: {', '.join(LOCALES)}")
            continue
        if not isinstance(texts_raw, Mapping) or not texts_raw:
            errors.add(where, "an object of channel -> text, with at least one channel")
            continue
        parsed: dict[str, _Text] = {}
        for channel_name, text_raw in texts_raw.items():
            try:
                channel = Channel(channel_name)
            except ValueError:
                errors.add((*where, _key(channel_name)),
                           f"not a channel; allowed: {', '.join(c.value for c in Channel)}")
                continue
            text = _parse_text(channel, text_raw, (*where, channel.value), errors, checks)
            if text is not None:
                parsed[channel.value] = text
        variants[locale] = ChannelTexts(**parsed)
    zh_cn = variants_raw.get(ZH_CN)
    for locale, texts_raw in variants_raw.items():
        if locale != ZH_CN and locale in LOCALES and isinstance(texts_raw, Mapping) and isinstance(zh_cn, Mapping):
            for channel_name in texts_raw:
                if channel_name in {c.value for c in Channel} and channel_name not in zh_cn:
                    errors.add(("variants", locale, channel_name),
                               f"zh-CN has no {channel_name} text: zh-CN is the fallback of every channel")
    return name, variants


def _sample_label(sample: Mapping[str, Any], index: int) -> str:
    kind = sample.get("type")
    return f"sample {index} ({kind})" if isinstance(kind, str) else f"sample {index}"


def validate_template(raw: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]) -> Template:
    """Read a template from JSON and render every variant and channel against every sample
    event (CloudEvent-like mappings: id, type, subject, time, data), recipient unnamed (so a
    template provides for a recipient without a name). All the problems are refused together:
    TemplateRejected, each naming its field. Without samples only the sources are checked (their
    syntax and the sandbox's static rules): the application passes the examples of the event
    types the template is for."""
    for i, sample in enumerate(samples):
        if not isinstance(sample, Mapping) or not isinstance(sample.get("data"), Mapping):
            raise TypeError(f"sample {i} is not an event: a mapping with a `data` mapping")
    errors = FieldErrors()
    checks: list[tuple[tuple[str, ...], _Item]] = []
    name, variants = _parse(raw, errors, checks)
    template = Template(name, variants)
    contexts = {locale: [render_context(s, locale=locale) for s in samples] for locale in LOCALES}
    for path, item in checks:
        try:
            template._compiled_source(item, path)
        except RenderFailed as exc:
            errors.add(path, exc.detail)
            continue
        for i, context in enumerate(contexts[path[1]]):
            try:
                template._render(item, context, path)
            except RenderFailed as exc:
                # one problem of a field once, with the first sample it shows in
                errors.add(path, f"{exc.detail} (with {_sample_label(samples[i], i)})", key=(path, exc.detail))
    if errors:
        raise TemplateRejected(errors.items())
    return template
