"""CANN's environment for every rank (sourced once per node at launch) and the staged ``commands.sh``,
through the local transport with a fake Ascend install (a ``set_env.sh`` like CANN's) in a tmp folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.inventory import parse_inventory
from orchestrator.inventory.defaults import default_inventory_text
from orchestrator.jobs.state import JobDir
from orchestrator.launch import node_env
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import spec_path
from orchestrator.launch.stage import code_bundle, generated_files, stage_node
from orchestrator.launch.start import preflight
from orchestrator.plan.plan_io import commands_script
from orchestrator.plan.planner import make_plan
from orchestrator.plan.transfers import CODE_DIR_FILE
from orchestrator.transport import LocalTransport
from tests.plan.helpers import A2, make_inventory

TOOLKIT = """# CANN's toolkit script, as far as a rank can tell
export ASCEND_TOOLKIT_HOME={root}/ascend-toolkit/latest
export ASCEND_HOME_PATH=$ASCEND_TOOLKIT_HOME
export ASCEND_OPP_PATH=$ASCEND_TOOLKIT_HOME/opp
export LD_LIBRARY_PATH=$ASCEND_TOOLKIT_HOME/lib64:$LD_LIBRARY_PATH
export PYTHONPATH=$ASCEND_TOOLKIT_HOME/python/site-packages:$PYTHONPATH
echo "the real scripts print things too"
"""
ATB = 'export ATB_HOME_PATH={root}/nnal/atb/latest\ncase "$1" in --*) echo "an argument: $1";; esac\n'


def fake_ascend(root: Path, atb: bool = True) -> Path:
    (root / "ascend-toolkit").mkdir(parents=True)
    (root / "ascend-toolkit" / "set_env.sh").write_text(TOOLKIT.format(root=root))
    if atb:
        (root / "nnal" / "atb").mkdir(parents=True)
        (root / "nnal" / "atb" / "set_env.sh").write_text(ATB.format(root=root))
    return root


def local_inventory(tmp_path: Path, ascend_root: Path, env: str = ""):
    """The local default (cpu, two ranks) in ``tmp_path`` with an ``ascend_root`` (and ``env``)."""
    text = default_inventory_text().replace("~/.orchestrate/local-node", str(tmp_path / "node"))
    text = text.replace("  launch_mode: auto", f"  launch_mode: auto\n  ascend_root: {ascend_root}{env}")
    return parse_inventory(text, str(tmp_path / "inv.yaml"))


@pytest.fixture
def node_pythonpath(monkeypatch):
    """The node's own PYTHONPATH (the local node is this machine: its environment)."""
    monkeypatch.setenv("PYTHONPATH", "/node/own/site")
    return "/node/own/site"


def test_a_rank_gets_the_sourced_cann_environment_and_pythonpath_keeps_its_entries(tmp_path, node_pythonpath):
    root = fake_ascend(tmp_path / "Ascend")
    inv = local_inventory(tmp_path, root, "\n  env: {PYTHONPATH: /site/extra}")
    plan = make_plan(inv, "pretrain", ["job.train_dataset="])
    with JobNodes(inv.nodes) as nodes:
        ready = preflight(nodes, force=False, source=inv.source)
    found = ready["127.0.0.1"].env
    toolkit = f"{root}/ascend-toolkit/latest"
    assert found.sourced == (f"{root}/ascend-toolkit/set_env.sh", f"{root}/nnal/atb/set_env.sh")
    node = plan.nodes[0]
    workdir = inv.nodes[0].workdir
    report = stage_node(LocalTransport(node.host), plan, node, "20260101-000000-pretrain-0001", workdir,
                        node_env=found.env)  # fmt: skip
    spec = json.loads(Path(spec_path(workdir, "20260101-000000-pretrain-0001")).read_text())
    for proc in [*spec["ranks"], spec["scheduler"]]:
        env = proc["env"]
        assert (env["ASCEND_TOOLKIT_HOME"], env["ASCEND_OPP_PATH"]) == (toolkit, f"{toolkit}/opp")
        assert env["ATB_HOME_PATH"] == f"{root}/nnal/atb/latest"
        assert env["LD_LIBRARY_PATH"].startswith(f"{toolkit}/lib64")
        # extended, never replaced: the shipped code, the inventory's value, CANN's, the node's own
        paths = [report.code_dir, "/site/extra", f"{toolkit}/python/site-packages", node_pythonpath]
        assert env["PYTHONPATH"] == ":".join(paths)
        assert env["MS_WORKER_NUM"] == "2"  # the plan's variables are all still there


