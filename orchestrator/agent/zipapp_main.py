"""The agent zipapp's ``__main__`` (node side, Python 3.9+): unpack once, then run the agent.

``python orchestrate-agent-<sha>.pyz [--workdir DIR] <verb> ...``. Python cannot cache the bytecode of
modules it imports from a zip, so every agent call would compile the agent again (a third of a short
call's time). The archive is unpacked once beside it, into ``orchestrate-agent-<sha>/`` (a temporary
folder renamed into place: a folder by that name is whole; the name is the content hash, so it holds
exactly this agent), and the agent is imported from there, where Python keeps its bytecode. Where the
folder cannot be written, the agent runs from the archive. Imports nothing of the agent before
``sys.path`` points at the folder (a package imported from the zip would keep importing from it).
"""

import os
import sys


def unpacked(archive: str) -> str:
    """The folder holding ``archive``'s files (made now when missing), or ``archive`` when it cannot be."""
    folder = archive[: -len(".pyz")] if archive.endswith(".pyz") else archive + ".d"
    if os.path.isfile(os.path.join(folder, "__main__.py")):
        return folder
    import shutil
    import zipfile

    tmp = f"{folder}.tmp-{os.getpid()}"
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        os.rename(tmp, folder)  # another agent may have won the race: its folder is the same
    except OSError:
        pass
    shutil.rmtree(tmp, ignore_errors=True)
    return folder if os.path.isfile(os.path.join(folder, "__main__.py")) else archive


if __name__ == "__main__":
    sys.path[0] = unpacked(os.path.abspath(sys.path[0]))  # sys.path[0] is the archive
    from orchestrator.agent.node.cli import main

    sys.exit(main())
