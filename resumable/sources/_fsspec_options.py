"""Which options an fsspec filesystem accepts, so that a mistyped one fails before any traffic.

fsspec filesystems take ``**kwargs`` and many pass what they do not name elsewhere: s3fs hands
it to ``aiobotocore.session.AioSession`` (where ``profile`` lands), ``client_kwargs`` to
botocore's ``create_client`` and ``config_kwargs`` to ``AioConfig``; gcsfs and most others
forward it to ``AbstractFileSystem``, which keeps only the listings-cache options; adlfs keeps
those three and drops the rest silently. A typo therefore surfaced late (s3fs: a ``TypeError``
inside the first request, reported as a ``RemoteError``) or never (adlfs).

:func:`accepted_options` reads the constructors' signatures up the class's MRO, following
``**kwargs`` where the class forwards it: to its base class when the source shows the name used
only as ``super().__init__(..., **kwargs)``, assigned into, or read by a constant key (that
key is an option then), to the callables listed in
:data:`_KWARGS_GO_TO` for the known object stores, and to the base class after the names a
known filesystem reads from it (:data:`_KWARGS_READ`). Where the ``**kwargs`` go somewhere else
(an SSH client, a filesystem we cannot read the source of) the answer is ``None``: anything is
accepted, since refusing a valid option would be worse than a late error.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import inspect
import textwrap
from collections.abc import Mapping
from typing import Any

from fsspec.spec import AbstractFileSystem

from ..errors import InvalidArgument

__all__ = ["accepted_options", "check_options"]

_BASE = "fsspec.spec.AbstractFileSystem"
# What AbstractFileSystem (its DirCache and the _Cached metaclass) does with its **kwargs.
_BASE_OPTIONS = frozenset(
    {"use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache"}
)
# Where known filesystems send the **kwargs their constructor does not name (besides the
# listings-cache options they pass to fsspec): "module:attribute" of the callables.
_KWARGS_GO_TO: dict[str, tuple[str, ...]] = {
    "s3fs.core.S3FileSystem": ("aiobotocore.session:AioSession",),
    "adlfs.spec.AzureBlobFileSystem": (),
}
# Known filesystems that read some names out of their **kwargs, then pass all of it to their
# base class (gcsfs's default ``gs`` class: Storage Control retry settings, a thread pool size).
_KWARGS_READ: dict[str, frozenset[str]] = {
    "gcsfs.extended_gcsfs.ExtendedGcsFileSystem": frozenset(
        {"retry_timeout", "retry_initial", "retry_maximum", "retry_multiplier"}
        | {"memmove_max_workers"}
    ),
}
# Options whose value is keyword arguments for another callable, checked key by key.
_NESTED: dict[tuple[str, str], str] = {
    # s3fs: create_client("s3", **init_kwargs, **client_kwargs); aiobotocore forwards to botocore
    ("s3fs.core.S3FileSystem", "client_kwargs"): "botocore.session:Session.create_client",
    ("s3fs.core.S3FileSystem", "config_kwargs"): "aiobotocore.config:AioConfig",
    ("gcsfs.core.GCSFileSystem", "session_kwargs"): "aiohttp:ClientSession",
}
_NOT_OPTIONS = frozenset({"self", "cls", "service_name"})  # create_client's first is s3fs's


def check_options(
    cls: type[AbstractFileSystem], protocol: str, options: Mapping[str, Any], *, hint: str = ""
) -> None:
    """``InvalidArgument`` naming every option in ``options`` that ``cls`` does not accept.

    Only names are shown, never values (they hold credentials); ``hint`` ends the message.
    """
    accepted = accepted_options(cls)
    unknown = [] if accepted is None else [name for name in options if name not in accepted]
    for name, value in options.items():
        target = _nested_target(cls, name)
        inner = _accepted_by(target) if target and isinstance(value, Mapping) else None
        if inner is not None:
            unknown.extend(f"{name}.{key}" for key in value if key not in inner)
    if not unknown:
        return
    hints = []
    for name in sorted(unknown):
        head, _, key = name.rpartition(".")
        pool = (_accepted_by(_nested_target(cls, head)) if head else accepted) or frozenset()
        close = difflib.get_close_matches(key, sorted(pool), n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise InvalidArgument(
        f"{protocol}:// ({cls.__module__}.{cls.__qualname__}) does not accept the storage "
        f"option{'s' if len(hints) > 1 else ''} {', '.join(hints)}{hint}"
    )


def accepted_options(cls: type[AbstractFileSystem]) -> frozenset[str] | None:
    """The option names ``cls(...)`` accepts, or ``None`` when it cannot be known."""
    if cls not in _ACCEPTED:  # a race computes the same answer twice: harmless
        _ACCEPTED[cls] = _read_accepted(cls)
    return _ACCEPTED[cls]


_ACCEPTED: dict[type[Any], frozenset[str] | None] = {}


def _read_accepted(cls: type[AbstractFileSystem]) -> frozenset[str] | None:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        qualified = f"{klass.__module__}.{klass.__qualname__}"
        if qualified == _BASE:
            return frozenset(names | _BASE_OPTIONS)
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names.update(_named(parameters))
        rest = next((p.name for p in parameters if p.kind is p.VAR_KEYWORD), None)
        if rest is None:
            return frozenset(names)
        if qualified in _KWARGS_GO_TO:
            for target in _KWARGS_GO_TO[qualified]:
                more = _accepted_by(target)
                if more is None:
                    return None
                names.update(more)
            return frozenset(names | _BASE_OPTIONS)
        if qualified in _KWARGS_READ:
            names.update(_KWARGS_READ[qualified])
        else:
            read = _forwarded(init, rest)
            if read is None:
                return None
            names.update(read)
    return None


def _named(parameters: Any) -> set[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in kinds and p.name not in _NOT_OPTIONS}


def _nested_target(cls: type[AbstractFileSystem], option: str) -> str | None:
    for klass in cls.__mro__:
        target = _NESTED.get((f"{klass.__module__}.{klass.__qualname__}", option))
        if target:
            return target
    return None


@functools.lru_cache(maxsize=64)
def _accepted_by(target: str | None) -> frozenset[str] | None:
    """The keyword names of the callable ``"module:attr.attr"`` (a class: its constructor);
    ``None`` when it takes any. botocore's ``Config`` takes its ``OPTION_DEFAULTS``."""
    if target is None:
        return None
    module, _, path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in path.split("."):
            obj = getattr(obj, part)
        parameters = inspect.signature(obj).parameters.values()
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    names = _named(parameters)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        defaults = getattr(obj, "OPTION_DEFAULTS", None)
        if not isinstance(defaults, Mapping):
            return None
        names.update(defaults)
    return frozenset(names)


def _forwarded(init: Any, rest: str) -> frozenset[str] | None:
    """The names ``init`` reads out of ``**rest`` by a constant key (``rest.pop("x")``,
    ``rest.get("x")``, ``rest["x"]``), when its source otherwise only passes it on to a base
    ``__init__`` (``super().__init__(..., **rest)``) or assigns into it; ``None`` when it uses
    ``rest`` in any other way (or the source cannot be read)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return None
    allowed: set[int] = set()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _calls_an_init(node):
            allowed.update(id(k.value) for k in node.keywords if k.arg is None)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            allowed.add(id(node.value))
            if isinstance(node.ctx, ast.Load):
                read.add(str(node.slice.value))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            allowed.add(id(node.func.value))
            read.add(str(node.args[0].value))
    uses = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == rest]
    if not uses or any(id(n) not in allowed for n in uses):
        return None
    return frozenset(read)


def _calls_an_init(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Attribute) and call.func.attr == "__init__"
