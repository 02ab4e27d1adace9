"""A simulated node is as strict as a real one: a non-root job user, no CANN environment unless sourced,
nothing of the controller's checkout, venv or /root, and its own Python (needs root)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.sim import node_files
from tests.fixtures.sim import ssh_client

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
CANN_VARS = (
    "ASCEND_TOOLKIT_HOME",
    "ASCEND_HOME_PATH",
    "ASCEND_OPP_PATH",
    "ASCEND_AICPU_PATH",
    "TOOLCHAIN_HOME",
)
TOOLKIT = "/usr/local/Ascend/ascend-toolkit"


def _ssh(cluster, node, cmd: str, user: str = "") -> tuple[int, str]:
    client = ssh_client(cluster, node, user=user)
    try:
        _, out, err = client.exec_command(cmd, timeout=30)
        text = out.read().decode() + err.read().decode()
        return out.channel.recv_exit_status(), text
    finally:
        client.close()


def _env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_cann_variables_are_absent_over_ssh_and_present_after_sourcing(sim_cluster):
    node = sim_cluster.nodes[0]
    code, plain = _ssh(sim_cluster, node, "env")
    assert code == 0 and not set(CANN_VARS) & set(_env(plain))
    assert "Ascend" not in _env(plain).get("LD_LIBRARY_PATH", "") + _env(plain).get("PYTHONPATH", "")
    code, text = _ssh(
        sim_cluster, node, f". {TOOLKIT}/set_env.sh && . /usr/local/Ascend/nnal/atb/set_env.sh && env"
    )
    env = _env(text)
    assert code == 0 and {env[v] for v in CANN_VARS[:2]} == {f"{TOOLKIT}/latest"}
    assert (
        env["ASCEND_OPP_PATH"] == f"{TOOLKIT}/latest/opp"
        and env["TOOLCHAIN_HOME"] == f"{TOOLKIT}/latest/toolkit"
    )
    assert env["PYTHONPATH"].startswith(
        f"{TOOLKIT}/latest/python/site-packages:{TOOLKIT}/latest/opp/built-in/op_impl"
    )
    assert "/usr/local/Ascend/driver/lib64/driver" in env["LD_LIBRARY_PATH"].split(":")
    assert env["ATB_HOME_PATH"] == "/usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_1"
    code, text = _ssh(sim_cluster, node, f"cat {TOOLKIT}/latest/$(arch)-linux/ascend_toolkit_install.info "
                                         "/usr/local/Ascend/driver/version.info")  # fmt: skip
    assert code == 0 and "version=8.3.RC1\n" in text and "package_version=25.3.rc1\n" in text
    code, text = _ssh(sim_cluster, node, "command -v hccn_tool; ls /usr/local/Ascend/driver/tools")
    assert text == "hccn_tool\n"  # in the driver's tools folder, not on PATH


def test_jobs_run_as_a_non_root_user_with_a_private_home(sim_cluster):
    n1, n2 = sim_cluster.nodes
    ids = [_ssh(sim_cluster, n, "id -u; id -un; echo $HOME")[1].split() for n in (n1, n2)]
    assert (
        ids[0] == ids[1]
        and ids[0][0] != "0"
        and ids[0][1:] == [sim_cluster.user, f"/home/{sim_cluster.user}"]
    )
    assert (
        _ssh(sim_cluster, n1, "echo mine > ~/note && stat -c %U /opt/orchestrate-node")[1]
        == f"{sim_cluster.user}\n"
    )
    assert _ssh(sim_cluster, n2, "test -e ~/note")[0] == 1  # each node's home is its own
    assert _ssh(sim_cluster, n1, "ls /root")[0] != 0 and _ssh(sim_cluster, n1, "touch /etc/x")[0] != 0
    assert (
        _ssh(sim_cluster, n1, "id -u", user="root")[1] == "0\n"
    )  # root keeps its key login (the sim's own use)


def test_a_node_sees_nothing_of_the_controller(sim_cluster):
    node = sim_cluster.nodes[1]
    assert str(REPO) in node_files.hidden_paths()
    for path in (str(REPO), sys.prefix, "/root"):
        for user in (sim_cluster.user, None):  # as the job user, and as root inside the node
            proc = sim_cluster.exec(node.hostname, f"ls -A {shlex.quote(path)} 2>/dev/null", user=user)
            listed = proc.stdout.split()
            assert not listed or listed == [".bashrc", ".profile"], (
                path,
                user,
                listed,
            )  # /root: the node's own
    code, text = _ssh(sim_cluster, node, f"{shlex.quote(sys.executable)} -c 'print(1)'")
    assert code != 0  # the controller's interpreter does not exist on a node
    code, text = _ssh(sim_cluster, node, "cat /proc/1/cmdline | tr '\\0' ' '")
    assert str(REPO) not in text


def test_the_node_python_is_its_own_and_read_only(sim_cluster):
    python = yaml.safe_load(sim_cluster.inventory.read_text())["cluster"]["python"]
    assert python == "/usr/local/python3.11/bin/python"
    probe = ("import sys, importlib.util as u; print(sys.prefix); print(u.find_spec('mindspore').origin); "
             "print(u.find_spec('iflytekspark'))")  # fmt: skip
    code, text = _ssh(sim_cluster, sim_cluster.nodes[0], f"{python} -c {shlex.quote(probe)}")
    prefix, mindspore, model = text.split()
    assert (
        code == 0 and prefix == "/usr/local/python3.11" and mindspore.startswith(prefix + "/lib/python3.11/")
    )
    assert model == "None"  # the model package is only there once the orchestrator ships it
    proc = sim_cluster.exec(1, f"touch {prefix}/lib/x")  # even root cannot change it
    assert proc.returncode != 0 and "Read-only" in proc.stderr


@pytest.mark.parametrize("root", ["/opt/Ascend", ""])
def test_the_hardware_file_moves_or_omits_the_cann_install(tmp_path, root):
    from orchestrator import sim
    from tests.fixtures.sim import sim_name

    hw = tmp_path / "hw.yaml"
    doc = {
        "kind": "atlas-800t-a2",
        "ascend_root": root,
        "nodes": [{"npus": [{"id": 0, "ip": "192.168.190.10"}]}],
    }
    hw.write_text(yaml.safe_dump(doc))
    name = sim_name("m" if root else "o")
    cluster = sim.up(name, nodes=1, hardware_file=hw)
    try:
        cluster_doc = yaml.safe_load(cluster.inventory.read_text())["cluster"]
        assert cluster_doc.get("ascend_root") == (root or None)
        node = cluster.nodes[0]
        code, text = _ssh(
            cluster,
            node,
            f"ls -d /usr/local/Ascend {root or '/opt/Ascend'} 2>&1; . {root}/ascend-toolkit/set_env.sh && echo $ASCEND_HOME_PATH",
        )
        assert "cannot access '/usr/local/Ascend'" in text
        if root:
            assert code == 0 and text.endswith(f"{root}/ascend-toolkit/latest\n")
            assert _ssh(cluster, node, f"{root}/driver/tools/hccn_tool -i 0 -ip -g")[1].startswith(
                "ipaddr:192.168.190.10"
            )
        else:
            assert code != 0 and "cannot access '/opt/Ascend'" in text
    finally:
        sim.down(name)