def test_a_node_without_ascend_root_keeps_its_own_pythonpath(tmp_path, node_pythonpath):
    text = default_inventory_text().replace("~/.orchestrate/local-node", str(tmp_path / "node"))
    inv = parse_inventory(text, str(tmp_path / "inv.yaml"))
    assert inv.nodes[0].ascend_root is None  # cpu: no CANN by default
    found = node_env.probe(LocalTransport("127.0.0.1"), None)
    assert found.sourced == () and found.env == {"PYTHONPATH": node_pythonpath}


def test_a_missing_set_env_refuses_the_node_naming_path_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATE_HOME", str(tmp_path / "home"))
    inv = local_inventory(tmp_path, tmp_path / "NoAscend")
    with JobNodes(inv.nodes) as nodes, pytest.raises(InputError) as info:
        preflight(nodes, force=False, source=inv.source)
    (problem,) = info.value.problems
    assert problem.field == "cluster.ascend_root" and problem.file == inv.source
    assert f"node 127.0.0.1 has no {tmp_path}/NoAscend/ascend-toolkit/set_env.sh" in problem.message
    assert "cluster.ascend_root" in problem.fix
    assert not (tmp_path / "node").exists()  # nothing staged, no agent installed


@pytest.mark.parametrize("keep_open", [False, True])
def test_a_missing_set_env_is_refused_the_same_with_the_agent_left_running(tmp_path, monkeypatch, keep_open):
    monkeypatch.setenv("ORCHESTRATE_HOME", str(tmp_path / "home"))
    inv = local_inventory(tmp_path, tmp_path / "NoAscend")
    with JobNodes(inv.nodes) as nodes, pytest.raises(InputError, match="NoAscend/ascend-toolkit/set_env.sh"):
        preflight(nodes, force=False, source=inv.source, keep_open=keep_open)


def test_the_kept_open_session_reads_the_same_environment_then_waits_for_one_bundle(
    tmp_path, node_pythonpath
):
    from orchestrator.launch import agent_rpc
    from orchestrator.launch.start import close_sessions

    inv = local_inventory(tmp_path, fake_ascend(tmp_path / "Ascend"), env="\n  env: {A_VAR: 'x y'}")
    node = inv.nodes[0]
    t = LocalTransport(node.host)
    oneshot = node_env.probe(t, node.ascend_root)
    with JobNodes(inv.nodes) as nodes:
        first = preflight(nodes, force=False, source=inv.source, keep_open=True)
        assert first[node.host].session is None  # the agent was not installed: stage installs it
        agent_rpc.install_agent(t, node.workdir)
        ready = preflight(nodes, force=False, source=inv.source, keep_open=True)
        session = ready[node.host].session
        assert ready[node.host].env == oneshot and session is not None and not session.closed
        close_sessions(ready)  # unused: the agent sees its stdin end and stages nothing
        assert session.closed
        asked = preflight(nodes, force=False, source=inv.source, keep_open=True, free_port_on=node.host)
        again, port = asked[node.host].session, asked[node.host].free_port
        assert isinstance(port, int) and port > 0  # the scheduler's port, named in the same answer
        assert isinstance(
            preflight(nodes, False, environment=False, free_port_on=node.host)[node.host].free_port, int
        )
        target = tmp_path / "staged" / "file.txt"
        bundle = {"files": [[str(target), 0o600, "line one\nline two\n"]], "check": [str(target)]}
        answer = again.stage(json.dumps(bundle).encode())
    assert answer["present"] == {str(target): True} and answer["started"] is False
    assert target.read_text() == "line one\nline two\n" and again.closed


