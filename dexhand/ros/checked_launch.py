"""``checked_launch``: roslaunch that exits non-zero when a required node died.

Plain ``roslaunch`` shuts everything down when a required node dies, and then exits 0, so a script
or a supervisor cannot tell a finished run from a failed one. ``rosrun dexhand_ros checked_launch
dexhand_ros robot.launch arg:=value ...`` runs the same launch through roslaunch's own API and exits
1 naming the required node that died (and its exit code), 0 after Ctrl-C or a clean shutdown.
"""

from __future__ import annotations

import sys


def _base(process_name: str) -> str:
    """'/lh/hand_driver-4' -> 'lh/hand_driver' (roslaunch's process names carry a counter)."""
    name = process_name.rsplit("-", 1)[0] if process_name.rsplit("-", 1)[-1].isdigit() else process_name
    return name.strip("/")


def main(argv=None) -> int:
    import rosgraph.names
    import roslaunch
    import roslaunch.parent
    import roslaunch.pmon
    import roslaunch.rlutil

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    files = roslaunch.rlutil.resolve_launch_arguments(argv)
    launch_args = [a for a in argv if ":=" in a]
    launch_files = [f for f in files if ":=" not in f]
    died = []

    class Listener(roslaunch.pmon.ProcessListener):
        def process_died(self, process_name, exit_code):
            died.append((process_name, exit_code))

    uuid = roslaunch.rlutil.get_or_generate_uuid(None, False)
    roslaunch.configure_logging(uuid)
    sys.argv = [sys.argv[0], *launch_args]  # roslaunch's XML loader reads arg:=value from sys.argv
    parent = roslaunch.parent.ROSLaunchParent(uuid, launch_files, process_listeners=[Listener()])
    parent.start()
    required = {rosgraph.names.ns_join(n.namespace, n.name).strip("/") for n in parent.config.nodes if n.required}
    try:
        parent.spin()
    finally:
        parent.shutdown()
    dead = [(name, code) for name, code in died if _base(name) in required]
    if dead:
        text = ", ".join(f"{_base(n)} (exit code {c})" for n, c in dead)
        print(f"checked_launch: required node died: {text}", file=sys.stderr)
        return 1
    return 0
