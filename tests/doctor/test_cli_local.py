"""The doctor and discover commands on the embedded local default (this machine, no SSH): real probe."""

from __future__ import annotations

import json
import socket

from orchestrator.cli.main import main


def test_doctor_local_inventory_json(repo_root, capsys):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        code = main(["doctor", str(repo_root / "inventories" / "local-cpu.yaml"), "--json", "--port", port])
    data = json.loads(capsys.readouterr().out)
    checks = data["nodes"]["127.0.0.1"]
    assert checks["ssh"] == {"status": "ok", "detail": "local node (no SSH)"}
    assert checks["hostname"]["detail"].startswith(socket.gethostname())
    assert checks["npus"]["status"] == "skip"
    assert checks["ports"]["status"] == "FAIL" and port in checks["ports"]["detail"]
    assert code == 1 and not data["ok"]


def test_discover_local_inventory(repo_root, capsys):
    assert main(["discover", str(repo_root / "inventories" / "local-cpu.yaml")]) == 0
    out = capsys.readouterr().out
    assert "no differences from the inventory" in out and socket.gethostname() in out
