"""SshTransport against real sshd on the simulated nodes: commands, files, fan-out, and clear failures."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat

import pytest

from orchestrator.errors import HostKeyError, RemoteCommandError, TransportError
from orchestrator.transport import SshOptions, SshTransport, TransportPool, fan_out

pytestmark = pytest.mark.cluster
NODE_PYTHON = "python3"  # the node's system Python: a node cannot see this controller's interpreter
NASTY = ["a b", "it's", '"dq"', "$(touch /tmp/pwned)", "`id`", "x;y", "*", "", "$HOME", "-n"]


def _opts(cluster, **kw) -> SshOptions:
    base = dict(user="root", key=str(cluster.key), known_hosts=str(cluster.known_hosts), connect_timeout=3)
    return SshOptions(**{**base, **kw})


@pytest.fixture(scope="module")
def ssh(sim_cluster):
    transports = [SshTransport(n.host, _opts(sim_cluster)).connect() for n in sim_cluster.nodes]
    yield transports
    for t in transports:
        t.close()


def test_run_reaches_each_node(ssh, sim_cluster):
    names = [t.run(["hostname"]).stdout.strip() for t in ssh]
    assert names == [n.hostname for n in sim_cluster.nodes]


def test_arguments_env_and_stdin_survive_sshd(ssh):
    code = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['V'], sys.stdin.read()]))"
    r = ssh[0].run([NODE_PYTHON, "-c", code, *NASTY], env={"V": "x 'y' $(z)"}, stdin=b"data in")
    import json

    assert json.loads(r.stdout) == [NASTY, "x 'y' $(z)", "data in"]
    assert not os.path.exists("/tmp/pwned")


def test_exit_codes_stderr_and_check(ssh):
    r = ssh[0].run(["sh", "-c", "echo out; echo err >&2; exit 7"], check=False)
    assert (r.exit_code, r.stdout, r.stderr) == (7, "out\n", "err\n")
    with pytest.raises(RemoteCommandError) as err:
        ssh[0].run(["sh", "-c", "echo the tail >&2; exit 2"], env={"MY_TOKEN": "s3cr3t"})
    assert err.value.code == 2 and "the tail" in str(err.value) and "s3cr3t" not in str(err.value)
    assert ssh[0].run(["sh", "-c", "kill -9 $$"], check=False).exit_code == 255


def test_command_timeout_names_the_host(ssh):
    with pytest.raises(TransportError, match=rf"{ssh[1].host}:22: `sleep 5` timed out after 0.3s"):
        ssh[1].run(["sleep", "5"], timeout=0.3)
    assert ssh[1].run(["true"]).exit_code == 0  # the connection is still usable


def test_put_get_atomic_with_mode_and_parents(ssh, sim_cluster, tmp_path):
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(300_000))
    remote = "/opt/orchestrate-node/tp/deep/er/blob"
    ssh[0].put(src, remote, mode=0o600)
    on_host = sim_cluster.nodes[0].workdir / "tp" / "deep" / "er"
    assert (on_host / "blob").read_bytes() == src.read_bytes()
    assert stat.S_IMODE((on_host / "blob").stat().st_mode) == 0o600
    ssh[0].put_bytes(b"replaced", remote, mode=0o644)
    assert os.listdir(on_host) == ["blob"]  # temp files renamed away, none left
    ssh[0].get(remote, tmp_path / "back" / "blob")
    assert (tmp_path / "back" / "blob").read_bytes() == b"replaced"
    assert not (sim_cluster.nodes[1].workdir / "tp").exists()  # private to node1
    with pytest.raises(TransportError, match="cannot read"):
        ssh[0].get("/opt/orchestrate-node/missing", tmp_path / "x")


def test_fan_out_reuses_one_connection_per_node(sim_cluster):
    nodes = [
        type("N", (), {"host": n.host, "local": False, "ssh": _opts(sim_cluster)})()
        for n in sim_cluster.nodes
    ]
    with TransportPool() as pool:
        first = fan_out(nodes, lambda t: t.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout, pool=pool)
        again = fan_out(nodes * 4, lambda t: t.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout, pool=pool)
    first.raise_on_failure()
    assert set(first.results) == {n.host for n in sim_cluster.nodes}
    assert again.results == first.results  # same client port: the same SSH connection


def test_unknown_host_key_is_rejected(sim_cluster, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    node = sim_cluster.nodes[0]
    with pytest.raises(HostKeyError) as err:
        SshTransport(node.host, _opts(sim_cluster, known_hosts=str(empty))).connect()
    text = str(err.value)
    assert node.host in text and str(empty) in text and "ssh-keyscan" in text and "ssh-ed25519" in text
    assert empty.read_text() == ""  # never accepted, never written


def test_changed_host_key_is_rejected(sim_cluster, tmp_path):
    n1, n2 = sim_cluster.nodes
    lines = [
        ln
        for ln in sim_cluster.known_hosts.read_text().splitlines()
        if ln.split()[0].split(",")[0] == n1.host
    ]
    swapped = tmp_path / "known_hosts"
    swapped.write_text("".join(f"{n2.host} {' '.join(ln.split()[1:])}\n" for ln in lines))
    with pytest.raises(HostKeyError, match=rf"{n2.host}:22: host key CHANGED.*ssh-keygen -R"):
        SshTransport(n2.host, _opts(sim_cluster, known_hosts=str(swapped))).connect()


def test_wrong_user_fails_clearly(sim_cluster):
    node = sim_cluster.nodes[0]
    with pytest.raises(TransportError, match=rf"nosuchuser@{node.host}:22: authentication failed.*ssh.user"):
        SshTransport(node.host, _opts(sim_cluster, user="nosuchuser")).connect()


def test_unreachable_address_fails_within_the_timeout(sim_cluster):
    ghost = sim_cluster.nodes[0].host.rsplit(".", 1)[0] + ".250"
    with pytest.raises(TransportError, match=rf"root@{ghost}:22: (no answer within 1s|.*unreachable)"):
        SshTransport(ghost, _opts(sim_cluster, connect_timeout=1)).connect()


def test_large_stdout_and_stderr_together(ssh):
    code = "import sys; sys.stdout.write('o' * 3_000_000); sys.stderr.write('e' * 2_000_000)"
    r = ssh[0].run([NODE_PYTHON, "-c", code])
    assert (len(r.stdout), len(r.stderr)) == (3_000_000, 2_000_000)


@pytest.mark.parametrize("bulk", [False, True], ids=["channel", "openssh"])
def test_stream_lines_file_and_exit_through_sshd(ssh, tmp_path, bulk):
    code = (
        "import os, sys, hashlib; print(os.environ['V'], os.getcwd(), sys.argv[1:] == ARGS, flush=True); "
        "line = sys.stdin.readline(); print(line.strip()[::-1], flush=True); "
        "print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()); sys.stderr.write('bye'); sys.exit(4)"
    ).replace("ARGS", repr(NASTY))
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(2_000_000))
    with ssh[0].open_stream(
        [NODE_PYTHON, "-c", code, *NASTY], env={"V": "x 'y'"}, cwd="/tmp", bulk=bulk
    ) as s:
        assert s.readline(timeout=30) == b"x 'y' /tmp True\n"
        s.write(b"abc\n")
        assert s.readline(timeout=30) == b"cba\n"
        s.send_file(open(blob, "rb"), 0, 2_000_000)
        end = s.wait(timeout=30)
    assert (end.exit_code, end.stdout, end.stderr) == (
        4,
        hashlib.sha256(blob.read_bytes()).hexdigest().encode() + b"\n",
        b"bye",
    )
    assert not os.path.exists("/tmp/pwned")


def test_bulk_stream_checks_host_keys_too(sim_cluster, tmp_path):
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client: bulk streams use the paramiko connection")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    bad = SshTransport(sim_cluster.nodes[0].host, _opts(sim_cluster, known_hosts=str(empty)))
    with bad.open_stream(["hostname"], bulk=True) as s:
        end = s.wait(timeout=30)
    assert end.exit_code == 255 and b"Host key verification failed" in end.stderr
    assert bad._client is None  # the bulk stream never opened a paramiko connection


def test_a_command_that_ends_before_reading_its_input_answers_with_its_exit_code(ssh):
    """The remote side closes the channel while input is still being sent: its exit status and stderr
    are the answer (a push's ``holds`` before the receiver is installed), not a lost connection."""
    big = b"x" * (8 << 20)  # more than the channel's window: the send is still under way when it ends
    for _ in range(3):
        r = ssh[0].run([NODE_PYTHON, "-S", "/nonexistent/receiver.py", "holds"], stdin=big, check=False)
        assert r.exit_code == 2 and "/nonexistent/receiver.py" in r.stderr
    assert ssh[0].run(["true"]).exit_code == 0  # the connection is still usable


def test_the_connection_sends_and_acknowledges_small_packets_at_once(ssh):
    """Nagle off and prompt ACKs: SSH is small requests and answers, and with either delay on the first
    command of a connection waited 40 ms for sshd's answer (delayed ACK), later ones 40 ms each."""
    import socket

    from orchestrator.transport import ssh as ssh_module

    sock = ssh[0]._transport().sock
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    assert isinstance(sock, ssh_module._PromptAckSocket)  # each read asks for its ACK to go out now
