"""Rendering the MindFormers YAML from the Jinja templates in ``templates/``.

StrictUndefined turns a missing value into an error; every template error names the template file
and line. The rendered text must parse as YAML; ``--set`` paths into the tree are applied after
parsing and the tree is then dumped again (comments of the template are lost only in that case).
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


def render_yaml(
    template: str,
    context: Mapping[str, Any],
    overrides: Sequence[Override] = (),
    template_dir: Path = TEMPLATE_DIR,
) -> str:
    """The final YAML text: rendered, checked to parse, with ``--set`` YAML paths applied."""
    text = render_text(template, context, template_dir)
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
