"""Every validation rule, with exact file/line/field, and all problems reported together."""

from __future__ import annotations

import os
import sys

import pytest

from tests.inventory.util import find, parse, problems, where


def inventory(profile: str = "atlas-800-32g", cluster: str = "", nodes: str = "  - host: 10.0.0.1\n") -> str:
    """A valid inventory; ``cluster`` lines are appended at line 6, nodes start at line 7 + len(cluster)."""
    head = f"cluster:\n  name: t\n  profile: {profile}\n  workdir: /data/o\n  python: /usr/bin/python3\n"
    return head + cluster + "nodes:\n" + nodes


def test_a_valid_inventory_has_no_problems():
    inv = parse(inventory())
    assert inv.nodes[0].devices == tuple(range(8)) and inv.nodes[0].device_ips == ()


def test_unknown_keys_suggest_the_closest_name():
    found = problems(
        inventory(cluster="  workdri: /x\n  frobnicate: 1\n", nodes="  - host: a\n    devics: [0]\n")
    )
    assert find(found, "cluster.workdri").fix == "did you mean `workdir`?"
    assert find(found, "cluster.workdri").line == 6
    assert "known keys: name, profile" in find(found, "cluster.frobnicate").fix
    assert find(found, "nodes[0].devics").line == 10


def test_wrong_types():
    cluster = "  ssh: {port: abc, connect_timeout: -1, user: [a]}\n  env: {A: 1, B: yes, C: [x], 9X: z}\n"
    nodes = "  - host: 10.0.0.1\n    devices: all\n    local: maybe\n  - 42\n"
    found = problems(inventory(cluster=cluster, nodes=nodes))
    assert {(p.line, p.field) for p in found} == {
        (6, "cluster.ssh.port"),
        (6, "cluster.ssh.connect_timeout"),
        (6, "cluster.ssh.user"),
        (7, "cluster.env.B"),
        (7, "cluster.env.C"),
        (7, "cluster.env.9X"),
        (10, "nodes[0].devices"),
        (11, "nodes[0].local"),
        (12, "nodes[1]"),
    }
    assert "boolean" in find(found, "cluster.env.B").message  # YAML 1.1 `yes`: quote it
    assert parse(inventory(cluster="  env: {A: 1, B: '2.5'}\n")).cluster.env == (("A", "1"), ("B", "2.5"))


def test_missing_required_keys():
    assert where("cluster:\n  name: t\nnodes:\n  - name: x\n") == {
        (1, "cluster.profile"),
        (1, "cluster.workdir"),
        (1, "cluster.python"),
        (4, "nodes[0].host"),
    }
    assert where("cluster:\n  name: t\n  profile: cpu\n  workdir: /w\n  python: /p\n") == {(1, "nodes")}
    (p,) = problems(inventory(nodes="  []\n").replace("nodes:\n  []", "nodes: []"))
    assert (p.field, p.message) == ("nodes", "no nodes")


def test_unknown_profile_lists_the_known():
    (p,) = problems(inventory(profile="atlas-900"))
    assert (p.line, p.field) == (3, "cluster.profile")
    assert (
        "atlas-800-32g, atlas-800i-a2-32g, atlas-800i-a2-64g, atlas-800t-a2-64g, atlas-900-a3-64g, cpu"
        in p.fix
    )


def test_duplicate_hosts_and_names():
    nodes = (
        "  - {host: 10.0.0.1, name: a}\n  - {host: 10.0.0.1, name: b}\n"
        "  - {host: Node-X, name: a}\n  - {host: node-x., name: c}\n"
        "  - {host: 'fe80::1', name: d}\n  - {host: 'fe80:0::1', name: e}\n"
    )
    found = problems(inventory(nodes=nodes))
    assert {(p.line, p.field) for p in found} == {
        (8, "nodes[1].host"),
        (9, "nodes[2].name"),
        (10, "nodes[3].host"),
        (12, "nodes[5].host"),
    }
    assert "duplicates nodes[0].host" in find(found, "nodes[1].host").message


