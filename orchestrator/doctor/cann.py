"""Doctor's `cann` check: the node's Ascend install (CANN toolkit and driver) is where the inventory
says, and its versions are the pinned pairing's.

Read in one round trip of shell steps (``orchestrator.discover.probe.run_steps``) under the node's
Ascend root (``cluster.ascend_root``, default /usr/local/Ascend): the toolkit's ``latest`` folder and
``set_env.sh``, ``ascend-toolkit/latest/<arch>-linux/ascend_toolkit_install.info`` (``version=``,
``innerversion=``) and ``driver/version.info`` (``Version=``/``package_version=``, ``Innerversion=``,
``compatible_version=``); the driver version npu-smi prints in its header backs up the latter. File
formats: docs/ascend-tool-outputs.md "Devices and versions"; the pairing: ``ascend.versions.PAIRING``.

Verdicts: no toolkit or set_env.sh under the root, an unreadable or other CANN version, or a driver
whose compatible releases exclude the toolkit's FAIL; a compatible driver other than the paired one
WARNs; the cpu profile (no Ascend root) is skipped.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass
from typing import Optional

from orchestrator.ascend.versions import (
    PAIRING,
    compatible_releases,
    driver_version_file,
    parse_version_info,
    release_of,
    same_version,
    toolkit_dir,
)
from orchestrator.discover.probe import run_steps
from orchestrator.doctor.checks import Check, Status
from orchestrator.transport.base import Transport

FIX = "set cluster.ascend_root (or the node's ascend_root) to the folder holding ascend-toolkit/ and driver/"


def cann_steps(root: str) -> dict[str, str]:
    """The shell steps that read the install under ``root`` (each prints nothing and exits 1 if absent)."""
    tk = toolkit_dir(root)
    env = posixpath.join(root, "ascend-toolkit", "set_env.sh")
    info = f"{shlex.quote(tk)}/*/ascend_toolkit_install.info"
    return {
        "cann_dir": f"test -d {shlex.quote(tk)} && echo {shlex.quote(tk)}",
        "cann_env": f"test -f {shlex.quote(env)} && echo {shlex.quote(env)}",
        "cann_info": f'for f in {info}; do if [ -f "$f" ]; then cat "$f"; exit 0; fi; done; exit 1',
        "driver_info": f"cat {shlex.quote(driver_version_file(root))}",
    }


@dataclass(frozen=True)
class CannFacts:
    """What the node's Ascend root holds: version files as key -> value (empty when unreadable)."""

    root: str
    has_toolkit: bool
    has_set_env: bool
    toolkit: dict
    driver: dict


def gather_cann(transport: Transport, root: str, *, timeout: float = 60) -> CannFacts:
    """Read the install under ``root``; TransportError when the node cannot run the steps."""
    out = run_steps(transport, cann_steps(root), timeout=timeout)

    def ok(name: str) -> bool:
        return name in out and out[name].ok

    return CannFacts(
        root=root,
        has_toolkit=ok("cann_dir"),
        has_set_env=ok("cann_env"),
        toolkit=parse_version_info(out["cann_info"].output) if ok("cann_info") else {},
        driver=parse_version_info(out["driver_info"].output) if ok("driver_info") else {},
    )


def _driver_compatible(toolkit: dict, driver: dict) -> Optional[bool]:
    """Whether driver and toolkit list each other's release (None when the files do not say)."""
    cann_release = release_of(toolkit.get("innerversion", ""))
    driver_release = release_of(driver.get("innerversion", ""))
    driver_accepts = compatible_releases(driver.get("compatible_version", ""))
    toolkit_accepts = compatible_releases(toolkit.get("compatible_version", ""))
    if (cann_release and driver_accepts) or (driver_release and toolkit_accepts):
        return bool(
            (cann_release and cann_release in driver_accepts)
            or (driver_release and driver_release in toolkit_accepts)
        )
    return None


def check_cann(
    host: str, facts: Optional[CannFacts], npu_smi_driver: Optional[str] = None, error: str = ""
) -> Check:
    """The verdict on one node (see the module docstring)."""
    if facts is None:
        return Check(host, "cann", Status.FAIL if error else Status.SKIP, error or "no Ascend profile")
    tk = toolkit_dir(facts.root)
    if not facts.has_toolkit:
        return Check(host, "cann", Status.FAIL, f"no CANN toolkit at {tk} (ascend_root {facts.root}): {FIX}")
    if not facts.has_set_env:
        env = posixpath.join(facts.root, "ascend-toolkit", "set_env.sh")
        return Check(host, "cann", Status.FAIL, f"{env} is missing: the CANN install is incomplete ({FIX})")
    cann, wanted = facts.toolkit.get("version"), PAIRING["cann"]
    if not cann:
        return Check(host, "cann", Status.FAIL, f"no readable {tk}/<arch>-linux/ascend_toolkit_install.info")
    if not same_version(cann, wanted):
        return Check(
            host,
            "cann",
            Status.FAIL,
            f"CANN {cann} at {tk}; the pinned stack (MindSpore {PAIRING['mindspore']}, MindFormers "
            f"{PAIRING['mindformers']}) is paired with CANN {wanted}: install it",
            cann,
        )
    driver = facts.driver.get("package_version") or facts.driver.get("version") or npu_smi_driver
    detail = f"CANN {cann} at {tk}, driver {driver or 'unknown'}"
    if not driver:
        return Check(host, "cann", Status.WARN, f"{detail}: no {driver_version_file(facts.root)}", cann)
    if _driver_compatible(facts.toolkit, facts.driver) is False:
        return Check(
            host,
            "cann",
            Status.FAIL,
            f"{detail}: the driver ({facts.driver.get('innerversion')}) and CANN "
            f"({facts.toolkit.get('innerversion')}) do not list each other as compatible; the pairing "
            f"is driver {PAIRING['driver']}",
            cann,
        )
    if not same_version(driver, PAIRING["driver"]):
        return Check(
            host, "cann", Status.WARN, f"{detail}: the pairing is driver/firmware {PAIRING['driver']}", cann
        )
    return Check(host, "cann", Status.OK, detail, cann)
