"""Doctor's `cann` check: the CANN location (a wrong path named with the fix), CANN and driver versions
against the pinned pairing, from the node's version files (formats of real installs)."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.doctor import Status, run_doctor
from orchestrator.doctor.cann import CannFacts, cann_steps, check_cann
from orchestrator.transport import TransportPool
from tests.discover.conftest import inventory
from tests.fixtures.captures import capture
from tests.transport.fake import CANN_STEPS, FakeNode

B3 = capture("npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt")
# ascend_toolkit_install.info of CANN 8.3.RC1 and driver/version.info of 25.3.rc1 as real installs print them
TOOLKIT = {
    "package_name": "Ascend-cann-toolkit",
    "version": "8.3.RC1",
    "innerversion": "V100R001C23SPC001B231",
    "compatible_version": "[V100R001C15],[V100R001C18],[V100R001C19],[V100R001C20],[V100R001C21],[V100R001C23]",
}
DRIVER = {
    "version": "25.3.rc1",
    "innerversion": "V100R001C23SPC002B212",
    "compatible_version": "[V100R001C19],[V100R001C20],[V100R001C21],[V100R001C22],[V100R001C23]",
    "package_version": "25.3.rc1",
}
FACTS = CannFacts("/usr/local/Ascend", True, True, TOOLKIT, DRIVER)


def _facts(**kw) -> CannFacts:
    return dataclasses.replace(FACTS, **kw)


def test_the_pinned_pairing_passes():
    check = check_cann("h", FACTS)
    assert check.status == Status.OK and check.value == "8.3.RC1"
    assert check.detail == "CANN 8.3.RC1 at /usr/local/Ascend/ascend-toolkit/latest, driver 25.3.rc1"


def test_a_wrong_cann_location_is_named_with_the_fix():
    check = check_cann("h", _facts(root="/opt/Ascend", has_toolkit=False))
    assert check.status == Status.FAIL
    assert "no CANN toolkit at /opt/Ascend/ascend-toolkit/latest" in check.detail
    assert "set cluster.ascend_root" in check.detail
    incomplete = check_cann("h", _facts(has_set_env=False))
    assert incomplete.status == Status.FAIL and "set_env.sh is missing" in incomplete.detail


def test_another_cann_version_fails_with_the_pairing():
    check = check_cann("h", _facts(toolkit={**TOOLKIT, "version": "8.3.RC2"}))
    assert check.status == Status.FAIL
    assert "CANN 8.3.RC2" in check.detail and "paired with CANN 8.3.RC1" in check.detail
    assert "MindSpore 2.7.1, MindFormers 1.7.0" in check.detail
    assert check_cann("h", _facts(toolkit={})).status == Status.FAIL  # unreadable install info


def test_driver_other_than_the_pairing():
    newer = {**DRIVER, "version": "25.5.0", "package_version": "25.5.0", "innerversion": "V100R001C25B100"}
    newer["compatible_version"] = DRIVER["compatible_version"] + ",[V100R001C25]"
    check = check_cann("h", _facts(driver=newer))
    assert check.status == Status.WARN and "the pairing is driver/firmware 25.3.RC1" in check.detail
    old = {**DRIVER, "version": "23.0.3", "package_version": "23.0.3", "innerversion": "V100R001C13SPC1B2"}
    old["compatible_version"] = "[V100R001C10],[V100R001C13]"
    toolkit = {**TOOLKIT, "compatible_version": "[V100R001C15],[V100R001C23]"}
    check = check_cann("h", _facts(driver=old, toolkit=toolkit))
    assert check.status == Status.FAIL and "do not list each other as compatible" in check.detail
    # no version.info: the npu-smi header's driver version is used
    assert check_cann("h", _facts(driver={}), "25.3.rc1").status == Status.OK
    assert check_cann("h", _facts(driver={})).status == Status.WARN


def test_no_ascend_profile_is_skipped_and_a_failed_probe_fails():
    assert check_cann("h", None).status == Status.SKIP
    assert check_cann("h", None, error="probe script failed").status == Status.FAIL


def test_steps_quote_the_root_and_glob_the_arch_folder():
    steps = cann_steps("/opt/my ascend")
    assert (
        steps["cann_dir"]
        == "test -d '/opt/my ascend/ascend-toolkit/latest' && echo '/opt/my ascend/ascend-toolkit/latest'"
    )
    assert "'/opt/my ascend/ascend-toolkit/latest'/*/ascend_toolkit_install.info" in steps["cann_info"]
    assert steps["driver_info"] == "cat '/opt/my ascend/driver/version.info'"


def _doctor(profile="atlas-800t-a2-64g", **node_kw):
    inv = inventory(profile, nodes="  - host: h\n    devices: [0, 1, 2, 3, 4, 5, 6, 7]\n")
    return run_doctor(inv, pool=TransportPool({"h": FakeNode("h", "x", B3, **node_kw)}))


def test_doctor_reads_the_install_on_the_node():
    ok = _doctor().get("h", "cann")
    assert ok.status == Status.OK and "driver 25.3.rc1" in ok.detail
    missing = {"cann_dir": (1, ""), "cann_env": (1, ""), "cann_info": (1, "")}
    report = _doctor(cann=missing)
    check = report.get("h", "cann")
    assert report.failed and check.status == Status.FAIL
    assert "no CANN toolkit at /usr/local/Ascend/ascend-toolkit/latest" in check.detail
    rc2 = CANN_STEPS["cann_info"][1].replace("8.3.RC1", "8.3.RC2")
    assert _doctor(cann={"cann_info": (0, rc2)}).get("h", "cann").status == Status.FAIL


@pytest.mark.parametrize("profile", ["cpu"])
def test_doctor_skips_cann_without_an_ascend_profile(profile):
    node = FakeNode("h", "x")
    report = run_doctor(
        inventory(profile, nodes="  - host: h\n    devices: [0, 1]\n"), pool=TransportPool({"h": node})
    )
    assert report.get("h", "cann").status == Status.SKIP
    assert not any("cann_dir" in " ".join(call) for call in node.calls)


def test_doctor_looks_under_the_inventory_ascend_root():
    from orchestrator.inventory import parse_inventory

    text = (
        "cluster:\n  name: t\n  profile: atlas-800t-a2-64g\n  workdir: /opt/w\n  python: /usr/bin/python3\n"
        "  ascend_root: /opt/Ascend\nnodes:\n  - host: h\n"
    )
    node = FakeNode("h", "x", B3, cann={"cann_dir": (1, "")})
    report = run_doctor(parse_inventory(text, "inv.yaml"), pool=TransportPool({"h": node}))
    assert any("test -d /opt/Ascend/ascend-toolkit/latest" in " ".join(call) for call in node.calls)
    detail = report.get("h", "cann").detail
    assert "no CANN toolkit at /opt/Ascend/ascend-toolkit/latest (ascend_root /opt/Ascend)" in detail