def test_invalid_hosts_with_targeted_fixes():
    nodes = "  - host: root@10.0.0.1\n  - host: 10.0.0.2:22\n  - host: bad_name\n  - host: '-x'\n"
    found = problems(inventory(nodes=nodes))
    assert [p.line for p in found] == [7, 8, 9, 10]
    assert "ssh: {user" in found[0].fix and "ssh: {port" in found[1].fix


def test_loopback_only_in_a_single_node_cluster_and_one_local_node():
    assert parse(inventory(nodes="  - {host: 127.0.0.1, local: true}\n")).nodes[0].local
    nodes = "  - {host: localhost, local: true}\n  - {host: 10.0.0.2, local: true}\n"
    found = problems(inventory(nodes=nodes))
    assert {(p.line, p.field) for p in found} == {(7, "nodes[0].host"), (8, "nodes[1].local")}


@pytest.mark.parametrize(
    "devices, ok",
    [
        ("[0, 1, 2, 3]", True),
        ("[4, 5]", True),
        ("[0, 1, 2, 3, 4, 5, 6, 7]", True),
        ("[7]", True),
        ("[3, 4]", False),
        ("[0, 1, 2, 3, 4]", False),
    ],
)
def test_atlas_800_device_groups(devices, ok):
    text = inventory(nodes=f"  - host: a\n    devices: {devices}\n")
    if ok:
        assert parse(text).nodes[0].devices == tuple(sorted(eval(devices)))
    else:
        (p,) = problems(text)
        assert (p.line, p.field) == (8, "nodes[0].devices") and "[0, 4) or [4, 8)" in p.message


def test_any_subset_on_800t_a2_and_any_slots_on_cpu():
    assert parse(inventory("atlas-800t-a2-64g", nodes="  - {host: a, devices: [3, 4]}\n")).nodes[
        0
    ].devices == (3, 4)
    assert parse(inventory("cpu", nodes="  - {host: a, devices: [0, 1, 2]}\n")).world_size == 3
    assert parse(inventory("cpu")).nodes[0].devices == (0, 1)  # default: the profile's 2 slots


def test_device_ids_out_of_range_duplicated_or_empty():
    nodes = (
        "  - host: a\n    devices:\n      - 0\n      - 8\n      - -1\n      - 0\n  - {host: b, devices: []}\n"
    )
    found = problems(inventory("atlas-800t-a2-64g", nodes=nodes))
    assert {(p.line, p.field) for p in found} == {
        (10, "nodes[0].devices[1]"),
        (11, "nodes[0].devices[2]"),
        (8, "nodes[0].devices"),
        (13, "nodes[1].devices"),
    }
    assert find(found, "nodes[0].devices[1]").fix == "use a value in 0..7"
    assert "listed 2 times" in find(found, "nodes[0].devices").message


def test_unequal_device_counts_across_nodes():
    nodes = "  - {host: a, devices: [0, 1]}\n  - {host: b, devices: [0, 1]}\n  - {host: c, devices: [0]}\n"
    (p,) = problems(inventory("atlas-800t-a2-64g", nodes=nodes))
    assert (p.line, p.field) == (9, "nodes[2].devices") and "most nodes use 2" in p.message


def test_device_ips_length_validity_and_duplicates():
    nodes = (
        "  - {host: a, devices: [0, 1], device_ips: [192.168.1.1]}\n"
        "  - {host: b, devices: [0, 1], device_ips: [192.168.1.2, 300.1.1.1]}\n"
        "  - {host: c, devices: [0, 1], device_ips: [192.168.1.3, 192.168.1.2]}\n"
    )
    found = problems(inventory("atlas-800t-a2-64g", nodes=nodes))
    assert {(p.line, p.field) for p in found} == {
        (7, "nodes[0].device_ips"),
        (8, "nodes[1].device_ips[1]"),
        (9, "nodes[2].device_ips[1]"),
    }
    assert "duplicates nodes[1].device_ips[0]" in find(found, "nodes[2].device_ips[1]").message
    assert "1 device IPs for 2 devices" in find(found, "nodes[0].device_ips").message


