"""Start and stop a private ROS master and roslaunch runs (tests and ``dexhand bench ros``).

Each master gets a free loopback port and its own ROS_HOME/ROS_LOG_DIR, so runs never meet another
master. A background rosmaster ignores SIGINT: it is stopped with SIGTERM. Launches go through
``checked_launch`` (a required node that dies gives exit code 1), and ``wait_for_nodes`` checks that
each node actually registered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "ros_ws" / "src" / "dexhand_ros" / "scripts"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_workspace() -> None:
    """Raise with the fix when the catkin workspace is not built or not sourced."""
    if shutil.which("rosmaster") is None or shutil.which("roslaunch") is None:
        raise RuntimeError("rosmaster/roslaunch not found: install the Debian ROS packages (make setup)")
    try:
        import dexhand_msgs.msg  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("dexhand_msgs does not import: build the workspace and source it first "
                           "(cd ros_ws && catkin_make -DPYTHON_EXECUTABLE=$PWD/../.venv/bin/python; "
                           "source ros_ws/devel/setup.bash)") from exc
    if "dexhand_ros" not in os.environ.get("ROS_PACKAGE_PATH", "") and \
            str(REPO / "ros_ws" / "src") not in os.environ.get("ROS_PACKAGE_PATH", ""):
        raise RuntimeError("ROS_PACKAGE_PATH lacks ros_ws/src: source ros_ws/devel/setup.bash")


class RosMaster:
    """A rosmaster on 127.0.0.1:<free port>; ``env`` is the environment for processes that use it."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, ROS_MASTER_URI=self.uri, ROS_HOME=str(home), ROS_LOG_DIR=str(home / "log"),
                        ROS_IP="127.0.0.1", ROS_HOSTNAME="127.0.0.1", PYTHONUNBUFFERED="1")
        self.env.pop("ROS_NAMESPACE", None)
        self.log = open(home / "rosmaster.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(["rosmaster", "--core", "-p", str(self.port)], env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_up(timeout=15.0)

    def _wait_up(self, timeout: float) -> None:
        import xmlrpc.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rosmaster exited with {self.process.returncode} (see {self.log.name})")
            try:
                xmlrpc.client.ServerProxy(self.uri).getPid("/probe")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"rosmaster did not answer on {self.uri} within {timeout} s")

    def apply_env(self) -> dict[str, str | None]:
        """Point this process at the master (for in-process rospy); returns the old values."""
        keys = ("ROS_MASTER_URI", "ROS_HOME", "ROS_LOG_DIR", "ROS_IP", "ROS_HOSTNAME")
        old = {k: os.environ.get(k) for k in keys}
        os.environ.update({k: self.env[k] for k in keys})
        return old

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM)
        self.log.close()


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after "pid (comm)": state, ppid, ..., starttime at index 19."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or not Linux
        return None
    return stat[stat.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[tuple[int, str]]:
    """Every process below ``pid`` as (pid, start time): the start time tells a reused pid apart."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields:
            children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def stop_process(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
    """Signal a process started with start_new_session=True, escalate to SIGKILL of its group.

    roslaunch starts every node in a session of its own, so the escalation also kills the process's
    descendants: a node slow to exit on SIGINT is not left running once roslaunch is killed."""
    if process.poll() is None:
        below = descendants(process.pid)
        try:
            process.send_signal(sig)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            below = sorted(set(below) | set(descendants(process.pid)))
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        for pid, start in below:  # still there, and the same process: roslaunch left it behind
            fields = _stat(pid)
            if fields and fields[19] == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
    return process.returncode


def roslaunch(env: dict[str, str], launch_file: str, args: Iterable[str] = (), log: Path | None = None):
    """``checked_launch dexhand_ros <launch_file> args...`` (roslaunch that exits 1 when a required node
    died) in its own process group (stop with stop_process)."""
    import sys

    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, str(SCRIPTS / "checked_launch"), "dexhand_ros", launch_file, *args],
                            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def node_command(node: str, *args: str) -> list[str]:
    """Run a node script with this interpreter (the venv), e.g. node_command('hand_driver', '_x:=1')."""
    import sys

    return [sys.executable, str(SCRIPTS / node), *args]


def wait_for_nodes(master_uri: str, nodes: Iterable[str], timeout: float, launch=None) -> None:
    """Wait until every node is registered and answers; raise naming the ones that never came up."""
    import rosgraph
    import rosnode

    os.environ["ROS_MASTER_URI"] = master_uri
    master = rosgraph.Master("/dexhand_wait", master_uri=master_uri)
    pending = set(nodes)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for node in list(pending):
            try:
                uri = master.lookupNode(node)
            except rosgraph.MasterError:
                continue
            if rosnode.rosnode_ping(node, max_count=1, skip_cache=True) and uri:
                pending.discard(node)
        if launch is not None and launch.poll() is not None:
            break
        time.sleep(0.2)
    if pending:
        raise RuntimeError(f"ROS nodes not up after {timeout:.0f} s: {', '.join(sorted(pending))}")


@contextlib.contextmanager
def sim_demo(policy: str, nodes: Iterable[str], prefix: str = "dexhand-rig-",
             launch_args: Iterable[str] = ()) -> Iterator[tuple[RosMaster, Path]]:
    """A private master and ``sim_demo.launch`` with ``policy`` (and ``launch_args``, e.g.
    ``pose_source:=estimator``), up once ``nodes`` run; torn down after."""
    check_workspace()
    home = Path(tempfile.mkdtemp(prefix=prefix))
    master = RosMaster(home)
    master.apply_env()
    launch = roslaunch(master.env, "sim_demo.launch", [f"policy:={policy}", *launch_args], log=home / "roslaunch.log")
    try:
        wait_for_nodes(master.uri, nodes, timeout=90, launch=launch)
        yield master, home
    finally:
        stop_process(launch)
        master.stop()
