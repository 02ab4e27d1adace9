"""Rendering the MindFormers YAML from the Jinja templates in ``templates/``.

StrictUndefined turns a missing value into an error; every template error names the template file
and line. The rendered text must parse as YAML; ``--set`` paths into the tree are applied after
parsing and the tree is then dumped again (comments of the template are lost only in that case).
Nodes that differ only in their host are rendered and parsed once (``render_yaml_per_host``).
"""

from __future__ import annotations

import json
import re
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2
import yaml

from orchestrator.errors import PlanError
from orchestrator.plan.overrides import Override, apply_to_tree

_HOST_SAFE = re.compile(r"[A-Za-z0-9._:-]+")  # IPv4/IPv6 addresses and host names
_HOST_MARKS = ("orchestrate-host-mark", "xhost")  # stand-ins for the host
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")  # never a number, never YAML syntax
_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}  # read as bool/None
TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_scalar(value: Any) -> str:
    """A Python value as a one-line YAML value (JSON flow syntax is valid YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):  # PyYAML (YAML 1.1) reads 3e-05 as a string: write 3.0e-05
        mantissa, e, exponent = repr(value).partition("e")
        if not mantissa.lstrip("-").replace(".", "").isdigit():
            raise ValueError(f"{value!r} has no YAML form")
        return (mantissa if "." in mantissa else mantissa + ".0") + (e + exponent if e else "")
    if isinstance(value, (int, list, tuple)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML11_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


@lru_cache(maxsize=4)
def environment(template_dir: str = str(TEMPLATE_DIR)) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["y"] = yaml_scalar
    return env


def _template_line(exc: BaseException) -> str:
    """``file:line`` of the innermost template frame in ``exc``'s traceback (Jinja rewrites frames)."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):
            where = f"{Path(frame.filename).name}:{frame.lineno}"
    return where


def render_text(template: str, context: Mapping[str, Any], template_dir: Path = TEMPLATE_DIR) -> str:
    """Render ``template`` with ``context``; PlanError naming the template line on any error."""
    try:
        return environment(str(template_dir)).get_template(template).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise PlanError(f"template {exc.filename or exc.name}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise PlanError(f"template {exc.name} not found in {template_dir}") from None
    except jinja2.UndefinedError as exc:
        where = _template_line(exc) or template
        raise PlanError(
            f"template {where}: {exc.message} (the plan gives the template no such value)"
        ) from None
    except Exception as exc:  # a filter or expression failed inside the template
        where = _template_line(exc) or template
        raise PlanError(f"template {where}: {type(exc).__name__}: {exc}") from exc


def parse_rendered(text: str, template: str) -> dict:
    """The YAML tree of rendered ``text``; PlanError quoting the bad line when it does not parse."""
    try:
        tree = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        quoted = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
        raise PlanError(f"{template} rendered invalid YAML at line {line}: {quoted!r}: {exc}") from None
    if not isinstance(tree, dict):
        raise PlanError(f"{template} rendered {type(tree).__name__}, not a mapping")
    return tree


def _finish(text: str, template: str, overrides: Sequence[Override]) -> str:
    """Rendered ``text`` checked to parse, with ``--set`` YAML paths applied."""
    tree = parse_rendered(text, template)
    tree_overrides = [o for o in overrides if o.section == "yaml"]
    if not tree_overrides:
        return text
    apply_to_tree(tree, tree_overrides)
    first = text.splitlines()[0] if text else ""
    header = first + "\n" if first.startswith("#") else ""
    keys = ", ".join(o.key for o in tree_overrides)
    body = yaml.safe_dump(tree, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    return f"{header}# with --set {keys}\n{body}"


def render_yaml(
    template: str,
    context: Mapping[str, Any],
    overrides: Sequence[Override] = (),
    template_dir: Path = TEMPLATE_DIR,
) -> str:
    """The final YAML text: rendered, checked to parse, with ``--set`` YAML paths applied."""
    return _finish(render_text(template, context, template_dir), template, overrides)


def _marks_for(host: str) -> tuple[str, str]:
    """Two stand-ins (of different lengths and first letters) that the ``y`` filter writes the way it
    writes ``host``: all plain, or all quoted."""
    plain = _PLAIN.fullmatch(host) is not None and host.lower() not in _YAML11_WORDS
    return _HOST_MARKS if plain else ("0" + _HOST_MARKS[0], "1" + _HOST_MARKS[1])


def _with_stand_in(template: str, context: Mapping[str, Any], marks: tuple[str, str],
                   overrides: Sequence[Override], template_dir: Path) -> str:  # fmt: skip
    """The final YAML with stand-in ``marks[0]`` for the host, or "" when a real host cannot simply
    take its place: the template does more with the host than write it (two stand-ins render
    differently beyond themselves), or the host lands outside comment lines."""
    a, b = (render_text(template, {**context, "host": m}, template_dir) for m in marks)
    if a.replace(marks[0], "\0") != b.replace(marks[1], "\0"):
        return ""
    text = _finish(a, template, overrides)
    marked = [line for line in text.splitlines() if marks[0] in line]
    return text if all(line.lstrip().startswith("#") for line in marked) else ""


def render_yaml_per_host(
    template: str,
    context: Mapping[str, Any],
    hosts: Sequence[str],
    overrides: Sequence[Override] = (),
    template_dir: Path = TEMPLATE_DIR,
) -> dict[str, str]:
    """``{host: render_yaml(context with that host)}``, rendered and parsed once per kind of host.

    Nodes that differ only in their host render the same YAML except for the host. The template is
    rendered (and its YAML checked) once with a stand-in host; when the template only writes the host
    (as it is or through ``y``), only in comment lines, and the host is an address or host name (no
    quote, space or line break), putting the real host in its place gives the same bytes and cannot
    change how the YAML parses. Otherwise each host is rendered and checked on its own."""
    out: dict[str, str] = {}
    shared: dict[tuple[str, str], str] = {}
    for host in hosts:
        marks = _marks_for(host)
        if marks not in shared:
            shared[marks] = _with_stand_in(template, context, marks, overrides, template_dir)
        if shared[marks] and _HOST_SAFE.fullmatch(host):
            out[host] = shared[marks].replace(marks[0], host)
        else:
            out[host] = render_yaml(template, {**context, "host": host}, overrides, template_dir)
    return out