def test_devices_are_sorted_with_their_ips():
    inv = parse(
        inventory(
            "atlas-800t-a2-64g", nodes="  - {host: a, devices: [5, 2], device_ips: [10.0.0.5, 10.0.0.2]}\n"
        )
    )
    assert inv.nodes[0].devices == (2, 5) and inv.nodes[0].device_ips == ("10.0.0.2", "10.0.0.5")


def test_ports_out_of_range_at_cluster_and_node_level():
    found = where(inventory(cluster="  ssh: {port: 0}\n", nodes="  - host: a\n    ssh:\n      port: 65536\n"))
    assert found == {(6, "cluster.ssh.port"), (10, "nodes[0].ssh.port")}


def test_node_paths_must_be_absolute_and_tilde_only_on_local_nodes():
    cluster = (
        "cluster:\n  name: t\n  profile: cpu\n  workdir: ~/w\n  python: bin/python\n  shared_paths: [share]\n"
    )
    nodes = (
        "nodes:\n  - {host: 10.0.0.1}\n  - {host: 10.0.0.2}\n  - {host: 10.0.0.3, python: /p, workdir: x}\n"
    )
    found = problems(cluster + nodes)
    assert {(p.line, p.field) for p in found} == {
        (4, "cluster.workdir"),  # reported once though two remote nodes inherit it
        (5, "cluster.python"),
        (6, "cluster.shared_paths[0]"),
        (10, "nodes[2].workdir"),
    }
    assert "only for local nodes" in find(found, "cluster.workdir").message
    local = parse(
        cluster.replace("bin/python", "/p").replace("[share]", "[]") + "nodes:\n  - {host: h, local: true}\n"
    )
    assert local.nodes[0].workdir == os.path.expanduser("~/w") and local.cluster.workdir == "~/w"


def test_controller_python_placeholder():
    inv = parse(
        inventory(nodes='  - {host: a, python: "{controller_python}"}\n').replace(
            "/usr/bin/python3", '"{controller_python}"'
        )
    )
    assert inv.cluster.python == sys.executable and inv.nodes[0].python == sys.executable
    (p,) = problems(inventory().replace("/usr/bin/python3", "{controller_python}"))
    assert p.field == "cluster.python" and 'quote it: "{controller_python}"' in p.fix


def test_controller_paths_expand_tilde_and_resolve_relative_to_the_inventory(tmp_path):
    cluster = "  ssh: {key: ~/.ssh/k, known_hosts: kh}\n  simulated_hardware: ../hw.yaml\n"
    inv = parse(inventory(cluster=cluster), base_dir=str(tmp_path))
    assert inv.cluster.ssh.key == os.path.expanduser("~/.ssh/k")
    assert inv.cluster.ssh.known_hosts == str(tmp_path / "kh")
    assert inv.cluster.simulated_hardware == str(tmp_path.parent / "hw.yaml")
    assert inv.nodes[0].ssh.known_hosts == str(tmp_path / "kh")  # inherited
    assert where(inventory(cluster=cluster)) == {
        (6, "cluster.ssh.known_hosts"),
        (7, "cluster.simulated_hardware"),
    }


def test_per_node_overrides_merge():
    cluster = "  ssh: {user: admin, port: 2200, key: /k}\n  env: {A: '1', B: '2'}\n"
    nodes = "  - host: a\n    ssh: {port: 22}\n    env: {B: '3', C: '4'}\n    workdir: /other\n  - host: b\n"
    a, b = parse(inventory(cluster=cluster, nodes=nodes)).nodes
    assert (a.ssh.user, a.ssh.port, a.ssh.key, a.workdir) == ("admin", 22, "/k", "/other")
    assert a.env == (("A", "1"), ("B", "3"), ("C", "4"))
    assert (b.ssh.port, b.workdir, b.env) == (2200, "/data/o", (("A", "1"), ("B", "2")))