def test_the_environment_is_recorded_privately_for_collect_logs(tmp_path):
    from orchestrator.collect.job import CONTROLLER_FILES

    job = JobDir("20260101-000000-pretrain-0001", tmp_path).create()
    envs = [node_env.NodeEnv("10.0.0.1", "/usr/local/Ascend", ("/usr/local/Ascend/ascend-toolkit/set_env.sh",),
                             {"ASCEND_OPP_PATH": "/x/opp"})]  # fmt: skip
    node_env.save(job, envs)
    path = job.path / node_env.STATE_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert node_env.load(job) == {"10.0.0.1": envs[0]} and node_env.STATE_FILE in CONTROLLER_FILES


def _read_paths(script: str) -> set[str]:
    """Every file ``commands.sh`` reads: sourced files, ``cat``, the config in each argv."""
    sourced = re.findall(r"(?:^|[;(]|then) ?(?:\.|cat) (/[^\s;)]+)", script, re.M)
    return set(sourced) | set(re.findall(r"--config (\S+)", script))


@pytest.mark.parametrize("profile", ["a2-two-nodes", "cpu"])
def test_every_file_commands_sh_reads_is_one_staging_writes(profile, tmp_path):
    if profile == "cpu":
        plan = make_plan(local_inventory(tmp_path, tmp_path / "Ascend"), "pretrain", ["job.train_dataset="])
    else:
        plan = make_plan(make_inventory(A2, hosts=("10.0.0.1", "10.0.0.2")), "pretrain")
    for node in plan.nodes:
        staged = {dest for _, dest, _ in generated_files(plan, node)} | {f"{node.job_dir}/{CODE_DIR_FILE}"}
        script = commands_script(node)
        cann = {f"{node.ascend_root}/ascend-toolkit/set_env.sh", f"{node.ascend_root}/nnal/atb/set_env.sh"}
        reads = _read_paths(script)
        assert len(reads) == len(node.launches) + 4  # env files, code_dir, the YAML, CANN's two scripts
        assert reads - cann <= staged, reads - cann - staged
        assert f"{node.job_dir}/commands.sh" in staged


DUMP = (
    "import json, os, sys; print(json.dumps({'cwd': os.getcwd(), 'env': dict(os.environ), 'path': sys.path}))"
)


def test_the_staged_commands_sh_starts_every_process_as_the_agent_would(tmp_path, node_pythonpath):
    root = fake_ascend(tmp_path / "Ascend")
    inv = local_inventory(tmp_path, root)
    plan = make_plan(inv, "pretrain", ["job.train_dataset="])
    node = plan.nodes[0]  # each process prints its environment instead of training
    node = replace(node, launches=tuple(replace(x, argv=(sys.executable, "-c", DUMP)) for x in node.launches))
    plan = replace(plan, nodes=(node,))
    report = stage_node(
        LocalTransport(node.host), plan, node, "20260101-000000-pretrain-0001", inv.nodes[0].workdir
    )
    script = Path(f"{node.job_dir}/commands.sh")
    assert script.read_text() == commands_script(node) and script.stat().st_mode & 0o777 == 0o755
    subprocess.run(["bash", str(script)], check=True, timeout=60)  # the node's environment: this one's
    for x in node.launches:
        assert Path(x.log_dir, "pid").read_text().strip().isdigit()
        seen = _printed(Path(x.stdout))
        planned = dict(x.env)
        assert seen["cwd"] == x.cwd and all(seen["env"][k] == v for k, v in planned.items())
        toolkit = f"{root}/ascend-toolkit/latest"
        assert seen["env"]["ASCEND_OPP_PATH"] == f"{toolkit}/opp" and "ATB_HOME_PATH" in seen["env"]
        expected = f"{report.code_dir}:{toolkit}/python/site-packages:{node_pythonpath}"
        assert seen["env"]["PYTHONPATH"] == expected
        assert seen["path"][1] == report.code_dir == f"{inv.nodes[0].workdir}/code/{code_bundle().sha256}"


def _printed(log: Path) -> dict:
    """The JSON line the process printed into ``log``, once it is there."""
    import time

    for _ in range(600):
        lines = log.read_text().splitlines() if log.exists() else []
        if lines and lines[-1].endswith("}"):
            return json.loads(lines[-1])
        time.sleep(0.1)
    raise AssertionError(f"{log}: nothing printed")