def test_launch_mode_and_rank_table_version():
    (p,) = problems(inventory("cpu", cluster="  launch_mode: rank_table\n"))
    assert (p.line, p.field) == (6, "cluster.launch_mode")
    assert parse(inventory("cpu")).cluster.effective_launch_mode == "dynamic_cluster"
    assert parse(inventory()).cluster.effective_launch_mode == "rank_table"
    assert parse(inventory(cluster="  rank_table_version: 1.2\n")).cluster.rank_table_version == "1.2"
    assert where(inventory(cluster="  rank_table_version: 1.3\n  launch_mode: msrun\n")) == {
        (6, "cluster.rank_table_version"),
        (7, "cluster.launch_mode"),
    }


def test_super_pod_id_only_with_version_1_2():
    nodes = "  - {host: a, super_pod_id: 0}\n"
    assert where(inventory(nodes=nodes)) == {(7, "nodes[0].super_pod_id")}
    assert parse(inventory(cluster='  rank_table_version: "1.2"\n', nodes=nodes)).nodes[0].super_pod_id == "0"


def test_job_section_and_set_entries():
    job = "job:\n  model: tiny\n  set: ['a.b=1', 'c=x=y', nokey, ' sp=1', 5]\n  output_dir: out\n"
    found = problems(inventory() + job)
    assert {(p.line, p.field) for p in found} == {(10, "job.set[2]"), (10, "job.set[3]"), (10, "job.set[4]")}
    inv = parse(inventory() + "job:\n  model: tiny\n  set: ['a.b=1', 'c=x=y']\n")
    assert inv.job.overrides == (("a.b", "1"), ("c", "x=y")) and inv.job.model == "tiny"
    assert inv.job.output_dir == "output" and parse(inventory()).job.model == "13b"


def test_all_problems_are_reported_together_in_line_order():
    cluster = "  ssh: {port: 99999}\n  launch_mode: rank_table\n"
    nodes = "  - {host: a, devices: [0, 0]}\n  - {host: a, devics: [1]}\n"
    found = problems(inventory("cpu", cluster=cluster, nodes=nodes))
    assert [(p.line, p.field) for p in found] == [
        (6, "cluster.ssh.port"),
        (7, "cluster.launch_mode"),
        (9, "nodes[0].devices"),
        (10, "nodes[1].devics"),
        (10, "nodes[1].host"),
    ]
    assert all(p.fix for p in found)


def test_ascend_root_defaults_on_ascend_profiles_and_is_a_node_path():
    assert parse(inventory()).nodes[0].ascend_root == "/usr/local/Ascend"
    assert parse(inventory(profile="cpu")).nodes[0].ascend_root is None
    nodes = "  - host: 10.0.0.1\n  - host: 10.0.0.2\n    ascend_root: /home/ai/Ascend/\n"
    inv = parse(inventory(cluster="  ascend_root: /opt/Ascend\n", nodes=nodes))
    assert [n.ascend_root for n in inv.nodes] == ["/opt/Ascend", "/home/ai/Ascend"]
    found = problems(inventory(cluster="  ascend_root: ~/Ascend\n"))
    assert find(found, "cluster.ascend_root").line == 6 and "e.g. /usr/local/Ascend" in found[0].fix
    local = parse(
        inventory(profile="cpu", nodes="  - host: 127.0.0.1\n    local: true\n    ascend_root: ~/Ascend\n")
    )
    assert local.nodes[0].ascend_root == os.path.join(os.path.expanduser("~"), "Ascend")


def test_a3_nodes_use_one_chip_or_whole_hiam_pairs():
    a3 = "atlas-900-a3-64g"
    assert parse(inventory(a3)).nodes[0].devices == tuple(range(16))
    assert parse(inventory(a3, nodes="  - host: h\n    devices: [4, 5, 10, 11]\n")).world_size == 4
    assert parse(inventory(a3, nodes="  - host: h\n    devices: [7]\n")).world_size == 1
    (p,) = problems(inventory(a3, nodes="  - host: h\n    devices: [0, 1, 3]\n"))
    assert p.field == "nodes[0].devices" and "split HiAM pair(s) 2/3" in p.message and p.fix
    assert parse(inventory(a3, nodes="  - host: h\n    super_pod_id: '1'\n")).nodes[0].super_pod_id == "1"
